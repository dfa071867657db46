// The real WASM build under Node: same numbers as the native CLI, and bad input becomes a JS Error
// while the module keeps working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBitLens } from '../../web/bitlens.js';
import { modelFiles, defaultData, nativeEval, nativeQuantize, nativeSweep, nativeMixed, encodePng, encodePngGray, defaultImage } from './helpers.mjs';

const bl = await createBitLens();
const models = ['models/vit-fmnist-hf', 'models/deit-fmnist-timm'];

for (const dir of models) {
  test(`WASM evaluation of ${dir} on the default set equals the native CLI, class by class`, () => {
    const model = bl.loadModel(modelFiles(dir));
    const data = bl.loadDataset(defaultData());
    assert.equal(data.size, 1000);
    const r = model.evaluate(data);
    const native = nativeEval(dir, 'models/data');
    assert.equal(r.n, native.n);
    assert.equal(r.top1, native.top1);
    assert.deepEqual(r.perClass, native.per_class);
    assert.deepEqual(r.confusion, native.confusion);
    assert.deepEqual(r.worstClass, native.worst_class);
    assert.ok(r.top1 > 0.85, `top-1 ${r.top1}`);
    model.delete();
    data.delete();
  });
}

test('classify of a PNG gives the same answer as evaluating the same pixels from IDX', () => {
  const model = bl.loadModel(modelFiles(models[0]));
  let agree = 0;
  for (let i = 0; i < 20; i++) {
    const { pixels, label } = defaultImage(i * 50);
    const top = model.classify(encodePngGray(pixels, 28, 28), { topK: 3 });
    assert.equal(top.length, 3);
    assert.ok(top[0].probability >= top[1].probability && top[1].probability >= top[2].probability);
    assert.ok(top.reduce((s, t) => s + t.probability, 0) <= 1 + 1e-9);
    agree += top[0].index === label;
  }
  assert.ok(agree >= 16, `only ${agree}/20 correct`);
  assert.throws(() => model.classify(new Uint8Array([1, 2, 3])), /image: cannot decode image/);
  model.delete();
});

test('bad model input is a JS Error naming the problem, and the module keeps working', () => {
  const good = modelFiles(models[0]);
  const truncated = good.safetensors.subarray(0, 100);
  assert.throws(() => bl.loadModel({ ...good, safetensors: truncated }), (e) => e instanceof Error && /header length \d+ is beyond the end of the file/.test(e.message));
  assert.throws(() => bl.loadModel({ ...good, config: '{"hidden_size": 3' }), /config.json: not valid JSON/);
  assert.throws(() => bl.loadModel({ ...good, safetensors: 'nope' }), /expected a Uint8Array/);
  assert.throws(() => bl.loadDataset({ idxImages: new Uint8Array(10), idxLabels: new Uint8Array(10) }), Error);
  // still alive
  const model = bl.loadModel(good);
  assert.equal(model.info.numClasses, 10);
  model.delete();
  assert.throws(() => model.info && model.evaluate(bl.loadDataset(defaultData())), /used after delete/);
});

for (const [dir, wbits, abits, softmax, extra] of [
  ['models/vit-fmnist-hf', 4, 4, 'sulq', {}],
  ['models/deit-fmnist-timm', 6, 6, 'log2', { weights: 'pow2' }],
]) {
  test(`W${wbits}A${abits} ${softmax} quantization of ${dir} in WASM equals the native CLI for the same seed`, () => {
    const model = bl.loadModel(modelFiles(dir));
    const data = bl.loadDataset(defaultData());
    const q = model.quantize({ calib: data, wbits, abits, softmax, calibSize: 16, seed: 3, ...extra });
    const r = q.evaluate(data);
    const args = ['--wbits', String(wbits), '--abits', String(abits), '--softmax', softmax, '--calib-size', '16', '--seed', '3'];
    if (extra.weights) args.push('--weights', extra.weights);
    const native = nativeQuantize(dir, 'models/data', args);
    assert.equal(r.top1, native.top1);
    assert.deepEqual(r.perClass, native.per_class);
    assert.deepEqual(r.confusion, native.confusion);
    assert.equal(q.info.modelBytes, native.model_bytes);
    q.delete();
    model.delete();
    data.delete();
  });
}

test('quantizeTensor returns dequantized values on the quantizer levels, and rejects bad options', () => {
  const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 0.5);
  const r = bl.quantizeTensor(x, { quantizer: 'uniform', bits: 3, symmetric: true });
  assert.equal(r.values.length, 1000);
  assert.equal(r.levels.length, 7);
  const levels = new Set(r.levels);
  for (const v of r.values) assert.ok(levels.has(v));
  const p = bl.quantizeTensor(Float32Array.from({ length: 100 }, (_, i) => (i + 1) / 100), { quantizer: 'sulq', bits: 4 });
  assert.ok(p.levels.length <= 16 && p.params.eta > 0);
  assert.throws(() => bl.quantizeTensor(x, { quantizer: 'log10', bits: 3 }), /unknown quantizer 'log10'/);
  assert.throws(() => bl.quantizeTensor(x, { quantizer: 'uniform', bits: 9 }), /quantizeTensor: `bits` must be a whole number from 2 to 8, got 9/);
  assert.throws(() => bl.quantizeTensor([], { bits: 4 }), /no values/);
});

test('quantize with bad options is a JS Error naming the option', () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  assert.throws(() => model.quantize({ calib: data, wbits: 1 }), /bit-width 1 is outside 2-8/);
  assert.throws(() => model.quantize({ calib: data, softmax: 'cubic' }), /unknown quantizer 'cubic'/);
  assert.throws(() => model.quantize({ calib: data, calibSize: 5000 }), /calibration size 5000 is larger than the calibration pool \(1000 images\)/);
  assert.throws(() => model.quantize({ calib: data, colour: 1 }), /unknown option 'colour'/);
  assert.throws(() => model.quantize({ wbits: 4 }), /`calib` must be a Dataset/);
  model.delete();
  data.delete();
});

test('a sweep in WASM equals the native `bitlens sweep`, run for run, with a skewed, noisy calibration', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const progress = [];
  const r = await bl.sweep({
    model, data, calib: data, configs: [{ wbits: 4, abits: 4 }, { wbits: 3, abits: 3, softmax: 'log2' }],
    seeds: 3, calibSize: 16, calibSkew: 0.5, calibCorrupt: { type: 'noise', severity: 2 }, limit: 300,
  }, { onProgress: (p) => progress.push(p.done) });
  assert.deepEqual(progress, [0, 1, 2, 3, 4, 5, 6]);
  const native = nativeSweep('models/vit-fmnist-hf', 'models/data', ['--configs', 'w4a4', '--seeds', '3', '--calib-size', '16',
    '--calib-skew', '0.5', '--calib-corrupt', 'noise:2', '--limit', '300']);
  const native3 = nativeSweep('models/vit-fmnist-hf', 'models/data', ['--configs', 'w3a3', '--softmax', 'log2', '--seeds', '3',
    '--calib-size', '16', '--calib-skew', '0.5', '--calib-corrupt', 'noise:2', '--limit', '300']);
  assert.deepEqual(r.raw.configs[0].runs, native.configs[0].runs);
  assert.deepEqual(r.raw.configs[1].runs, native3.configs[0].runs);
  assert.deepEqual(r.raw.calibration, native.calibration);
  assert.equal(r.configs[0].top1Mean, native.configs[0].top1.mean);
  assert.equal(r.configs[0].worstCase.seed, native.configs[0].worst_case.seed);
  assert.equal(r.configs[0].seeds.length, 3);
  assert.ok(r.configs[0].modelBytes > 0 && r.configs[0].modelBytes < r.configs[1].modelBytes * 2);
  model.delete();
  data.delete();
});

test('a sweep stops when its AbortSignal fires, and bad sweep specs are Errors naming the field', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const ac = new AbortController();
  let runs = 0;
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w8a8', 'w4a4'], seeds: 5, calibSize: 8, limit: 50 },
    { signal: ac.signal, onProgress: ({ done }) => { runs = done; if (done === 2) ac.abort(); } }), { name: 'AbortError' });
  assert.equal(runs, 2);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w9a9'] }), /bit-width 9 is outside 2-8/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w4x4'] }), /not of the form W<bits>A<bits>/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w4a4'], seeds: 0 }), /'seeds' must be an integer from 1/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w4a4'], calibSize: 2000 }), /larger than the calibration pool/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w4a4'], calibCorrupt: 'fog:2' }), /fog/);
  await assert.rejects(bl.sweep({ model, data, calib: data, configs: ['w4a4'], colour: 1 }), /unknown option 'colour'/);
  model.delete();
  data.delete();
});

test('mixed precision in WASM (sensitivities, planMixed, sweep) equals `bitlens mixed`: sensitivities, allocation and accuracy', async () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const native = nativeMixed('models/vit-fmnist-hf', 'models/data', ['--budget', '4', '--objective', 'worst', '--seeds', '2',
    '--sens-size', '16', '--candidates', '2,4,8', '--limit', '300']);
  let total = 0;
  const sens = await bl.sensitivities({ model, calib: data, objective: 'worst', candidates: [2, 4, 8], sensSize: 16 },
    { onProgress: (p) => { total = p.total; } });
  assert.equal(total, (sens.weights.length + sens.activations.length) * 3);
  const plan = bl.planMixed(JSON.parse(JSON.stringify(sens)), { budget: 4 });
  const strip = (items) => items.map(({ name, bits, values, candidates, sensitivity }) => ({ name, bits, values, candidates, sensitivity }));
  assert.deepEqual(strip(plan.layers), native.allocation.layers);
  assert.deepEqual(strip(plan.points), native.allocation.points);
  assert.equal(plan.weightCost, native.allocation.weight_cost);
  assert.ok(plan.weightBitsAvg <= 4 && plan.actBitsAvg <= 4, `${plan.weightBitsAvg} ${plan.actBitsAvg}`);
  assert.ok(new Set(Object.values(plan.layerBits)).size > 1, 'a mixed plan, not one bit-width everywhere');
  const r = await bl.sweep({ model, data, calib: data, configs: [{ wbits: 4, abits: 4 }, { layerBits: plan.layerBits, pointBits: plan.pointBits }],
    seeds: 2, calibSize: 32, limit: 300 });
  for (const [k, name] of [[0, 'uniform'], [1, 'mixed']]) {
    assert.equal(r.configs[k].top1Mean, native[name].top1_mean, name);
    assert.deepEqual(r.configs[k].perClassMean, native[name].per_class_mean, name);
    assert.equal(r.configs[k].worstClass.accuracy, native[name].worst_class.accuracy, name);
    assert.equal(r.configs[k].worstCase.accuracy, native[name].worst_case.accuracy, name);
  }
  // A size budget: the same plan as `bitlens mixed --max-bytes`, and the quantized model is that size.
  const nativeBytes = nativeMixed('models/vit-fmnist-hf', 'models/data', ['--max-bytes', '110000', '--objective', 'worst', '--seeds', '1',
    '--sens-size', '16', '--candidates', '2,4,8', '--limit', '100']);
  const pb = bl.planMixed(sens, { maxBytes: 110000 });
  assert.deepEqual(strip(pb.layers), nativeBytes.allocation.layers);
  assert.equal(pb.modelBytes, nativeBytes.allocation.model_bytes);
  const qb = model.quantize({ calib: data, layerBits: pb.layerBits, pointBits: pb.pointBits });
  assert.equal(qb.info.modelBytes, pb.modelBytes);
  assert.ok(pb.modelBytes <= 110000);
  qb.delete();
  // Bad input: Errors that say what is wrong.
  assert.throws(() => bl.planMixed(sens, { maxBytes: 20000 }), /20000 bytes cannot hold the model: its FP32 tensors alone take \d+ bytes/);
  assert.throws(() => bl.planMixed(sens, { budget: 4, maxBytes: 110000 }), /give one of `budget`/);
  assert.throws(() => bl.planMixed(sens, { budget: 1 }), /budget \d+ is infeasible: the cheapest choices cost \d+/);
  assert.throws(() => bl.planMixed(sens, {}), /give one of `budget` \(average bits per weight\) or `maxBytes`/);
  assert.throws(() => bl.planMixed({ weights: [{ name: 'x' }], activations: [] }, { budget: 4 }), /sensitivities: an entry of 'weights' is malformed/);
  await assert.rejects(bl.sensitivities({ model, calib: data, objective: 'median' }), /sensitivities: `objective` must be 'mean' or 'worst', got "median"/);
  await assert.rejects(bl.sensitivities({ model, calib: data, candidates: [4, 9] }), /sensitivities: `candidates` must be whole bit-widths from 2 to 8, got \[4,9\]/);
  await assert.rejects(bl.sensitivities({ model, calib: data, colour: 1 }), /sensitivities: unknown option 'colour'/);
  await assert.rejects(bl.sensitivities({ model, calib: data, sensSize: 5000 }), /sensSize 5000 is larger than the calibration pool \(1000 images\)/);
  const ac = new AbortController();
  await assert.rejects(bl.sensitivities({ model, calib: data, sensSize: 4 }, { signal: ac.signal, onProgress: ({ done }) => { if (done === 3) ac.abort(); } }),
    { name: 'AbortError' });
  model.delete();
  data.delete();
});

test('exportSafetensors in WASM writes the same bytes as `bitlens quantize --out`, and loadModel reads it back', async () => {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-export-'));
  try {
    const files = modelFiles('models/vit-fmnist-hf');
    const model = bl.loadModel(files);
    const data = bl.loadDataset(defaultData());
    const q = model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 16, seed: 5 });
    const bytes = q.exportSafetensors();
    nativeQuantize('models/vit-fmnist-hf', 'models/data', ['--wbits', '4', '--abits', '4', '--calib-size', '16', '--seed', '5', '--out', dir]);
    assert.deepEqual(Buffer.from(bytes), readFileSync(join(dir, 'model.safetensors')));
    assert.ok(bytes.length < files.safetensors.length / 3);
    const back = bl.loadModel({ ...files, safetensors: bytes });
    assert.equal(back.info.quantized.name, 'W4A4');
    assert.deepEqual(back.evaluate(data), q.evaluate(data));
    assert.throws(() => back.quantize({ calib: data }), /already quantized/);
    for (const o of [back, q, model, data]) o.delete();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forwardRaw on a preprocessed input gives the logits classify gives on the encoded image', () => {
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const { pixels } = defaultImage(3);
  const png = encodePngGray(pixels, 28, 28);
  const pp = JSON.parse(modelFiles('models/vit-fmnist-hf').preprocessor);
  const x = Float32Array.from(pixels, (p) => (Math.fround(p / 255) - Math.fround(pp.image_mean[0])) / Math.fround(pp.image_std[0]));
  const logits = model.forwardRaw(x);
  const top = model.classify(png, { topK: 10 });
  for (const t of top) assert.ok(Math.abs(logits[t.index] - t.logit) < 1e-4);
  assert.throws(() => model.forwardRaw(new Float32Array(5)), /model input has 5 values, expected 784/);
  // preprocess() gives the same input as the hand computation above, and a larger RGB image is
  // converted and resized to the model's 1×28×28.
  const pre = model.preprocess(png);
  assert.equal(pre.length, 784);
  for (let i = 0; i < 784; i++) assert.ok(Math.abs(pre[i] - x[i]) < 1e-6, `pixel ${i}`);
  const rgb = new Uint8Array(56 * 40 * 3).map((_, i) => (i * 7) % 256);
  assert.equal(model.preprocess(encodePng(rgb, 56, 40, 3)).length, 784);
  assert.throws(() => model.preprocess(new Uint8Array([1, 2, 3]), { name: 'junk.png' }), /junk\.png: cannot decode image/);
  model.delete();
});
