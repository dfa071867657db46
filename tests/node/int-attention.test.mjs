// The integer attention matmuls (issue 16 item 1) seen from the package: `integer: true` runs q·kᵀ on codes in every
// block, and probs·v too when the post-softmax quantizer is uniform (info.integerAttention), with the simulated
// model's predictions; and QuantizedModel.attention still shows the post-softmax values after quantization, although
// the activation hook no longer rewrites them (the integer probs·v quantizes them itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBitLens } from '../../web/bitlens.js';
import { modelFiles, defaultData, defaultImage, encodePngGray } from './helpers.mjs';

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
