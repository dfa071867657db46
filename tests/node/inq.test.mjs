// INQ (incremental power-of-two quantization with retraining) through the JS API on the real WASM build: a
// short run gives `bitlens inq`'s partition steps, exported bytes and evaluation for --jobs 1 and 2, an
// AbortSignal stops a run and leaves the module usable, and bad options are Errors naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens, InqModel, QuantizedModel } from '../../web/bitlens.js';
import { cli, path, modelFiles, defaultData, TRAIN_5K, trainSubset, loadAsCli as loadAsCliWith, assertAbortCycles } from './helpers.mjs';

const bl = await createBitLens();
const loadAsCli = (dir) => loadAsCliWith(bl, dir);
const tmp = () => mkdtempSync(join(tmpdir(), 'bitlens-inq-'));

// `bitlens inq --json` history entry → the JS API's InqStep (seconds differ run to run).
const jsStep = (s, labels) => ({
  step: s.step, partition: s.partition, frozen: s.frozen, frozenTop1: s.frozen_top1, frozenWorst: s.frozen_worst, valTop1: s.val_top1,
  valWorstClass: s.val_worst_class >= 0 ? { index: s.val_worst_class, label: labels[s.val_worst_class], accuracy: s.val_worst } : null,
  steps: s.steps, trainLoss: s.train_loss,
});
const noSeconds = ({ seconds, ...s }) => s;

test('a short INQ run through the JS API equals `bitlens inq` (--jobs 1 and 2): partition steps, exported bytes, evaluation', async () => {
  const dirs = [tmp(), tmp()];
  try {
    const model = loadAsCli('models/vit-fmnist-hf');
    const train = trainSubset(bl);
    const evalData = bl.loadDataset(defaultData());
    const opts = { wbits: 3, abits: 4, partitions: [50, 75, 100], batch: 32, limit: 300, calibSize: 16, seed: 1 };
    const events = [];
    const q = await model.inq(train, opts, { onProgress: (p) => events.push(p), keepPtq: true });
    assert.ok(q instanceof InqModel && q instanceof QuantizedModel);
    // Progress: the PTQ start (step 0) first, then every training step; each partition step's stats when it ends.
    const iterations = 2 * Math.ceil(270 / 32);  // two partition steps retrain (50%, 75%); at 100% nothing is left
    assert.deepEqual(events[0], { ...events[0], step: 0, steps: 3, iteration: 0, iterations, loss: null });
    assert.equal(events[0].stepStats.step, 0);
    assert.deepEqual(events.map((p) => p.iteration), [...Array.from({ length: iterations + 1 }, (_, i) => i), iterations]);
    assert.deepEqual(events.filter((p) => p.stepStats).map((p) => [p.step, p.stepStats.step]), [[0, 0], [1, 1], [2, 2], [3, 3]]);
    for (const p of events.slice(1, -1)) assert.ok(p.loss > 0 && p.steps === 3 && p.iterations === iterations, JSON.stringify(p));
    assert.equal(events.at(-1).loss, null, 'the last step freezes without retraining');
    assert.deepEqual(events.filter((p) => p.stepStats).map((p) => p.stepStats), q.history);
    // Step 0 is PTQ (every weight at once); each step freezes its share of every layer's weights, the last all of them.
    const all = q.history[0].frozen;
    assert.deepEqual(q.history.map((s) => s.partition), [100, 50, 75, 100]);
    assert.deepEqual(q.partitions, [50, 75, 100]);
    assert.equal(q.history[3].frozen, all);
    assert.ok(Math.abs(q.history[1].frozen / all - 0.5) < 0.01 && Math.abs(q.history[2].frozen / all - 0.75) < 0.01, JSON.stringify(q.history.map((s) => s.frozen)));
    assert.deepEqual(q.history.map((s) => s.steps), [0, iterations / 2, iterations / 2, 0]);
    assert.deepEqual([q.history[0].trainLoss, q.history[3].trainLoss], [null, null]);
    assert.equal(q.trainImages, 270);
    assert.equal(q.valImages, 30);
    assert.ok(q.validationFp32 && q.validationFp32.n === 30 && q.validationFp32.top1 > 0.7, JSON.stringify(q.validationFp32?.top1));
    assert.equal(q.info.config.weights, 'pow2');
    assert.equal(q.info.config.name, 'W3A4');
    const bytes = q.exportSafetensors();
    const r = q.evaluate(evalData);
    // The PTQ start (keepPtq): the same format, other weights.
    assert.equal(q.ptq.info.modelBytes, q.info.modelBytes);
    assert.notDeepEqual(Buffer.from(q.ptq.exportSafetensors()), Buffer.from(bytes));

    const args = ['inq', '--model', path('models/vit-fmnist-hf'), '--train', path(TRAIN_5K), '--train-limit', '300', '--partitions', '50,75,100',
      '--batch', '32', '--wbits', '3', '--abits', '4', '--calib-size', '16', '--seed', '1', '--eval', path('models/data'), '--json'];
    for (const [k, jobs] of [[0, '1'], [1, '2']]) {
      const native = JSON.parse(execFileSync(cli, [...args, '--jobs', jobs, '--out', dirs[k]]).toString());
      assert.deepEqual(q.history.map(noSeconds), native.history.map((s) => jsStep(s, model.labels)), `--jobs ${jobs}`);
      assert.deepEqual(q.partitions, native.partitions);
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
    q.delete();
    assert.equal(q.ptq, null, 'delete() frees the PTQ start too');
    for (const o of [back, model, train, evalData]) o.delete();
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('an AbortSignal stops an INQ run between steps; the module stays usable and keeps no memory', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainSubset(bl);
  const run = (signal, onProgress) => model.inq(train, { wbits: 4, epochsPerStep: 2, batch: 32, limit: 400 }, { signal, onProgress, keepPtq: true });
  await assertAbortCycles(bl, run, { counter: (p) => p.iteration });
  // Still usable: a short run to the end, without a held-out split.
  const q = await model.inq(train, { wbits: 5, partitions: [100], limit: 100, valSplit: 0 });
  assert.equal(q.valImages, 0);
  assert.equal(q.validationFp32, null);
  assert.deepEqual(q.history.map((s) => [s.step, s.partition, s.steps, s.valTop1, s.valWorstClass]), [[0, 100, 0, null, null], [1, 100, 0, null, null]]);
  assert.equal(q.info.config.name, 'W5A8');
  q.delete();
  model.delete();
  train.delete();
});

test('bad INQ options are Errors naming the option; a quantized model is refused', async () => {
  const files = modelFiles('models/vit-fmnist-hf');
  const model = bl.loadModel(files);
  const train = trainSubset(bl);
  const inq = (o) => model.inq(train, { wbits: 4, limit: 100, ...o });
  await assert.rejects(inq({ wbits: undefined }), (e) => e instanceof TypeError && /inq: `wbits` is required \(the bit-width of the power-of-two weights, 2–8\)/.test(e.message));
  await assert.rejects(inq({ wbits: 9 }), (e) => e instanceof RangeError && /inq: `wbits` must be a whole number from 2 to 8, got 9/.test(e.message));
  await assert.rejects(inq({ wbits: 1 }), RangeError);
  await assert.rejects(inq({ wbits: '4' }), TypeError);
  await assert.rejects(inq({ weights: 'uniform' }), (e) => e instanceof TypeError && /inq: the weights are quantized to powers of two.*`weights: "uniform"` does not apply/.test(e.message));
  await assert.rejects(inq({ partitions: [50, 40, 100] }), (e) => e instanceof RangeError && /inq: `partitions` must increase: 50 is followed by 40/.test(e.message));
  await assert.rejects(inq({ partitions: [50, 75] }), (e) => e instanceof RangeError && /inq: the last of `partitions` must be 100 .*got 75/.test(e.message));
  await assert.rejects(inq({ partitions: [] }), (e) => e instanceof RangeError && /inq: `partitions` is empty/.test(e.message));
  await assert.rejects(inq({ partitions: [0, 100] }), /`partitions` must be percentages in \(0, 100\], got 0/);
  await assert.rejects(inq({ partitions: '50,100' }), (e) => e instanceof TypeError && /`partitions` must be an array of percentages/.test(e.message));
  await assert.rejects(inq({ epochsPerStep: 0 }), (e) => e instanceof RangeError && /inq: `epochsPerStep` must be a whole number from 1 to 10000/.test(e.message));
  await assert.rejects(inq({ epochs: 2 }), (e) => e instanceof TypeError && /inq: unknown option 'epochs' \(expected .*epochsPerStep/.test(e.message));
  await assert.rejects(inq({ reparam: true }), /inq: unknown option 'reparam'/);
  await assert.rejects(inq({ method: 'sos' }), /inq: unknown option 'method'/);
  await assert.rejects(inq({ valSplit: 1 }), /inq: `valSplit` must be a fraction in \[0, 1\)/);
  await assert.rejects(inq({ lr: 1e-4, minLr: 1e-3 }), /inq: `minLr` \(0.001\) must not exceed `lr`/);
  await assert.rejects(inq({ softmax: 'cubic' }), /unknown quantizer 'cubic'/);
  await assert.rejects(model.inq({ size: 3 }, { wbits: 4 }), (e) => e instanceof TypeError && /inq: the training images must be a Dataset/.test(e.message));
  // From the C++ side: the images do not leave a training set or a calibration pool.
  await assert.rejects(inq({ limit: 1, valSplit: 0.5 }), /of 1 images leaves no training images/);
  await assert.rejects(inq({ limit: 20, calibSize: 32 }), /calibration size 32 is larger than the calibration pool \(18 images\)/);
  // The bindings check again what JS checked (for callers of the raw module).
  assert.throws(() => model._h.inq('{"wbits":4,"weights":"pow2"}', '{"partitions":[50,40,100]}', train._h), /inq: partitions must increase/);
  assert.throws(() => model._h.inq('{"wbits":4,"weights":"uniform"}', '{}', train._h), /inq: weights must be pow2/);
  assert.throws(() => model._h.inq('{"wbits":4,"weights":"pow2"}', '{"epochs":2}', train._h), /inq: unknown option 'epochs'/);
  assert.throws(() => model._h.inq('{"wbits":4,"weights":"pow2"}', '{"partitions":"50"}', train._h), /inq: 'partitions' must be an array of percentages/);
  // A quantized checkpoint has no FP32 weights to start from.
  const data = bl.loadDataset(defaultData());
  const q = model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 8 });
  const back = bl.loadModel({ ...files, safetensors: q.exportSafetensors() });
  await assert.rejects(back.inq(train, { wbits: 4, limit: 100 }), /inq: this model is already quantized \(W4A4\)/);
  // The module still works.
  assert.equal(model.evaluate(data, { limit: 8 }).n, 8);
  for (const o of [back, q, data, model, train]) o.delete();
});
