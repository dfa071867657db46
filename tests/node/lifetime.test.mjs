// Object lifetimes across the JS API (issue 17, item 4 and Found 7): a stepped run (sweep, sensitivities, SOS, QAT,
// pruning) keeps what it reads alive, so deleting its Model or Datasets while it runs — what the page's worker did
// when a second model was loaded mid-sweep, which then read freed memory ("the model expects
// 1885299813x1953720686x1936286815") — changes nothing in its result; a QuantizedModel outlives its Model; and every
// use of a deleted object is an Error naming it. asan.test.mjs runs this file again on the AddressSanitizer build,
// where any read of freed memory stops with ASan's report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelFiles, defaultData, defaultImage, encodePngGray, loadBitLens } from './helpers.mjs';

const bl = await loadBitLens();
const HF = modelFiles('models/vit-fmnist-hf');
const DEIT = modelFiles('models/deit-fmnist-timm');
const png = encodePngGray(defaultImage(0).pixels, 28, 28);
const SWEEP = { configs: [{ wbits: 4, abits: 4 }, 'w3a3'], seeds: 2, calibSize: 16, limit: 200 };

// `run(model, data, calib, onStep)` once undisturbed and once with `disturb` called at its second step, each on a
// fresh model and fresh datasets: the same result.
async function sameWhenDisturbed(run, disturb) {
  const fresh = () => ({ model: bl.loadModel(HF), data: bl.loadDataset(defaultData()), calib: bl.loadDataset(defaultData()) });
  const a = fresh();
  const expected = await run(a, () => {});
  for (const o of Object.values(a)) o.delete();
  const b = fresh();
  let steps = 0;
  const got = await run(b, () => { if (++steps === 2) disturb(b); });
  assert.ok(steps >= 2, 'the run reported at least two steps');
  for (const o of Object.values(b)) o.delete();  // a second delete() is a no-op
  assert.deepEqual(got, expected);
}

test('a sweep whose Model is deleted mid-run (and a second model loaded) gives the undisturbed result', async () => {
  let other = null;
  await sameWhenDisturbed(
    async ({ model, data, calib }, step) => (await bl.sweep({ model, data, calib, ...SWEEP }, { onProgress: step })).raw,
    ({ model }) => { model.delete(); other = bl.loadModel(DEIT); });
  assert.equal(other.info.architecture.length > 0, true);
  other.delete();
});

test('a sweep whose Datasets are deleted mid-run gives the undisturbed result', async () => {
  await sameWhenDisturbed(
    async ({ model, data, calib }, step) => (await bl.sweep({ model, data, calib, ...SWEEP }, { onProgress: step })).raw,
    ({ data, calib }) => { data.delete(); calib.delete(); });
});

test('sensitivities whose Model is deleted mid-run give the undisturbed result', async () => {
  await sameWhenDisturbed(
    ({ model, calib }, step) => bl.sensitivities({ model, calib, sensSize: 8, candidates: [3, 4] }, { onProgress: step }),
    ({ model }) => model.delete());
});

test('SOS, QAT and pruning runs whose Model and Datasets are deleted mid-run give the undisturbed result', async () => {
  const evalOf = (q, data) => { const r = q.evaluate(data, { limit: 100 }); q.delete(); return r; };
  const deleteAll = (o) => { for (const x of Object.values(o)) x.delete(); };
  const check = bl.loadDataset(defaultData());
  await sameWhenDisturbed(async ({ model, calib }, step) => evalOf(await model.quantize(
    { method: 'sos', wbits: 3, abits: 3, calibSize: 8, reconIters: 2, reconBatch: 4, calib }, { onProgress: step }), check), deleteAll);
  await sameWhenDisturbed(async ({ model, data }, step) => evalOf(await model.qat(data,
    { wbits: 4, abits: 4, calibSize: 8, epochs: 1, batch: 32, limit: 96, valSplit: 0 }, { onProgress: step }), check), deleteAll);
  await sameWhenDisturbed(async ({ model, data }, step) => evalOf(await model.prune(data,
    { keepHeads: 0.5, keepMlp: 0.5, epochs: 1, batch: 32, limit: 96, importanceImages: 8, valSplit: 0 }, { onProgress: step }), check), deleteAll);
  check.delete();
});

test('the page\'s order (load A, load B, delete A, then quantize and sweep B) and a QuantizedModel outliving its Model', async () => {
  const data = bl.loadDataset(defaultData());
  const a = bl.loadModel(HF);
  const qa = a.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 16 });
  const before = qa.evaluate(data, { limit: 200 });
  const b = bl.loadModel(DEIT);
  a.delete();
  assert.deepEqual(qa.evaluate(data, { limit: 200 }), before);
  assert.equal(qa.classify(png, { topK: 1 }).length, 1);
  const qb = b.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 16 });
  const r = await bl.sweep({ model: b, data, calib: data, ...SWEEP });
  assert.equal(r.configs.length, 2);
  assert.ok(r.configs[0].top1Mean > 0.6, `W4A4 top-1 ${r.configs[0].top1Mean}`);
  assert.ok(qb.evaluate(data, { limit: 200 }).top1 > 0.6);
  for (const o of [qa, qb, b, data]) o.delete();
});

test('every use of a deleted object is an Error naming it, also as an argument', async () => {
  const data = bl.loadDataset(defaultData());
  const model = bl.loadModel(HF);
  const q = model.quantize({ calib: data, calibSize: 8 });
  const dead = { model: bl.loadModel(HF), data: bl.loadDataset(defaultData()) };
  dead.q = dead.model.quantize({ calib: dead.data, calibSize: 8 });
  for (const o of Object.values(dead)) { o.delete(); o.delete(); }
  const calls = [
    ['Model', () => dead.model.evaluate(data)], ['Model', () => dead.model.classify(png)], ['Model', () => dead.model.quantize({ calib: data })],
    ['Model', () => dead.model.weight('head')], ['Model', () => dead.model.forwardRaw(new Float32Array(784))], ['Model', () => dead.model.exportFiles()],
    ['Model', () => dead.model.attention(png)], ['Model', () => dead.model.preprocess(png)], ['Model', () => dead.model.gradients(data)],
    ['Model', () => dead.model.qat(data)], ['Model', () => dead.model.prune(data, { keepHeads: 0.5 })],
    ['Model', () => bl.sweep({ model: dead.model, data, calib: data, configs: ['w4a4'] })],
    ['Model', () => bl.sensitivities({ model: dead.model, calib: data })],
    ['QuantizedModel', () => dead.q.evaluate(data)], ['QuantizedModel', () => dead.q.classify(png)],
    ['QuantizedModel', () => dead.q.exportSafetensors()], ['QuantizedModel', () => dead.q.forwardRaw(new Float32Array(784))],
    ['Dataset', () => dead.data.size], ['Dataset', () => dead.data.classes], ['Dataset', () => model.evaluate(dead.data)],
    ['Dataset', () => q.evaluate(dead.data)], ['Dataset', () => model.quantize({ calib: dead.data })],
    ['Dataset', () => bl.sweep({ model, data: dead.data, calib: data, configs: ['w4a4'] })],
    ['Dataset', () => model.qat(dead.data)],
  ];
  for (const [name, f] of calls) {
    await assert.rejects(async () => f(), (e) => e instanceof Error && e.message === `${name}: used after delete()`, `${f}`);
  }
  for (const o of [q, model, data]) o.delete();
});
