// The JS API under abuse (issue 17, item 6): every entry point given wrong types, detached or empty buffers,
// NaN / Infinity in option numbers and huge counts answers with a JS Error naming the entry point and what is
// wrong — never a crash, a silent default or a hang — and 100 rounds of (bad input, then good input) keep
// working with the C++ heap in use flat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelFiles, defaultData, defaultImage, encodePngGray, loadBitLens } from './helpers.mjs';

const bl = await loadBitLens();
const files = modelFiles('models/vit-fmnist-hf');
const model = bl.loadModel(files);
const data = bl.loadDataset(defaultData());
const png = encodePngGray(defaultImage(0).pixels, 28, 28);

const detached = () => {
  const buf = new ArrayBuffer(16);
  structuredClone(buf, { transfer: [buf] });
  return buf;
};
const detachedView = () => {
  const u = new Uint8Array(16);
  structuredClone(u.buffer, { transfer: [u.buffer] });
  return u;
};
const BAD_NUMBERS = [NaN, Infinity, -Infinity, -1, 1.5, '4', 1e300];
// An option's error: named with its JS name by the JS checks (NaN and Infinity, which JSON would turn into null), or
// with its C++ name by the C++ checks (the rest).
const named = (what, js, cpp = js) => new RegExp(`${what}: \`${js.replace(/[.[\]]/g, '\\$&')}\` must be|'${cpp}' must be`);

// [what, call, expected message]: each call must throw (or reject with) an Error whose message matches.
function cases() {
  const c = [];
  const add = (what, f, re) => c.push([what, f, re]);
  // Loading
  add('loadModel(no argument)', () => bl.loadModel(), /loadModel: expected \{ safetensors, config/);
  add('loadModel(safetensors: number)', () => bl.loadModel({ ...files, safetensors: 5 }), /loadModel: safetensors: expected a Uint8Array or ArrayBuffer, got number/);
  add('loadModel(safetensors: empty)', () => bl.loadModel({ ...files, safetensors: new Uint8Array(0) }), /model\.safetensors.*(empty|too short|header)/);
  add('loadModel(safetensors: detached)', () => bl.loadModel({ ...files, safetensors: detached() }), /loadModel: safetensors: the ArrayBuffer is detached/);
  add('loadModel(safetensors: detached view)', () => bl.loadModel({ ...files, safetensors: detachedView() }), /loadModel: safetensors: the ArrayBuffer is detached/);
  add('loadModel(config: object)', () => bl.loadModel({ ...files, config: { hidden_size: 64 } }), /loadModel: config: expected text .*, got object/);
  add('loadModel(name: number)', () => bl.loadModel({ ...files, name: 7 }), /loadModel: `name` must be a string/);
  for (const h of [NaN, Infinity, -1, 1.5, '2', 1e6])
    add(`loadModel(heads: ${String(h)})`, () => bl.loadModel({ ...files, heads: h }), /loadModel: `heads` must be a whole number from 0 to 65536/);
  add('loadDataset(null)', () => bl.loadDataset(null), /loadDataset: expected \{ idxImages, idxLabels \} or \{ files/);
  add('loadDataset(idx detached)', () => bl.loadDataset({ idxImages: detached(), idxLabels: defaultData().idxLabels }), /loadDataset: idxImages: the ArrayBuffer is detached/);
  add('loadDataset(idx labels missing)', () => bl.loadDataset({ idxImages: defaultData().idxImages }), /loadDataset: idxLabels: expected a Uint8Array or ArrayBuffer, got undefined/);
  add('loadDataset(files empty)', () => bl.loadDataset({ files: [] }), /(no images|empty)/);
  add('loadDataset(files[0] not an object)', () => bl.loadDataset({ files: [3] }), /loadDataset: files\[0\] must be \{ bytes, name, label \}/);
  add('loadDataset(files[0].bytes string)', () => bl.loadDataset({ files: [{ bytes: 'x', name: 'a.png', label: 'a' }] }), /loadDataset: files\[0\]\.bytes: expected a Uint8Array/);
  add('loadDataset(files[0].bytes empty)', () => bl.loadDataset({ files: [{ bytes: new Uint8Array(0), name: 'a.png', label: 'a' }] }), /a\.png/);
  // Model methods
  for (const v of BAD_NUMBERS)
    add(`evaluate(limit: ${String(v)})`, () => model.evaluate(data, { limit: v }), /evaluate: `limit` must be a whole number ≥ 0/);
  add('evaluate(no data)', () => model.evaluate(), /evaluate: expected a Dataset/);
  add('classify(string)', () => model.classify('abc'), /classify: expected a Uint8Array or ArrayBuffer, got string/);
  add('classify(empty)', () => model.classify(new Uint8Array(0)), /image: (cannot decode|empty)/);
  add('classify(detached)', () => model.classify(detached()), /classify: the ArrayBuffer is detached/);
  for (const k of [NaN, 0, -1, 1.5, Infinity])
    add(`classify(topK: ${String(k)})`, () => model.classify(png, { topK: k }), /classify: `topK` must be a whole number ≥ 1/);
  for (const b of [NaN, 1.5, Infinity, 99, -99])
    add(`attention(block: ${String(b)})`, () => model.attention(png, { block: b }), /attention: `block` must be a whole number from -\d+ to \d+/);
  add('forwardRaw(wrong length)', () => model.forwardRaw(new Float32Array(5)), /model input has 5 values, expected 784 \(1x28x28\)/);
  add('forwardRaw(string)', () => model.forwardRaw('abc'), /forwardRaw: expected a Float32Array or an array of numbers/);
  add('forwardRaw(NaN)', () => model.forwardRaw(new Float32Array(784).fill(NaN)), /forwardRaw: value 0 is NaN/);
  add('weight(unknown)', () => model.weight('blocks.99.fc'), /no layer named 'blocks\.99\.fc'/);
  add('preprocess(number)', () => model.preprocess(1), /preprocess: expected a Uint8Array or ArrayBuffer, got number/);
  for (const v of BAD_NUMBERS)
    add(`gradients(limit: ${String(v)})`, () => model.gradients(data, { limit: v }), /gradients: `limit` must be a whole number ≥ 0/);
  // Quantization options
  for (const v of BAD_NUMBERS) {
    add(`quantize(wbits: ${String(v)})`, () => model.quantize({ calib: data, wbits: v }), named('quantize', 'wbits'));
    add(`quantize(calibSize: ${String(v)})`, () => model.quantize({ calib: data, calibSize: v }), named('quantize', 'calibSize', 'calib_size'));
    add(`quantize(seed: ${String(v)})`, () => model.quantize({ calib: data, seed: v }), named('quantize', 'seed'));
  }
  add('quantize(calibSize: 1e6)', () => model.quantize({ calib: data, calibSize: 1e6 }), /calibration size 1000000 is larger than the calibration pool \(1000 images\)/);
  add('quantize(options: string)', () => model.quantize('w4a4'), /quantize: the options must be an object/);
  add('quantize(layerBits: NaN)', () => model.quantize({ calib: data, layerBits: { head: NaN } }), /quantize: `layerBits\.head` must be a finite number, got NaN/);
  add('quantize(pointBits: [])', () => model.quantize({ calib: data, pointBits: [] }), /point_bits/);
  add('quantizeTensor(bits NaN)', () => bl.quantizeTensor([1, 2, 3], { bits: NaN }), /quantizeTensor: `bits` must be a whole number from 2 to 8/);
  add('quantizeTensor(values string)', () => bl.quantizeTensor('abc', { bits: 4 }), /quantizeTensor: expected a Float32Array or an array of numbers/);
  add('quantizeTensor(values NaN)', () => bl.quantizeTensor([1, NaN, 3], { bits: 4 }), /quantizeTensor: value 1 is NaN/);
  add('planMixed(budget NaN)', () => bl.planMixed({ weights: [], activations: [] }, { budget: NaN }), /planMixed: `budget` .* must be a number > 0/);
  add('planMixed(budget Infinity)', () => bl.planMixed({ weights: [], activations: [] }, { budget: Infinity }), /planMixed: `budget` .* must be a number > 0/);
  add('planMixed(abudget NaN)', () => bl.planMixed({ weights: [], activations: [] }, { budget: 4, abudget: NaN }), /planMixed: `abudget` .* must be a number > 0/);
  add('mergeSweeps([1])', () => bl.mergeSweeps([1]), /parts\[0\] is not a part of a sweep/);
  // Runs: huge counts and non-finite numbers
  const sweep = (o) => bl.sweep({ model, data, calib: data, configs: ['w4a4'], ...o });
  for (const v of [NaN, Infinity, -1, 1.5, 1e9])
    add(`sweep(seeds: ${String(v)})`, () => sweep({ seeds: v }), v === 1e9 ? /sweep: 'seeds' must be an integer from 1 to 100000, found 1000000000/ : named('sweep', 'seeds'));
  for (const v of [NaN, Infinity, 1e12, 2000])
    add(`sweep(calibSize: ${String(v)})`, () => sweep({ calibSize: v }), v === 2000 ? /calibration size 2000 is larger than the calibration pool \(1000 images\)/ : named('sweep', 'calibSize'));
  for (const v of [NaN, -1, Infinity])
    add(`sweep(limit: ${String(v)})`, () => sweep({ limit: v }), named('sweep', 'limit'));
  add('sweep(calibSkew NaN)', () => sweep({ calibSkew: NaN }), named('sweep', 'calibSkew'));
  add('sweep(calibSkew 2)', () => sweep({ calibSkew: 2 }), /calib(ration)? ?skew/i);
  add('sweep(firstSeed -1)', () => sweep({ firstSeed: -1 }), named('sweep', 'firstSeed'));
  add('sweep(configs: [{wbits: NaN}])', () => sweep({ configs: [{ wbits: NaN }] }), /sweep: `wbits` must be a finite number, got NaN/);
  add('sweep(configs: [5])', () => sweep({ configs: [5] }), /sweep: `configs\[0\]` must be a string like 'w4a4' or an options object/);
  add('sweep(no spec)', () => bl.sweep(), /sweep: `model` must be a Model/);
  const sens = (o) => bl.sensitivities({ model, calib: data, ...o });
  for (const v of [NaN, Infinity, 0, 1.5])
    add(`sensitivities(sensSize: ${String(v)})`, () => sens({ sensSize: v }), /sensitivities: `sensSize` must be a whole number ≥ 1/);
  add('sensitivities(sensSize: 1e9)', () => sens({ sensSize: 1e9 }), /sensitivities: sensSize 1000000000 is larger than the calibration pool \(1000 images\)/);
  add('sensitivities(candidates: [NaN])', () => sens({ candidates: [NaN] }), /sensitivities: `candidates` must be whole bit-widths from 2 to 8/);
  add('sensitivities(objective: 3)', () => sens({ objective: 3 }), /sensitivities: `objective` must be 'mean' or 'worst'/);
  // What the page asks the library (issue 18 item 6): class names, a sweep's settings, the CSV, a dataset's images
  add('classIndices(no model)', () => bl.classIndices(null, ['Shirt']), /classIndices: `model` must be a Model/);
  add('classIndices(names: string)', () => bl.classIndices(model, 'Shirt'), /classIndices: `names` must be an array of class names/);
  add('classIndices(names: [3])', () => bl.classIndices(model, [3]), /classIndices: `names` must be an array of class names/);
  add('classIndices(unknown name)', () => bl.classIndices(model, ['Jacket']), /dataset class 'Jacket' is not a class of the model \(10 classes: T-shirt\/top, /);
  add('classIndices(class 10)', () => bl.classIndices(model, ['10']), /dataset class '10' is not a class of the model/);
  const check = (o) => bl.checkSweep({ model, data, calib: data, configs: ['w4a4'], ...o });
  for (const v of [NaN, Infinity, -1, 1.5])
    add(`checkSweep(seeds: ${String(v)})`, () => check({ seeds: v }), named('sweep', 'seeds'));
  add('checkSweep(seeds: 100001)', () => check({ seeds: 100001 }), /sweep: 'seeds' must be an integer from 1 to 100000, found 100001/);
  add('checkSweep(calibSize: 2000)', () => check({ calibSize: 2000 }), /calibration size 2000 is larger than the calibration pool \(1000 images\)/);
  add('checkSweep(configs: [])', () => check({ configs: [] }), /sweep: `configs` must be a non-empty array/);
  add('checkSweep(calibClasses: [12])', () => check({ calibClasses: [12] }), /'12' is not a class of the model \(10 classes: 0=T-shirt/);
  add('checkSweep(no spec)', () => bl.checkSweep(), /sweep: `model` must be a Model/);
  add('sweepCsv(null)', () => bl.sweepCsv(null), /sweepCsv: expected a sweep's result, got null/);
  add('sweepCsv({})', () => bl.sweepCsv({}), /sweepCsv: expected a sweep's result .*'labels'/);
  add('sweepCsv(short per_class)', () => bl.sweepCsv({ labels: ['a', 'b'], class_count: [1, 1], fp32: { per_class: [1] }, configs: [] }), /sweepCsv: .*'fp32\.per_class' must hold 2 numbers, found 1/);
  add('sweepCsv(NaN)', () => bl.sweepCsv({ labels: ['a'], class_count: [NaN] }), /sweepCsv: `class_count\[0\]` must be a finite number, got NaN/);
  for (const v of [NaN, -1, 1.5, Infinity, '3'])
    add(`dataset.head(${String(v)})`, () => data.head(v), /head: `limit` must be a whole number ≥ 0/);
  for (const v of [NaN, -1, 1.5, Infinity])
    add(`dataset.image(${String(v)})`, () => data.image(v), /image: `index` must be a whole number ≥ 0/);
  add('dataset.image(1000)', () => data.image(1000), /image: index 1000 is outside the dataset's 1000 images/);
  add('dataset.head after delete', () => { const d = data.head(3); d.delete(); return d.head(1); }, /Dataset: used after delete\(\)/);
  // Training runs take the same number checks
  for (const v of [NaN, Infinity, 0, 1e9])
    add(`qat(epochs: ${String(v)})`, () => model.qat(data, { epochs: v }), /qat: `epochs` must be a whole number from 1 to 10000/);
  add('qat(batch: 1e300)', () => model.qat(data, { batch: 1e300 }), /qat: `batch` must be a whole number from 1 to 65536, got 1e\+300/);
  add('qat(lr: NaN)', () => model.qat(data, { lr: NaN }), /qat: `lr` must be a number > 0/);
  add('inq(wbits: NaN)', () => model.inq(data, { wbits: NaN }), /inq: `wbits` must be a whole number from 2 to 8/);
  add('prune(keepHeads: NaN)', () => model.prune(data, { keepHeads: NaN }), /prune: `keepHeads` must be a fraction in \(0, 1\]/);
  add('prune(train: null)', () => model.prune(null), /prune: the training images must be a Dataset/);
  return c;
}

async function expectError(what, f, re) {
  let err = null;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${what}: did not throw`);
  assert.ok(err instanceof Error, `${what}: threw ${typeof err} ${String(err)} (not an Error)`);
  assert.match(err.message, re, `${what}: message ${JSON.stringify(err.message)}`);
}

test('every entry point answers wrong types, detached/empty buffers, NaN/Infinity and huge counts with an Error naming the problem', async () => {
  const failures = [];
  for (const [what, f, re] of cases()) {
    try {
      await expectError(what, f, re);
    } catch (e) {
      failures.push(e.message);
    }
  }
  assert.deepEqual(failures, []);
});

test('100 rounds of (bad input, then good input): the module keeps working and the C++ heap in use stays flat', async () => {
  const round = async () => {
    for (const [what, f, re] of [
      ['bad safetensors', () => bl.loadModel({ ...files, safetensors: files.safetensors.subarray(0, 200) }), /beyond the end of the file|header/],
      ['bad config', () => bl.loadModel({ ...files, config: '{"hidden_size": "x"}' }), /hidden_size/],
      ['bad quantize', () => model.quantize({ calib: data, calibSize: 5000 }), /larger than the calibration pool/],
      ['bad image', () => model.classify(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])), /image/],
      ['bad sweep', () => bl.sweep({ model, data, calib: data, configs: ['w9a9'] }), /bit-width 9 is outside 2-8/],
      ['bad dataset', () => bl.loadDataset({ idxImages: new Uint8Array(20), idxLabels: new Uint8Array(20) }), /idx|IDX|magic/],
      ['bad class name', () => bl.classIndices(model, ['Jacket']), /not a class of the model/],
      ['bad sweep check', () => bl.checkSweep({ model, data, calib: data, configs: ['w4a4'], calibSize: 5000 }), /larger than the calibration pool/],
      ['bad sweep CSV', () => bl.sweepCsv({ labels: ['a'], class_count: [1, 2], fp32: { per_class: [1] }, configs: [] }), /one count per label/],
      ['bad image index', () => data.image(5000), /outside the dataset/],
    ]) await expectError(what, f, re);
    const m = bl.loadModel(files);
    const top = m.classify(png, { topK: 1 })[0];
    m.delete();
    return top.label;
  };
  const first = await round();
  const before = bl.module._heapInUse();
  for (let i = 0; i < 100; i++) assert.equal(await round(), first);
  const after = bl.module._heapInUse();
  assert.ok(after - before <= 4096, `the heap in use grew by ${after - before} bytes over 100 rounds`);
});
