// QBitOpt (bit-widths reallocated during QAT under a budget) through the JS API on the real WASM build: short runs
// give `bitlens qat --budget`'s allocations, history, exported bytes and evaluation, the budget holds at every
// allocation, an AbortSignal stops a run and leaves the module usable, and bad options are Errors naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens, QatModel } from '../../web/bitlens.js';
import { cli, path, modelFiles, defaultData, TRAIN_5K, trainSubset, loadAsCli as loadAsCliWith } from './helpers.mjs';

const bl = await createBitLens();
const loadAsCli = (dir) => loadAsCliWith(bl, dir);
const tmp = () => mkdtempSync(join(tmpdir(), 'bitlens-qbitopt-'));

// `bitlens qat --json` pieces → the JS API's shapes (seconds differ run to run).
const jsEpoch = (e, labels) => ({
  epoch: e.epoch, steps: e.steps, trainLoss: e.train_loss, valTop1: e.val_top1,
  valWorstClass: e.val_worst_class >= 0 ? { index: e.val_worst_class, label: labels[e.val_worst_class], accuracy: e.val_worst } : null, lr: e.lr,
});
const noSeconds = ({ seconds, ...e }) => e;
const jsAllocation = (a) => ({
  step: a.step, layerBits: a.layer_bits, pointBits: a.point_bits, avgWbits: a.avg_wbits, avgAbits: a.avg_abits,
  weightCost: a.weight_cost, weightBudget: a.weight_budget, actCost: a.act_cost, actBudget: a.act_budget, changed: a.changed,
});

// A QBitOpt run through the JS API and `bitlens qat` with the same options (`args`: the CLI's spelling of `opts`).
async function compareWithCli(dir, opts, args, jobs) {
  const out = tmp();
  try {
    const model = loadAsCli(dir);
    const train = trainSubset(bl);
    const evalData = bl.loadDataset(defaultData());
    const events = [];
    const q = await model.qat(train, opts, { onProgress: (p) => events.push(p) });
    assert.ok(q instanceof QatModel);
    const native = JSON.parse(execFileSync(cli, ['qat', '--model', path(dir), '--train', path(TRAIN_5K), ...args, '--eval', path('models/data'),
      '--json', '--jobs', jobs, '--out', out]).toString());
    assert.deepEqual(q.allocations, native.allocations.map(jsAllocation), 'every allocation, exactly');
    assert.equal(q.keptAllocation, native.kept_allocation);
    assert.deepEqual(q.allocations[q.keptAllocation].layerBits, native.layer_bits);
    assert.deepEqual(q.allocations[q.keptAllocation].pointBits, native.point_bits);
    assert.equal(q.avgWbits, native.avg_wbits);
    assert.equal(q.avgAbits, native.avg_abits);
    const b = native.budget;
    assert.deepEqual(q.budget, { weights: b.weights, activations: b.activations, objective: b.objective, candidates: b.candidates,
      fisherBatches: b.fisher_batches, sensitivityDecay: b.sensitivity_decay });
    assert.deepEqual(q.history.map(noSeconds), native.history.map((e) => jsEpoch(e, model.labels)));
    assert.equal(q.bestEpoch, native.best_epoch);
    assert.equal(q.trainImages, native.train_images);
    assert.equal(q.valImages, native.val_images);
    assert.equal(q.info.modelBytes, native.model_bytes);
    assert.deepEqual(Buffer.from(q.exportSafetensors()), readFileSync(join(out, 'model.safetensors')), 'exported bytes');
    const r = q.evaluate(evalData);
    assert.equal(r.top1, native.top1);
    assert.deepEqual(r.perClass, native.per_class);
    // The kept allocation is the model's configuration.
    assert.deepEqual(q.info.config.layer_bits, q.allocations[q.keptAllocation].layerBits);
    return { model, train, evalData, q, events };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

// Every allocation within its budgets: the costs as the bits and the tensors' sizes give them, never above
// ⌊budget × values⌋, each width a candidate, every layer (and, with an activation budget, every quantized point) set.
function assertWithinBudget(model, q, { budget, abudget, candidates = [2, 3, 4, 5, 6, 7, 8] }) {
  const sizes = Object.fromEntries(model.info.layers.map((l) => [l, model.weight(l).length]));
  const weights = Object.values(sizes).reduce((s, n) => s + n, 0);
  for (const a of q.allocations) {
    const at = `allocation at step ${a.step}`;
    assert.deepEqual(Object.keys(a.layerBits).sort(), [...model.info.layers].sort(), at);
    for (const bits of [...Object.values(a.layerBits), ...Object.values(a.pointBits)]) assert.ok(candidates.includes(bits), `${at}: ${bits} bits`);
    const cost = model.info.layers.reduce((s, l) => s + a.layerBits[l] * sizes[l], 0);
    assert.equal(a.weightCost, cost, at);
    assert.equal(a.weightBudget, Math.floor(budget * weights), at);
    assert.ok(a.weightCost <= a.weightBudget && a.avgWbits <= budget, `${at}: ${a.weightCost} of ${a.weightBudget} bits`);
    assert.ok(Math.abs(a.avgWbits - cost / weights) < 1e-12, at);
    if (abudget) {
      assert.ok(Object.keys(a.pointBits).length > 20 && Object.keys(a.pointBits).every((p) => model.info.points.includes(p)), at);
      assert.ok(a.actCost <= a.actBudget && a.avgAbits <= abudget, `${at}: ${a.actCost} of ${a.actBudget} bits per image`);
    } else {
      assert.equal(a.actBudget, null, at);
    }
  }
}

test('QBitOpt (weights and activations) through the JS API equals `bitlens qat --budget --abudget`; the budgets hold at every allocation', async () => {
  const opts = { epochs: 2, batch: 32, limit: 300, calibSize: 16, seed: 1, budget: 4, abudget: 5, reallocEvery: 3, fisherBatches: 2 };
  const args = ['--train-limit', '300', '--epochs', '2', '--batch', '32', '--calib-size', '16', '--seed', '1', '--budget', '4', '--abudget', '5',
    '--realloc-every', '3', '--fisher-batches', '2'];
  const { model, train, evalData, q, events } = await compareWithCli('models/vit-fmnist-hf', opts, args, '2');
  // 270 training images in batches of 32: 9 steps an epoch; every 3 steps before the last epoch (frozen): 0, 3, 6.
  assert.deepEqual(q.allocations.map((a) => a.step), [0, 3, 6]);
  assert.ok(q.allocations[0].changed > 0, 'the first allocation moves bits away from the uniform start');
  // Progress reports each allocation once: the first with the PTQ start, each later one after the step it preceded.
  const allocated = events.filter((p) => p.allocated);
  assert.deepEqual(allocated.map((p) => p.allocated), q.allocations);
  assert.deepEqual(allocated.map((p) => p.step), [0, 4, 7]);
  assert.equal(allocated[0].epochStats.epoch, 0);
  assertWithinBudget(model, q, opts);
  for (const o of [q, model, train, evalData]) o.delete();
});

test('QBitOpt with the worst-class objective, other candidates and no averaging (DeiT, default schedule) equals `bitlens qat`', async () => {
  const opts = { epochs: 2, batch: 32, limit: 200, calibSize: 16, seed: 3, budget: 3, objective: 'worst', candidates: [2, 3, 4, 8], sensitivityDecay: 0, fisherBatches: 2 };
  const args = ['--train-limit', '200', '--epochs', '2', '--batch', '32', '--calib-size', '16', '--seed', '3', '--budget', '3', '--objective', 'worst',
    '--candidates', '2,3,4,8', '--sensitivity-decay', '0', '--fisher-batches', '2'];
  const { model, train, evalData, q } = await compareWithCli('models/deit-fmnist-timm', opts, args, '1');
  // 180 training images: 6 steps an epoch; by default every quarter epoch (2 steps) before the last: 0, 2, 4.
  assert.deepEqual(q.allocations.map((a) => a.step), [0, 2, 4]);
  assert.equal(q.budget.activations, null);
  assertWithinBudget(model, q, opts);
  for (const o of [q, model, train, evalData]) o.delete();
});

test('an AbortSignal stops a QBitOpt run between steps; the module stays usable and keeps no memory', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainSubset(bl);
  const run = (signal, onProgress) => model.qat(train, { epochs: 2, batch: 32, limit: 200, budget: 3.5, abudget: 6, reallocEvery: 2, fisherBatches: 1 },
    { signal, onProgress, keepPtq: true });
  // Warm-up (the heap grows to its working size), then cycles of start-and-abort, each right after a reallocation.
  const ac0 = new AbortController();
  await assert.rejects(run(ac0.signal, (p) => { if (p.allocated && p.step > 0) ac0.abort(); }), { name: 'AbortError' });
  const before = bl.module.HEAPU8.length;
  for (let i = 0; i < 2; i++) {
    const ac = new AbortController();
    let last = -1;
    const seen = [];
    await assert.rejects(run(ac.signal, (p) => { last = p.step; if (p.allocated) seen.push(p.allocated.step); if (p.step === 5) ac.abort(); }), { name: 'AbortError' });
    assert.equal(last, 5, 'no step after the abort');
    assert.deepEqual(seen, [0, 2, 4], 'allocated before steps 2 and 4 (reported after them)');
  }
  assert.equal(bl.module.HEAPU8.length, before, 'the heap did not grow');
  const done = new AbortController();
  done.abort();
  await assert.rejects(run(done.signal), { name: 'AbortError' });
  // Still usable: a short run without a budget, which has no allocations.
  const q = await model.qat(train, { wbits: 4, abits: 6, edges8bit: false, epochs: 1, limit: 100, valSplit: 0 });
  assert.deepEqual([q.budget, q.allocations, q.keptAllocation], [null, [], null]);
  assert.equal(q.avgWbits, 4);
  assert.equal(q.avgAbits, 6);
  q.delete();
  model.delete();
  train.delete();
});

test('bad QBitOpt options are Errors naming the option (JS and the bindings); INQ takes none of them', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainSubset(bl);
  const qat = (o) => model.qat(train, { limit: 100, ...o });
  const err = (cls, re) => (e) => e instanceof cls && re.test(e.message);
  await assert.rejects(qat({ budget: 1.5 }), err(RangeError, /^qat: `budget` 1\.5 is infeasible: the smallest candidate is 2 bits, so the budget must be at least 2$/));
  await assert.rejects(qat({ budget: 4, abudget: 2.5, candidates: [3, 4, 8] }), err(RangeError, /^qat: `abudget` 2\.5 is infeasible: the smallest candidate is 3 bits/));
  await assert.rejects(qat({ budget: 0 }), err(RangeError, /^qat: `budget` must be an average bit-width per weight above 0 and at most 8 \(e\.g\. 4\), got 0$/));
  await assert.rejects(qat({ budget: 9 }), err(RangeError, /`budget` must be .* at most 8.*got 9/));
  await assert.rejects(qat({ budget: '4' }), err(TypeError, /`budget` must be an average bit-width.*got "4"/));
  await assert.rejects(qat({ budget: 4, abudget: -1 }), err(RangeError, /`abudget` must be an average bit-width per activation value.*got -1/));
  await assert.rejects(qat({ abudget: 4 }), err(TypeError, /^qat: `abudget` needs `budget` \(the activations' bits are allocated with the weights'\)$/));
  await assert.rejects(qat({ objective: 'worst' }), err(TypeError, /^qat: `objective` applies with `budget` \(QBitOpt/));
  await assert.rejects(qat({ reallocEvery: 10 }), err(TypeError, /`reallocEvery` applies with `budget`/));
  await assert.rejects(qat({ budget: 4, objective: 'best' }), err(TypeError, /^qat: `objective` must be 'mean' or 'worst', got "best"$/));
  await assert.rejects(qat({ budget: 4, candidates: [2, 9] }), err(RangeError, /^qat: `candidates` must be bit-widths from 2 to 8, got 9$/));
  await assert.rejects(qat({ budget: 4, candidates: [1, 4] }), err(RangeError, /`candidates` must be bit-widths from 2 to 8, got 1/));
  await assert.rejects(qat({ budget: 4, candidates: [4, 2, 4] }), err(RangeError, /^qat: `candidates` lists 4 bits twice$/));
  await assert.rejects(qat({ budget: 4, candidates: [] }), err(RangeError, /^qat: `candidates` is empty/));
  await assert.rejects(qat({ budget: 4, candidates: '2,4' }), err(TypeError, /^qat: `candidates` must be an array of whole bit-widths.*got "2,4"$/));
  await assert.rejects(qat({ budget: 4, candidates: [2, 4.5] }), err(TypeError, /`candidates` must be an array of whole bit-widths/));
  await assert.rejects(qat({ budget: 4, reallocEvery: 0 }), err(RangeError, /^qat: `reallocEvery` must be a whole number ≥ 1 \(training steps between allocations; default: a quarter epoch\), got 0$/));
  await assert.rejects(qat({ budget: 4, fisherBatches: 0 }), err(RangeError, /^qat: `fisherBatches` must be a whole number ≥ 1/));
  await assert.rejects(qat({ budget: 4, sensitivityDecay: 1 }), err(RangeError, /^qat: `sensitivityDecay` must be a number in \[0, 1\).*got 1$/));
  await assert.rejects(qat({ budget: 4, wbits: 4 }), err(TypeError, /^qat: `wbits` does not apply with `budget` \(the bits of every layer are allocated\)$/));
  await assert.rejects(qat({ budget: 4, layerBits: { head: 8 } }), err(TypeError, /`layerBits` does not apply with `budget`/));
  await assert.rejects(qat({ budget: 4, abudget: 4, pointBits: { 'head.in': 8 } }), err(TypeError, /`pointBits` does not apply with `abudget` \(the bits of every activation point are allocated\)/));
  await assert.rejects(model.inq(train, { wbits: 4, budget: 4 }), err(TypeError, /^inq: unknown option 'budget'/));
  // The bindings check again (for callers of the raw module), in the C++ field names.
  const raw = (o) => () => model._h.qat('{}', JSON.stringify(o), train._h);
  assert.throws(raw({ budget: 4, objective: 'best' }), /^Error: qat: 'objective' must be "mean" or "worst", found "best"$/);
  assert.throws(raw({ budget: 4, candidates: '2,4' }), /^Error: qat: 'candidates' must be an array of whole bit-widths \(e\.g\. \[2, 3, 4, 5, 6, 7, 8\]\), found "2,4"$/);
  assert.throws(raw({ budget: '4' }), /^Error: qat: 'budget' must be a number, found "4"$/);
  assert.throws(raw({ budget: 4, realloc_every: -1 }), /qat: 'realloc_every' must be a whole number ≥ 0, found -1/);
  assert.throws(raw({ abudget: 4 }), /qat: --abudget needs --budget/);
  assert.throws(raw({ budget: 1 }), /qat: --budget 1 is infeasible: the smallest candidate is 2 bits/);
  assert.throws(raw({ budget: 4, candidates: [4, 4] }), /qat: --candidates lists 4 bits twice/);
  assert.throws(raw({ budget: 4, candidates: [9] }), /qat: --candidates/);
  assert.throws(raw({ budget: 4, fisher_batches: 0 }), /--fisher-batches/);
  assert.throws(raw({ budget: 4, sensitivity_decay: 1 }), /--sensitivity-decay must be in \[0, 1\)/);
  assert.throws(() => model._h.inq('{"wbits":4,"weights":"pow2"}', '{"budget":4}', train._h), /inq: unknown option 'budget'/);
  // The module still works.
  const data = bl.loadDataset(defaultData());
  assert.equal(model.evaluate(data, { limit: 8 }).n, 8);
  for (const o of [data, model, train]) o.delete();
});
