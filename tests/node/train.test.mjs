// The training engine through the JS API on the real WASM build: gradients and quantization-aware
// training give the native CLI's bits (`bitlens grad`, `bitlens qat`), an AbortSignal stops a run and
// leaves the module usable, and bad options are Errors naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens, QuantizedModel } from '../../web/bitlens.js';
import { cli, path, modelFiles, defaultData, TRAIN_5K, trainSubset, loadAsCli as loadAsCliWith, assertAbortCycles } from './helpers.mjs';

const bl = await createBitLens();
const TRAIN = TRAIN_5K;
const trainData = () => trainSubset(bl);
const loadAsCli = (dir) => loadAsCliWith(bl, dir);
const tmp = () => mkdtempSync(join(tmpdir(), 'bitlens-train-'));

for (const dir of ['models/vit-fmnist-hf', 'models/deit-fmnist-timm']) {
  test(`gradients of ${dir} through the JS API are the bytes \`bitlens grad\` writes`, () => {
    const out = tmp();
    try {
      const model = loadAsCli(dir);
      const data = bl.loadDataset(defaultData());
      const g = model.gradients(data, { limit: 48 });
      execFileSync(cli, ['grad', '--model', path(dir), '--data', path('models/data'), '--limit', '48', '--out', join(out, 'g.safetensors')]);
      const native = readFileSync(join(out, 'g.safetensors'));
      assert.deepEqual(Buffer.from(g.safetensors), native);
      // The parsed view: every checkpoint tensor (names and shapes as model.safetensors), the loss as written.
      const st = modelFiles(dir).safetensors;
      const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString('utf8'));
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      assert.deepEqual(Object.keys(g.tensors).sort(), names.filter((n) => n in g.tensors).sort());
      assert.ok(Object.keys(g.tensors).length >= names.length - 2, `${Object.keys(g.tensors).length} of ${names.length} tensors`);
      for (const [name, t] of Object.entries(g.tensors)) {
        assert.deepEqual(g.shapes[name], header[name].shape, name);
        assert.equal(t.length, header[name].shape.reduce((a, b) => a * b, 1), name);
      }
      const nh = JSON.parse(native.subarray(8, 8 + Number(native.readBigUInt64LE(0))).toString('utf8'));
      assert.equal(g.loss, Number(nh.__metadata__.loss));
      assert.equal(g.images, 48);
      assert.ok(g.loss > 0.05 && g.loss < 2, `loss ${g.loss}`);
      assert.ok(Object.values(g.tensors).some((t) => t.some((v) => v !== 0)), 'gradients are not all zero');
      model.delete();
      data.delete();
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

// `bitlens qat --json` history entry → the JS API's EpochStats (seconds differ run to run).
const jsEpoch = (e, labels) => ({
  epoch: e.epoch, steps: e.steps, trainLoss: e.train_loss, valTop1: e.val_top1,
  valWorstClass: e.val_worst_class >= 0 ? { index: e.val_worst_class, label: labels[e.val_worst_class], accuracy: e.val_worst } : null, lr: e.lr,
});
const noSeconds = ({ seconds, ...e }) => e;

test('a short QAT run through the JS API equals `bitlens qat` (--jobs 1 and 2): history, best epoch, exported bytes, evaluation', async () => {
  const dirs = [tmp(), tmp()];
  try {
    const model = loadAsCli('models/vit-fmnist-hf');
    const train = trainData();
    const evalData = bl.loadDataset(defaultData());
    const opts = { wbits: 3, abits: 4, epochs: 2, batch: 32, limit: 300, calibSize: 16, seed: 1 };
    const events = [];
    const q = await model.qat(train, opts, { onProgress: (p) => events.push(p) });
    assert.ok(q instanceof QuantizedModel);
    // Progress: the PTQ start first, then every step, each epoch's stats when it ends.
    assert.equal(events[0].step, 0);
    assert.equal(events[0].epochStats.epoch, 0);
    assert.equal(events[0].loss, null);
    const steps = events[0].steps;
    assert.equal(steps, 2 * Math.ceil(270 / 32));
    assert.deepEqual(events.map((p) => p.step), Array.from({ length: steps + 1 }, (_, i) => i));
    assert.deepEqual(events.filter((p) => p.epochStats).map((p) => p.epochStats.epoch), [0, 1, 2]);
    for (const p of events.slice(1)) assert.ok(p.loss > 0 && p.epochs === 2 && p.steps === steps && p.epoch >= 1);
    assert.deepEqual(events.filter((p) => p.epochStats).map((p) => p.epochStats), q.history);
    assert.equal(q.trainImages, 270);
    assert.equal(q.valImages, 30);
    assert.equal(q.history[0].trainLoss, null);
    // FP32 on the held-out images, for the learning curve (the split reproduced the run's epoch 0).
    assert.ok(q.validationFp32 && q.validationFp32.n === 30 && q.validationFp32.top1 > 0.7, JSON.stringify(q.validationFp32?.top1));
    const bytes = q.exportSafetensors();
    const r = q.evaluate(evalData);

    const args = ['qat', '--model', path('models/vit-fmnist-hf'), '--train', path(TRAIN), '--train-limit', '300', '--epochs', '2',
      '--batch', '32', '--wbits', '3', '--abits', '4', '--calib-size', '16', '--seed', '1', '--eval', path('models/data'), '--json'];
    for (const [k, jobs] of [[0, '1'], [1, '2']]) {
      const native = JSON.parse(execFileSync(cli, [...args, '--jobs', jobs, '--out', dirs[k]]).toString());
      assert.deepEqual(q.history.map(noSeconds), native.history.map((e) => jsEpoch(e, model.labels)), `--jobs ${jobs}`);
      assert.equal(q.bestEpoch, native.best_epoch);
      assert.equal(q.trainImages, native.train_images);
      assert.equal(q.valImages, native.val_images);
      assert.equal(q.info.modelBytes, native.model_bytes);
      assert.deepEqual(Buffer.from(bytes), readFileSync(join(dirs[k], 'model.safetensors')), `--jobs ${jobs}: exported bytes`);
      assert.equal(r.top1, native.top1);
      assert.deepEqual(r.perClass, native.per_class);
    }
    // The exported file loads back to the same predictions.
    const back = bl.loadModel({ ...modelFiles('models/vit-fmnist-hf'), safetensors: bytes });
    assert.deepEqual(back.evaluate(evalData, { limit: 200 }).confusion, q.evaluate(evalData, { limit: 200 }).confusion);
    for (const o of [back, q, model, train, evalData]) o.delete();
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('an AbortSignal stops a QAT run between steps; the module stays usable and keeps no memory', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainData();
  const run = (signal, onProgress) => model.qat(train, { epochs: 3, batch: 32, limit: 400 }, { signal, onProgress, keepPtq: true });
  await assertAbortCycles(bl, run, { cycles: 3 });
  // Still usable: a short run to the end.
  const q = await model.qat(train, { epochs: 1, batch: 64, limit: 150, valSplit: 0 });
  assert.equal(q.valImages, 0);
  assert.equal(q.bestEpoch, 1, 'without a split the last epoch is kept');
  assert.equal(q.validationFp32, null);
  assert.equal(q.history[1].valTop1, null);
  q.delete();
  model.delete();
  train.delete();
});

test('bad QAT and gradient options are Errors naming the field; quantized models are refused', async () => {
  const files = modelFiles('models/vit-fmnist-hf');
  const model = bl.loadModel(files);
  const train = trainData();
  const qat = (o) => model.qat(train, { limit: 100, ...o });
  await assert.rejects(qat({ epochs: 0 }), (e) => e instanceof RangeError && /qat: `epochs` must be a whole number from 1 to 10000, got 0/.test(e.message));
  await assert.rejects(qat({ epochs: 1.5 }), /`epochs` must be a whole number from 1 to 10000, got 1.5/);
  await assert.rejects(qat({ valSplit: 1 }), /qat: `valSplit` must be a fraction in \[0, 1\) of the training images, got 1/);
  await assert.rejects(qat({ batch: 0 }), /`batch` must be a whole number from 1 to 65536, got 0/);
  await assert.rejects(qat({ lr: -1 }), /`lr` must be a number > 0, got -1/);
  await assert.rejects(qat({ lr: 1e-4, minLr: 1e-3 }), /`minLr` \(0.001\) must not exceed `lr` \(0.0001\)/);
  await assert.rejects(qat({ labelSmoothing: 1 }), /`labelSmoothing` must be a number in \[0, 1\)/);
  await assert.rejects(qat({ distill: 'yes' }), (e) => e instanceof TypeError && /`distill` must be true or false, got "yes"/.test(e.message));
  await assert.rejects(qat({ epochs: '2' }), (e) => e instanceof TypeError && /`epochs`/.test(e.message));
  await assert.rejects(qat({ colour: 1 }), (e) => e instanceof TypeError && /qat: unknown option 'colour' \(expected .*epochs.*valSplit/.test(e.message));
  await assert.rejects(qat({ calib: train }), /qat: unknown option 'calib'/);
  await assert.rejects(qat({ wbits: 9 }), /bit-width 9 is outside 2-8/);
  await assert.rejects(qat({ softmax: 'cubic' }), /unknown quantizer 'cubic'/);
  // From the C++ side: the images do not leave a training set or a calibration pool.
  await assert.rejects(qat({ limit: 1, valSplit: 0.5 }), /validation split of 0.5.* of 1 images leaves no training images/);
  await assert.rejects(qat({ limit: 20, calibSize: 32 }), /calibration size 32 is larger than the calibration pool \(18 images\)/);
  await assert.rejects(model.qat({ size: 3 }), (e) => e instanceof TypeError && /qat: the training images must be a Dataset/.test(e.message));
  assert.throws(() => model.gradients(train, { limit: -1 }), /gradients: `limit` must be a whole number ≥ 0/);
  assert.throws(() => model.gradients([]), /gradients: expected a Dataset/);
  // A quantized checkpoint has no FP32 weights to start from.
  const data = bl.loadDataset(defaultData());
  const q = model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 8 });
  const back = bl.loadModel({ ...files, safetensors: q.exportSafetensors() });
  await assert.rejects(back.qat(train, { limit: 100 }), /qat: this model is already quantized \(W4A4\)/);
  assert.throws(() => back.gradients(data, { limit: 4 }), /gradients: this model is already quantized \(W4A4\)/);
  // The module still works.
  assert.equal(model.gradients(data, { limit: 4 }).images, 4);
  for (const o of [back, q, data, model, train]) o.delete();
});
