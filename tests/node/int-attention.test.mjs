// The integer attention matmuls (issue 16 item 1) seen from the package: `integer: true` runs q·kᵀ on codes in every
// block, and probs·v too when the post-softmax quantizer is uniform (info.integerAttention), with the simulated
// model's predictions; and QuantizedModel.attention still shows the post-softmax values after quantization, although
// the activation hook no longer rewrites them (the integer probs·v quantizes them itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBitLens } from '../../web/bitlens.js';
import { spawnSync } from 'node:child_process';
import { cli, modelFiles, defaultData, defaultImage, encodePngGray, path } from './helpers.mjs';

test('integer attention: info.integerAttention counts q·kᵀ per block (+ probs·v with uniform probs); predictions and attention maps as the simulated model', async () => {
  const bl = await createBitLens();
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const depth = model.info.blocks.length;
  try {
    for (const softmax of ['sulq', 'uniform']) {
      const opts = { calib: data, calibSize: 16, seed: 2, wbits: 4, abits: 4, softmax };
      const sim = model.quantize(opts), int = model.quantize({ ...opts, integer: true });
      try {
        assert.equal(sim.info.integerAttention, 0, softmax);
        assert.equal(int.info.integerAttention, softmax === 'uniform' ? 2 * depth : depth, softmax);
        assert.equal(sim.info.integerGelu, 0, softmax);
        assert.equal(int.info.integerGelu, depth, softmax);  // 4-bit fc2 inputs: GELU on thresholds in every block
        const a = sim.evaluate(data, { limit: 500 }), b = int.evaluate(data, { limit: 500 });
        // int32 sums against float sums of the same codes: only an image whose two best classes are within ~1e-6 can
        // flip; one flip moves two cells of the confusion matrix by 1
        const moved = a.confusion.flat().reduce((s, v, i) => s + Math.abs(v - b.confusion.flat()[i]), 0);
        assert.ok(moved <= 2, `${softmax}: confusion matrices differ by ${moved}`);
        let same = 0, total = 0;
        for (let i = 0; i < 6; i++) {
          const png = encodePngGray(defaultImage(i).pixels, 28, 28);
          for (const block of [0, -1]) {
            const ms = sim.attention(png, { block }), mi = int.attention(png, { block });
            assert.equal(mi.length, ms.length);
            // Quantized maps: equal except where a value's float path sits within rounding of a decision threshold.
            for (let j = 0; j < ms.length; j++) same += ms[j] === mi[j], total++;
          }
        }
        assert.ok(same >= 0.95 * total, `${softmax}: ${same} of ${total} attention values equal`);
      } finally {
        sim.delete();
        int.delete();
      }
    }
  } finally {
    model.delete();
    data.delete();
  }
});

test('the CLI\'s --integer (native) reports the same integer path as the package (WASM) and evaluates to its numbers: W4A4 with SULQ and uniform probs', async () => {
  const bl = await createBitLens();
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  try {
    for (const softmax of ['sulq', 'uniform']) {
      const q = model.quantize({ calib: data, calibSize: 16, seed: 2, wbits: 4, abits: 4, softmax, integer: true });
      try {
        const r = spawnSync(cli, ['quantize', '--model', path('models/vit-fmnist-hf'), '--calib', path('models/data'), '--calib-size', '16',
          '--seed', '2', '--wbits', '4', '--abits', '4', '--softmax', softmax, '--integer', '--eval', path('models/data'), '--limit', '500', '--json'],
        { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const j = JSON.parse(r.stdout);
        assert.equal(j.integer_layers, q.info.integerLayers, softmax);
        assert.equal(j.integer_attention, q.info.integerAttention, softmax);
        assert.equal(j.integer_gelu, q.info.integerGelu, softmax);
        assert.equal(j.integer_gelu, model.info.blocks.length, softmax);
        const e = q.evaluate(data, { limit: 500 });
        assert.equal(j.top1, e.top1, `${softmax}: native and WASM integer paths, the same top-1`);
        assert.deepEqual(j.confusion, e.confusion, softmax);
        const text = spawnSync(cli, ['quantize', '--model', path('models/vit-fmnist-hf'), '--calib', path('models/data'), '--calib-size', '16',
          '--seed', '2', '--wbits', '4', '--abits', '4', '--softmax', softmax, '--integer'], { encoding: 'utf8' });
        assert.equal(text.status, 0, text.stderr);
        assert.match(text.stdout, new RegExp(`integer path: ${j.integer_layers} of ${j.integer_layers} Linears, ${j.integer_attention} attention matmuls on codes, GELU on thresholds in 4 of 4 blocks`));
      } finally {
        q.delete();
      }
    }
  } finally {
    model.delete();
    data.delete();
  }
});
