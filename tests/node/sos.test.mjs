// SOS block reconstruction (I&S-ViT's three stages) through the JS API on the real WASM build:
// model.quantize({ method: 'sos' }) gives `bitlens quantize --method sos`'s bits and per-stage numbers, reports
// progress per stage, block and iteration, stops on an AbortSignal without keeping memory, refuses bad
// options with Errors naming them, and a sweep with method sos differs from PTQ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens, QuantizedModel, SosModel } from '../../web/bitlens.js';
import { cli, path, modelFiles, defaultData, TRAIN_5K, trainSubset, loadAsCli as loadAsCliWith } from './helpers.mjs';

const bl = await createBitLens();
const TRAIN = TRAIN_5K;
const trainData = () => trainSubset(bl);
const loadAsCli = (dir) => loadAsCliWith(bl, dir);
const SMALL = { method: 'sos', wbits: 3, abits: 3, calibSize: 16, reconIters: 5, reconBatch: 8 };
const noSeconds = ({ seconds, ...x }) => x;

test('a small W3A3 SOS run through the JS API equals `bitlens quantize --method sos`: exported bytes, every stage\'s evaluation, every block\'s MSE', async () => {
  const out = mkdtempSync(join(tmpdir(), 'bitlens-sos-'));
  try {
    const model = loadAsCli('models/vit-fmnist-hf');
    const calib = trainData();
    const evalData = bl.loadDataset(defaultData());
    const events = [];
    const pending = model.quantize({ ...SMALL, calib }, { evaluate: evalData, onProgress: (p) => events.push(p) });
    assert.ok(pending instanceof Promise, 'method sos returns a Promise');
    const q = await pending;
    assert.ok(q instanceof SosModel && q instanceof QuantizedModel);
    const bytes = q.exportSafetensors();

    const native = JSON.parse(execFileSync(cli, ['quantize', '--model', path('models/vit-fmnist-hf'), '--calib', path(TRAIN),
      '--eval', path('models/data'), '--method', 'sos', '--recon-iters', '5', '--recon-batch', '8', '--calib-size', '16',
      '--wbits', '3', '--abits', '3', '--jobs', '1', '--out', out, '--json']).toString());
    assert.deepEqual(Buffer.from(bytes), readFileSync(join(out, 'model.safetensors')), 'exported bytes');
    assert.equal(q.info.modelBytes, native.model_bytes);
    assert.deepEqual(q.info.config, native.config);
    // Stage 0 (PTQ, same draw), 1, 2, 3, each evaluated as the CLI evaluates it.
    assert.deepEqual(q.stages.map((s) => s.stage), [0, 1, 2, 3]);
    assert.deepEqual(native.sos.stages.map((s) => s.stage), [0, 1, 2, 3]);
    q.stages.forEach((s, k) => {
      const n = native.sos.stages[k];
      assert.equal(s.top1, n.eval.top1, `stage ${s.stage} top-1`);
      assert.deepEqual(s.perClass, n.eval.per_class, `stage ${s.stage} per class`);
      assert.deepEqual(s.confusion, n.eval.confusion, `stage ${s.stage} confusion`);
      assert.deepEqual(s.worstClass, n.eval.worst_class, `stage ${s.stage} worst class`);
      assert.equal(s.n, 1000);
    });
    assert.equal(q.stages[2].maxLogitChange, native.sos.stages[2].max_logit_change);
    assert.ok(q.stages[2].maxLogitChange < 1e-2, `stage 2 keeps the function: max logit change ${q.stages[2].maxLogitChange}`);
    assert.deepEqual(q.blocks.map(noSeconds), native.sos.blocks.map((b) => ({ stage: b.stage, block: b.block, mseBefore: b.mse_before, mseAfter: b.mse_after })));
    assert.deepEqual(q.blocks.map((b) => `${b.stage}.${b.block}`), ['1.0', '1.1', '1.2', '1.3', '3.0', '3.1', '3.2', '3.3']);
    // The final model is stage 3: its own evaluation is the CLI's and stage 3's.
    const r = q.evaluate(evalData);
    assert.equal(r.top1, native.top1);
    assert.equal(r.top1, q.stages[3].top1);
    // Reconstruction changed something: the result is not the PTQ model of stage 0.
    assert.notDeepEqual(q.stages[3].confusion, q.stages[0].confusion);

    // Progress: stage 0 before any iteration, then one event per iteration (2 stages × 4 blocks × 5).
    assert.equal(events[0].done, 0);
    assert.deepEqual(events[0].stageResults.map((s) => s.stage), [0]);
    assert.equal(events.length, 1 + 40);
    assert.deepEqual(events.map((p) => p.done), Array.from({ length: 41 }, (_, i) => i));
    for (const p of events) assert.ok(p.total === 40 && p.blocks === 4 && p.iters === 5, JSON.stringify(p));
    const where = events.slice(1).map((p) => `${p.stage}.${p.block}.${p.iter}`);
    const expected = [];
    for (const st of [1, 3]) for (let b = 0; b < 4; b++) for (let i = 1; i <= 5; i++) expected.push(`${st}.${b}.${i}`);
    assert.deepEqual(where, expected);
    for (const p of events.slice(1)) assert.ok(p.loss > 0 && Number.isFinite(p.loss), `loss ${p.loss}`);
    // Each block's result arrives with its last iteration, each stage's with the step that finished it.
    assert.deepEqual(events.flatMap((p) => p.blockResults || []), q.blocks);
    assert.deepEqual(events.flatMap((p) => p.stageResults || []), q.stages);
    assert.deepEqual(events.filter((p) => p.stageResults).map((p) => p.done), [0, 20, 40]);
    for (const o of [q, model, calib, evalData]) o.delete();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('an AbortSignal stops an SOS run between iterations; the heap does not grow over runs; the next quantize works', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const calib = trainData();
  // Starts a 50-iteration run and aborts it from its progress callback once `stopAt` iterations are done.
  const attempt = async (stopAt) => {
    const ac = new AbortController();
    let last = -1;
    const p = model.quantize({ ...SMALL, reconIters: 50, calib }, { signal: ac.signal, onProgress: (e) => { last = e.done; if (e.done === stopAt) ac.abort(); } });
    await assert.rejects(p, { name: 'AbortError' });
    assert.equal(last, stopAt, 'no iteration after the abort');
  };
  await attempt(3);  // warm-up: the heap grows to its working size
  const before = bl.module.HEAPU8.length;
  for (const stopAt of [7, 60, 2]) await attempt(stopAt);
  // A whole small run, twice: the heap stays as it was.
  for (let i = 0; i < 2; i++) (await model.quantize({ ...SMALL, reconIters: 2, calib })).delete();
  assert.equal(bl.module.HEAPU8.length, before, 'the heap did not grow');
  // An already-aborted signal: nothing starts.
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(model.quantize({ ...SMALL, calib }, { signal: ac.signal }), { name: 'AbortError' });
  // Still usable: PTQ (synchronous, as before) and SOS without an evaluation set (stages 1–3, not evaluated).
  const ptq = model.quantize({ wbits: 4, abits: 4, calibSize: 16, calib });
  assert.ok(ptq instanceof QuantizedModel && !(ptq instanceof SosModel));
  const q = await model.quantize({ ...SMALL, reconIters: 1, calib });
  assert.deepEqual(q.stages.map((s) => s.stage), [1, 2, 3]);
  assert.equal(q.stages[0].top1, undefined);
  assert.equal(q.blocks.length, 8);
  for (const o of [q, ptq, model, calib]) o.delete();
});

test('bad SOS options are Errors naming the option; a quantized model is refused', async () => {
  const files = modelFiles('models/vit-fmnist-hf');
  const model = bl.loadModel(files);
  const data = bl.loadDataset(defaultData());
  const sos = (o, run) => model.quantize({ ...SMALL, calib: data, ...o }, run);
  await assert.rejects(sos({ reconBatch: 20 }), (e) => e instanceof RangeError && /quantize: `reconBatch` \(20\) is larger than `calibSize` \(16\)/.test(e.message));
  await assert.rejects(sos({ reconBatch: undefined, calibSize: 8 }), /`reconBatch` \(16, the default\) is larger than `calibSize` \(8\)/);
  await assert.rejects(sos({ reconIters: -1 }), (e) => e instanceof RangeError && /`reconIters` must be a whole number ≥ 0.*got -1/.test(e.message));
  await assert.rejects(sos({ reconIters: 2.5 }), /`reconIters` must be a whole number ≥ 0/);
  await assert.rejects(sos({ reconBatch: 0 }), /`reconBatch` must be a whole number ≥ 1/);
  await assert.rejects(sos({ reparam: true }), /`reparam` is stage 2 of method 'sos'/);
  await assert.rejects(sos({ wbits: 9 }), /bit-width 9 is outside 2-8/);
  await assert.rejects(sos({ calibSize: 2000, reconBatch: 8 }), /calibration size 2000 is larger than the calibration pool \(1000 images\)/);
  await assert.rejects(sos({}, { evaluate: [1, 2] }), /`evaluate` must be a Dataset/);
  await assert.rejects(sos({}, { colour: 1 }), /unknown run option 'colour'/);
  await assert.rejects(sos({}, { step: 0 }), /`step` must be a whole number ≥ 1/);
  await assert.rejects(sos({ calib: 'images' }), /`calib` must be a Dataset/);
  // Unknown methods and options that belong to SOS: synchronous errors, as PTQ's are.
  assert.throws(() => model.quantize({ method: 'brecq', calib: data }), (e) => e instanceof TypeError && /quantize: unknown method "brecq" \(expected 'ptq' or 'sos'\)/.test(e.message));
  assert.throws(() => model.quantize({ reconIters: 5, calib: data }), /`reconIters` applies to method 'sos' \(this is 'ptq'\)/);
  assert.throws(() => model.quantize({ method: 'ptq', reconBatch: 4, calib: data }), /`reconBatch` applies to method 'sos'/);
  assert.throws(() => model.quantize({ calib: data, calibSize: 8 }, { onProgress() {} }), /the second argument .* applies to method 'sos'/);
  // Where SOS does not apply: QAT starts from PTQ, sensitivities are PTQ's.
  await assert.rejects(model.qat(data, { method: 'sos', limit: 100 }), /qat: method 'sos' is not available here/);
  await assert.rejects(bl.sensitivities({ model, calib: data, method: 'sos' }), /sensitivities: method 'sos' is not available here/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: [{ method: 'sos', reconBatch: 40 }], calibSize: 32 }),
    /sweep: `reconBatch` \(40\) is larger than `calibSize` \(32\)/);
  // The bindings refuse sos in the synchronous entry (the JS wrapper routes it, so this is the raw handle).
  assert.throws(() => model._h.quantize(JSON.stringify({ method: 'sos' }), data._h, false), /quantize: method 'sos' runs in steps through sos\(\)/);
  // A quantized export has no FP32 weights to reconstruct from.
  const q = model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 8 });
  const back = bl.loadModel({ ...files, safetensors: q.exportSafetensors() });
  await assert.rejects(back.quantize({ ...SMALL, calib: data }), /sos: this model is already quantized \(W4A4\)/);
  // The module still works.
  assert.ok((await model.quantize({ ...SMALL, reconIters: 0, calib: data })).stages.length === 3);
  for (const o of [back, q, data, model]) o.delete();
});

test('a sweep with method sos runs, differs from PTQ, and equals `bitlens sweep --method sos`', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const configs = [{ wbits: 3, abits: 3 }, { wbits: 3, abits: 3, method: 'sos', reconIters: 2, reconBatch: 8 }];
  const r = await bl.sweep({ model, data, calib: data, configs, seeds: 1, calibSize: 16, limit: 300 });
  assert.deepEqual(r.configs.map((c) => c.name), ['W3A3', 'W3A3+sos']);
  assert.equal(r.configs[1].config.method, 'sos');
  assert.notDeepEqual(r.configs[1].seeds[0].confusion, r.configs[0].seeds[0].confusion, 'reconstruction changes the predictions');
  const native = JSON.parse(execFileSync(cli, ['sweep', '--model', path('models/vit-fmnist-hf'), '--data', path('models/data'), '--calib', path('models/data'),
    '--configs', 'w3a3', '--method', 'sos', '--recon-iters', '2', '--recon-batch', '8', '--seeds', '1', '--calib-size', '16', '--limit', '300',
    '--jobs', '1', '--json', '-']).toString());
  assert.equal(native.configs[0].name, 'W3A3+sos');
  assert.deepEqual(r.configs[1].seeds[0].confusion, native.configs[0].runs[0].confusion);
  for (const o of [model, data]) o.delete();
});
