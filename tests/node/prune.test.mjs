// Structured pruning through the JS API on the real WASM build: a short prune with recovery gives `bitlens prune`'s
// kept heads and units, importance, history and evaluation; the JS export is the CLI's --out byte for byte and loads
// in the CLI, the CLI's --out loads in JS to the same logits; the pruned model quantizes and exports like any model;
// keeping everything changes nothing; an AbortSignal stops a run; bad options are Errors naming the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens, Model, PrunedModel } from '../../web/bitlens.js';
import { cli, path, modelFiles, defaultData, defaultImage, encodePngGray, TRAIN_5K, trainSubset, loadAsCli as loadAsCliWith, assertAbortCycles } from './helpers.mjs';

const bl = await createBitLens();
const loadAsCli = (dir) => loadAsCliWith(bl, dir);
const tmp = () => mkdtempSync(join(tmpdir(), 'bitlens-prune-'));
const native = (args) => JSON.parse(execFileSync(cli, args).toString());

// `bitlens prune --json` pieces → the JS API's shapes (seconds differ run to run).
const jsEpoch = (e, labels) => ({
  epoch: e.epoch, steps: e.steps, trainLoss: e.train_loss, valTop1: e.val_top1,
  valWorstClass: e.val_worst_class >= 0 ? { index: e.val_worst_class, label: labels[e.val_worst_class], accuracy: e.val_worst } : null, lr: e.lr,
});
const noSeconds = ({ seconds, ...e }) => e;
const jsLayer = (l) => ({ heads: l.heads, prunedHeads: l.pruned_heads, mlpDim: l.mlp_dim, parameters: l.parameters });
// A model directory's files written to `dir`.
function writeModel(dir, { safetensors, config, preprocessor }) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.safetensors'), safetensors);
  writeFileSync(join(dir, 'config.json'), config);
  if (preprocessor) writeFileSync(join(dir, 'preprocessor_config.json'), preprocessor);
}
const readModel = (dir) => ({ safetensors: readFileSync(join(dir, 'model.safetensors')), config: readFileSync(join(dir, 'config.json'), 'utf8'),
  preprocessor: readFileSync(join(dir, 'preprocessor_config.json'), 'utf8') });
// The logits of the first n default test images.
const logitsOf = (m, n = 4) => Array.from({ length: n }, (_, i) => {
  const { pixels } = defaultImage(i);
  return Array.from(m.forwardRaw(m.preprocess(encodePngGray(pixels, 28, 28))));
});

test('a prune with distillation through the JS API equals `bitlens prune`; the exports load both ways to the same model', async () => {
  const dir = tmp();
  try {
    const model = loadAsCli('models/vit-fmnist-hf');
    const train = trainSubset(bl);
    const evalData = bl.loadDataset(defaultData());
    const labels = model.labels;
    const events = [];
    const p = await model.prune(train, { keepHeads: 0.5, keepMlp: 0.5, distill: true, epochs: 1, limit: 600, batch: 32, importanceImages: 300 },
      { onProgress: (e) => events.push(e) });
    assert.ok(p instanceof PrunedModel && p instanceof Model);
    const cliOut = join(dir, 'cli');
    const n = native(['prune', '--model', path('models/vit-fmnist-hf'), '--train', path(TRAIN_5K), '--eval', path('models/data'),
      '--keep-heads', '0.5', '--keep-mlp', '0.5', '--distill', '--epochs', '1', '--train-limit', '600', '--batch', '32',
      '--importance-images', '300', '--jobs', '2', '--json', '--out', cliOut]);
    // What was measured, kept and removed: exactly the CLI's (importance scores to the last bit).
    assert.deepEqual(p.importance, n.importance);
    assert.equal(p.importance.method, 'taylor');
    assert.equal(p.importance.images, 300);
    assert.deepEqual(p.keptHeads, n.kept_heads);
    assert.deepEqual(p.keptUnits, n.kept_units);
    assert.ok(p.keptHeads.every((k) => k.length === 2) && p.keptUnits.every((k) => k.length === 64));
    assert.deepEqual(p.layers, n.layers.map(jsLayer));
    assert.equal(p.parametersBefore, n.parameters_before);
    assert.equal(p.parameters, n.parameters);
    assert.equal(p.parametersBefore, model.info.parameters);
    assert.ok(p.parameters < 0.6 * p.parametersBefore, `${p.parameters} of ${p.parametersBefore}`);
    // The recovery: the same history, best epoch and split.
    assert.deepEqual(p.history.map(noSeconds), n.history.map((e) => jsEpoch(e, labels)));
    assert.equal(p.bestEpoch, n.best_epoch);
    assert.equal(p.trainImages, n.train_images);
    assert.equal(p.valImages, n.val_images);
    assert.equal(p.validationFp32.n, 60);
    // Progress: the pruned start (epoch 0) first, then every step; each epoch's stats when it ends.
    const steps = Math.ceil(540 / 32);
    assert.deepEqual(noSeconds(events[0]), { epoch: 0, epochs: 1, step: 0, steps, loss: null, epochStats: events[0].epochStats });
    assert.deepEqual(events.map((e) => e.step), Array.from({ length: steps + 1 }, (_, i) => i));
    assert.ok(events.slice(1).every((e) => e.epoch === 1 && e.loss > 0), JSON.stringify(events[1]));
    assert.deepEqual(events.filter((e) => e.epochStats).map((e) => e.epochStats), p.history);
    // The model: evaluates as the CLI's final model, and says it is pruned.
    const r = p.evaluate(evalData);
    assert.equal(r.top1, n.top1);
    assert.deepEqual(r.perClass, n.per_class);
    assert.deepEqual(r.confusion, n.confusion);
    assert.equal(n.recovered.top1, n.top1);
    assert.equal(p.info.pruned, true);
    assert.deepEqual(p.info.blocks, p.layers);
    assert.equal(p.info.parameters, p.parameters);
    assert.equal(model.info.pruned, false);
    assert.deepEqual(model.info.blocks.map((b) => [b.heads, b.mlpDim, b.prunedHeads]), Array(4).fill([4, 128, []]));

    // The JS export is the CLI's --out byte for byte: safetensors, config.json (with pruned_heads), preprocessor.
    const files = p.exportFiles();
    const cliFiles = readModel(cliOut);
    assert.deepEqual(Buffer.from(files.safetensors), cliFiles.safetensors, 'safetensors');
    assert.equal(files.config, cliFiles.config);
    assert.equal(files.preprocessor, cliFiles.preprocessor);
    assert.deepEqual(Buffer.from(p.exportSafetensors()), cliFiles.safetensors);
    assert.equal(p.exportConfig(), files.config);
    const cfg = JSON.parse(files.config);
    assert.deepEqual(cfg.pruned_heads, Object.fromEntries(p.layers.map((l, i) => [String(i), l.prunedHeads])));
    assert.deepEqual(cfg.bitlens_mlp_dims, [64, 64, 64, 64]);
    // Written to a folder, the CLI reads it: the per-layer heads, and the same evaluation.
    const jsDir = join(dir, 'js');
    writeModel(jsDir, files);
    const info = native(['info', '--model', jsDir, '--json']);
    assert.equal(info.pruned, true);
    assert.deepEqual(info.layers.map(jsLayer), p.layers);
    const ev = native(['eval', '--model', jsDir, '--data', path('models/data'), '--json']);
    assert.equal(ev.top1, r.top1);
    assert.deepEqual(ev.per_class, r.perClass);
    assert.deepEqual(ev.confusion, r.confusion);
    // The CLI's --out loads in JS to the same model: logits bit for bit, accuracy, shape.
    const back = bl.loadModel({ ...cliFiles, name: join(cliOut, 'model.safetensors') });
    assert.deepEqual(back.info.blocks, p.info.blocks);
    assert.deepEqual(logitsOf(back), logitsOf(p));
    assert.deepEqual(back.evaluate(evalData).confusion, r.confusion);
    for (const o of [back, p, model, train, evalData]) o.delete();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a pruned model is a full Model: W4A4 quantization as the CLI does it on the pruned folder, its export, pruning again (DeiT, mask importance)', async () => {
  const dir = tmp();
  try {
    const model = loadAsCli('models/deit-fmnist-timm');
    const train = trainSubset(bl);
    const evalData = bl.loadDataset(defaultData());
    const p = await model.prune(train, { keepHeads: 0.5, keepMlp: 0.5, importance: 'mask', importanceImages: 4, epochs: 0, limit: 200 },
      { keepPruned: true });
    const prunedDir = join(dir, 'pruned');
    const n = native(['prune', '--model', path('models/deit-fmnist-timm'), '--train', path(TRAIN_5K), '--eval', path('models/data'),
      '--keep-heads', '0.5', '--keep-mlp', '0.5', '--importance', 'mask', '--importance-images', '4', '--epochs', '0',
      '--train-limit', '200', '--jobs', '2', '--json', '--out', prunedDir]);
    assert.deepEqual(p.importance, n.importance);
    assert.deepEqual(p.keptHeads, n.kept_heads);
    assert.deepEqual(p.keptUnits, n.kept_units);
    assert.deepEqual(p.history.map(noSeconds), n.history.map((e) => jsEpoch(e, model.labels)));
    assert.equal(n.recovered, null);
    assert.equal(p.bestEpoch, 0);
    assert.deepEqual(p.layers.map((l) => [l.heads, l.mlpDim]), Array(4).fill([2, 128]));
    // epochs 0: the result is the pruned model itself, and `beforeRecovery` the same model.
    const r = p.evaluate(evalData);
    assert.equal(r.top1, n.pruned.top1);
    assert.deepEqual(r.perClass, n.pruned.per_class);
    assert.ok(p.beforeRecovery instanceof Model);
    assert.deepEqual(p.beforeRecovery.evaluate(evalData).confusion, r.confusion);
    assert.deepEqual(Buffer.from(p.exportSafetensors()), readFileSync(join(prunedDir, 'model.safetensors')));

    // W4A4 on the pruned model: the same bits as `bitlens quantize` on the CLI's pruned folder.
    const q = p.quantize({ calib: evalData, wbits: 4, abits: 4, calibSize: 32, seed: 0 });
    assert.deepEqual(q.info.blocks, p.info.blocks);
    const qDir = join(dir, 'q');
    const nq = native(['quantize', '--model', prunedDir, '--calib', path('models/data'), '--eval', path('models/data'), '--wbits', '4', '--abits', '4',
      '--calib-size', '32', '--seed', '0', '--json', '--out', qDir]);
    const rq = q.evaluate(evalData);
    assert.equal(rq.top1, nq.top1);
    assert.deepEqual(rq.perClass, nq.per_class);
    assert.ok(rq.top1 > 0.5, `W4A4 of the pruned DeiT: ${rq.top1}`);
    const qBytes = q.exportSafetensors();
    assert.deepEqual(Buffer.from(qBytes), readFileSync(join(qDir, 'model.safetensors')), 'quantized export');
    assert.ok(qBytes.length < p.exportSafetensors().length / 3);
    // The quantized export loads with the pruned model's config.json, to the same predictions.
    const qBack = bl.loadModel({ safetensors: qBytes, config: p.exportConfig(), preprocessor: p.exportFiles().preprocessor });
    assert.equal(qBack.info.pruned, true);
    assert.deepEqual(qBack.evaluate(evalData).confusion, rq.confusion);
    assert.throws(() => qBack.exportFiles(), /export: this model is already quantized \(W4A4\)/);
    // QAT, a sweep and gradients take it as any FP32 model; the tensors have the pruned shapes.
    const t = await p.qat(train, { wbits: 4, abits: 4, epochs: 1, limit: 96, batch: 32, calibSize: 16 });
    const tBack = bl.loadModel({ ...p.exportFiles(), safetensors: t.exportSafetensors() });
    assert.deepEqual(tBack.evaluate(evalData, { limit: 200 }).confusion, t.evaluate(evalData, { limit: 200 }).confusion);
    const sw = await bl.sweep({ model: p, data: evalData, calib: evalData, configs: ['w8a8'], seeds: 1, limit: 200 });
    assert.equal(sw.fp32.top1, p.evaluate(evalData, { limit: 200 }).top1);
    const g = p.gradients(evalData, { limit: 4 });
    assert.deepEqual(g.shapes['blocks.0.attn.qkv.weight'], [3 * 32, 64]);
    assert.deepEqual(g.shapes['blocks.0.mlp.fc1.weight'], [128, 64]);
    assert.deepEqual(g.shapes['blocks.0.attn.proj.weight'], [64, 32]);

    // Pruning a pruned model again: heads are counted in the unpruned model's numbering.
    const p2 = await p.prune(train, { keepHeads: 0.5, epochs: 0, importanceImages: 64, limit: 200 });
    assert.deepEqual(p2.layers.map((l) => [l.heads, l.mlpDim, l.prunedHeads.length]), Array(4).fill([1, 128, 3]));
    assert.equal(p2.parametersBefore, p.parameters);
    const cfg2 = JSON.parse(p2.exportConfig());
    p2.layers.forEach((l, i) => {
      assert.deepEqual(cfg2.pruned_heads[String(i)], l.prunedHeads);
      for (const h of p.layers[i].prunedHeads) assert.ok(l.prunedHeads.includes(h), `layer ${i}: head ${h} stays removed`);
    });
    const again = bl.loadModel(p2.exportFiles());
    assert.deepEqual(logitsOf(again, 2), logitsOf(p2, 2));
    p.delete();
    assert.equal(p.beforeRecovery, null, 'delete() frees the model before recovery too');
    for (const o of [again, p2, tBack, t, qBack, q, model, train, evalData]) o.delete();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keeping every head and unit without recovery gives the unpruned model\'s predictions', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainSubset(bl);
  const evalData = bl.loadDataset(defaultData());
  const p = await model.prune(train, { keepHeads: 1, keepMlp: 1, epochs: 0, importanceImages: 32, limit: 200 });
  assert.equal(p.info.pruned, false);
  assert.equal(p.parameters, p.parametersBefore);
  assert.deepEqual(p.keptHeads, Array(4).fill([0, 1, 2, 3]));
  assert.deepEqual(p.layers.map((l) => l.prunedHeads), Array(4).fill([]));
  assert.deepEqual(logitsOf(p), logitsOf(model));
  assert.deepEqual(p.evaluate(evalData), model.evaluate(evalData));
  const cfg = JSON.parse(p.exportConfig());
  assert.ok(!('pruned_heads' in cfg) && !('bitlens_mlp_dims' in cfg), 'nothing pruned: no pruning fields');
  // Unpruned models export too (as F32): the same tensors the checkpoint holds.
  const back = bl.loadModel(model.exportFiles());
  assert.deepEqual(logitsOf(back, 2), logitsOf(model, 2));
  for (const o of [back, p, model, train, evalData]) o.delete();
});

test('an AbortSignal stops a prune between steps; the module stays usable and keeps no memory', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const train = trainSubset(bl);
  const run = (signal, onProgress) => model.prune(train, { keepHeads: 0.5, keepMlp: 0.5, epochs: 2, batch: 32, limit: 400, importanceImages: 64 },
    { signal, onProgress, keepPruned: true });
  await assertAbortCycles(bl, run);
  // Still usable: a short run to the end, without a held-out split (the last epoch is kept).
  const p = await model.prune(train, { keepMlp: 0.75, epochs: 1, limit: 64, batch: 32, valSplit: 0, importanceImages: 16 });
  assert.equal(p.valImages, 0);
  assert.equal(p.validationFp32, null);
  assert.deepEqual(p.history.map((e) => [e.epoch, e.steps, e.valTop1, e.valWorstClass]), [[0, 0, null, null], [1, 2, null, null]]);
  assert.equal(p.bestEpoch, 1);
  assert.deepEqual(p.layers.map((l) => [l.heads, l.mlpDim]), Array(4).fill([4, 96]));
  for (const o of [p, model, train]) o.delete();
});

test('bad prune options are Errors naming the option; a quantized model is refused', async () => {
  const files = modelFiles('models/vit-fmnist-hf');
  const model = bl.loadModel(files);
  const train = trainSubset(bl);
  const prune = (o) => model.prune(train, { keepHeads: 0.5, limit: 100, importanceImages: 8, epochs: 0, ...o });
  await assert.rejects(prune({ keepHeads: 0 }), (e) => e instanceof RangeError && /prune: `keepHeads` must be a fraction in \(0, 1\] of each layer's attention heads, got 0/.test(e.message));
  await assert.rejects(prune({ keepHeads: 1.5 }), (e) => e instanceof RangeError && /prune: `keepHeads` must be a fraction in \(0, 1\].*got 1\.5/.test(e.message));
  await assert.rejects(prune({ keepHeads: 'x' }), (e) => e instanceof TypeError && /prune: `keepHeads` must be a fraction .*got "x"/.test(e.message));
  await assert.rejects(prune({ keepHeads: 0.1 }), (e) => e instanceof RangeError && /prune: `keepHeads` 0\.1 keeps none of the 4 attention heads of layer 0 \(at least one must stay: keepHeads ≥ 0\.125\)/.test(e.message));
  await assert.rejects(prune({ keepMlp: 0.001 }), (e) => e instanceof RangeError && /prune: `keepMlp` 0\.001 keeps none of the 128 MLP units of layer 0 \(at least one must stay: keepMlp ≥ 0\.00390625\)/.test(e.message));
  await assert.rejects(prune({ keepMlp: -1 }), /`keepMlp` must be a fraction in \(0, 1\]/);
  await assert.rejects(prune({ keepHeads: undefined }), (e) => e instanceof TypeError && /prune: give `keepHeads` and\/or `keepMlp`/.test(e.message));
  await assert.rejects(prune({ importance: 'foo' }), (e) => e instanceof TypeError && /prune: `importance` must be 'taylor' or 'mask', got "foo"/.test(e.message));
  await assert.rejects(prune({ epochs: -1 }), (e) => e instanceof RangeError && /prune: `epochs` must be a whole number from 0 to 10000 \(0: no recovery\), got -1/.test(e.message));
  await assert.rejects(prune({ epochs: 1.5 }), /`epochs` must be a whole number from 0 to 10000/);
  await assert.rejects(prune({ importanceImages: -1 }), /prune: `importanceImages` must be a whole number ≥ 0/);
  await assert.rejects(prune({ featureWeight: -0.1 }), /prune: `featureWeight` must be a number ≥ 0/);
  await assert.rejects(prune({ featureBlocks: -2 }), /prune: `featureBlocks` must be a whole number ≥ 0, or -1/);
  await assert.rejects(prune({ distill: 'yes' }), /prune: `distill` must be true or false/);
  await assert.rejects(prune({ valSplit: 1 }), /prune: `valSplit` must be a fraction in \[0, 1\)/);
  await assert.rejects(prune({ lr: 1e-4, minLr: 1e-3 }), /prune: `minLr` \(0.001\) must not exceed `lr`/);
  await assert.rejects(prune({ minLr: 1e-3 }), /prune: `minLr` \(0.001\) must not exceed `lr` \(0.0005\)/);
  await assert.rejects(prune({ keepHead: 0.5 }), (e) => e instanceof TypeError && /prune: unknown option 'keepHead' \(expected keepHeads, keepMlp, importance/.test(e.message));
  await assert.rejects(prune({ integer: true }), /prune: unknown option 'integer'/);
  await assert.rejects(prune({ wbits: 4 }), /prune: unknown option 'wbits'/);
  await assert.rejects(model.prune(train, null), /prune: the options must be an object/);
  await assert.rejects(model.prune({ size: 3 }, { keepHeads: 0.5 }), (e) => e instanceof TypeError && /prune: the training images must be a Dataset/.test(e.message));
  // From the C++ side: the images do not leave a training set.
  await assert.rejects(prune({ limit: 1, valSplit: 0.5 }), /of 1 images leaves no training images/);
  // The bindings check again what JS checked (for callers of the raw module), before measuring anything.
  assert.throws(() => model._h.prune('{"keep_mlp":0.001}', train._h), /prune: keeping 0\.001 of the 128 MLP units of layer 0 leaves none/);
  assert.throws(() => model._h.prune('{"keep_heads":1.5}', train._h), /prune: --keep-heads must be a fraction in \(0, 1\], found 1\.5/);
  assert.throws(() => model._h.prune('{"keep_heads":0.5,"importance":"foo"}', train._h), /prune: importance 'foo' is not known \(expected taylor or mask\)/);
  assert.throws(() => model._h.prune('{"keep_heads":0.5,"epochs":-1}', train._h), /prune: --epochs must be at least 0, found -1/);
  assert.throws(() => model._h.prune('{"keep_heads":0.5,"keep_head":1}', train._h), /prune: unknown option 'keep_head'/);
  assert.throws(() => model._h.prune('{"keep_heads":"x"}', train._h), /prune: 'keep_heads' must be a number, found "x"/);
  assert.throws(() => model._h.prune('{}', train._h), /prune: give 'keep_heads' and\/or 'keep_mlp'/);
  // A quantized checkpoint has no FP32 weights to prune or export as FP32.
  const data = bl.loadDataset(defaultData());
  const q = model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 8 });
  const back = bl.loadModel({ ...files, safetensors: q.exportSafetensors() });
  await assert.rejects(back.prune(train, { keepHeads: 0.5 }), /prune: this model is already quantized \(W4A4\)/);
  assert.throws(() => back.exportSafetensors(), /export: this model is already quantized \(W4A4\)/);
  // A checkpoint without config.json prunes, but its pruned export has nowhere to record the pruning.
  const bare = bl.loadModel({ safetensors: files.safetensors, heads: 4 });
  const pb = await bare.prune(train, { keepHeads: 0.5, epochs: 0, limit: 100, importanceImages: 8 });
  assert.equal(pb.info.pruned, true);
  assert.throws(() => pb.exportFiles(), /has no config\.json to record the pruned heads and MLP widths in/);
  // The module still works.
  assert.equal(model.evaluate(data, { limit: 8 }).n, 8);
  for (const o of [pb, bare, back, q, data, model, train]) o.delete();
});
