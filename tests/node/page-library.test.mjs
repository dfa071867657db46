// The library answers what the page used to answer itself (issue 18 item 6): the results CSV, a folder's class, the
// image extensions and a sweep's limits come from one implementation, so the page (through the package), the package
// and the CLI give the same bytes and the same errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cli, defaultData, defaultImage, encodePng, encodePngGray, loadBitLens, modelFiles, path } from './helpers.mjs';

const bl = await loadBitLens();
const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
const data = bl.loadDataset(defaultData());
const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' });

async function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-page-lib-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('sweepCsv of a sweep in WASM is `bitlens sweep --csv` of the same sweep, byte for byte (groups too); so is sweepCsv of the CLI\'s JSON', async () => {
  await withDir(async (dir) => {
    const r = run('sweep', '--model', path('models/vit-fmnist-hf'), '--data', path('models/data'), '--calib', path('models/data'),
      '--configs', 'w8a8,w4a4', '--seeds', '2', '--calib-size', '8', '--limit', '100', '--groups', 'tops=0,2,4,6;shoes=5,7,9', '--jobs', '1',
      '--csv', join(dir, 'cli.csv'), '--json', join(dir, 'cli.json'));
    assert.equal(r.status, 0, r.stderr);
    const cliCsv = readFileSync(join(dir, 'cli.csv'), 'utf8');
    const w = await bl.sweep({ model, data, calib: data, configs: ['w8a8', 'w4a4'], seeds: 2, calibSize: 8, limit: 100, groups: 'tops=0,2,4,6;shoes=5,7,9' });
    assert.equal(bl.sweepCsv(w), cliCsv);
    assert.equal(bl.sweepCsv(JSON.parse(readFileSync(join(dir, 'cli.json'), 'utf8'))), cliCsv);
    assert.match(cliCsv, /^config,seed,kind,index,name,images,accuracy,fp32,drop\nW8A8,0,class,0,T-shirt\/top,/);
    assert.match(cliCsv, /\nW4A4,1,group,1,shoes,\d+,/);
  });
});

test('class folders: T-shirt_top is T-shirt/top by its letters and digits, and an unknown one is refused with one message, in the CLI, model.evaluate and classIndices alike', async () => {
  // A folder name cannot hold "/": the library matches by name (any case), then by letters and digits alone when
  // exactly one label folds the same, then by class number.
  assert.deepEqual(bl.classIndices(model, ['T-shirt_top', 't-shirt/top', 'T shirt top', 'TROUSER', '9']), [0, 0, 0, 1, 9]);
  await withDir((dir) => {
    const folders = ['T-shirt_top', 'Trouser'];
    folders.forEach((f, k) => {
      mkdirSync(join(dir, f));
      writeFileSync(join(dir, f, 'a.png'), encodePngGray(defaultImage(k).pixels, 28, 28));
    });
    const ok = run('eval', '--model', path('models/vit-fmnist-hf'), '--data', dir, '--json');
    assert.equal(ok.status, 0, ok.stderr);
    const cli = JSON.parse(ok.stdout);
    const files = folders.map((f, k) => ({ bytes: encodePngGray(defaultImage(k).pixels, 28, 28), name: `${f}/a.png`, label: f }));
    const ds = bl.loadDataset({ files });
    const ev = model.evaluate(ds);
    ds.delete();
    assert.deepEqual(ev.classCount, cli.class_count);
    assert.equal(ev.classCount[0], 1);
    assert.equal(ev.classCount[1], 1);

    mkdirSync(join(dir, 'Jacket'));
    writeFileSync(join(dir, 'Jacket', 'a.png'), encodePngGray(defaultImage(2).pixels, 28, 28));
    let message = '';
    try { bl.classIndices(model, ['Jacket', 'T-shirt_top', 'Trouser']); } catch (e) { message = e.message; }
    assert.match(message, /^dataset class 'Jacket' is not a class of the model \(10 classes: T-shirt\/top, Trouser, /);
    const r = run('eval', '--model', path('models/vit-fmnist-hf'), '--data', dir);
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(message), r.stderr);
    const bad = bl.loadDataset({ files: [...files, { bytes: encodePngGray(defaultImage(2).pixels, 28, 28), name: 'Jacket/a.png', label: 'Jacket' }] });
    assert.throws(() => model.evaluate(bad), { message });
    bad.delete();
  });
});

test('image extensions: bl.imageExtensions are what the CLI reads from a folder', async () => {
  assert.deepEqual(bl.imageExtensions, ['.png', '.jpg', '.jpeg', '.bmp', '.gif']);
  await withDir((dir) => {
    mkdirSync(join(dir, 'Trouser'));
    writeFileSync(join(dir, 'Trouser', 'a.PNG'), encodePngGray(defaultImage(1).pixels, 28, 28));
    writeFileSync(join(dir, 'Trouser', 'b.webp'), 'not read');
    const r = run('eval', '--model', path('models/vit-fmnist-hf'), '--data', dir, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).n, 1);
  });
});

test('a sweep\'s limits: checkSweep throws what sweep() throws, and accepts what it accepts', async () => {
  const spec = { model, data, calib: data, configs: ['w4a4'] };
  for (const bad of [{ seeds: 100001 }, { seeds: 0 }, { calibSize: 1001 }, { calibSkew: 2 }]) {
    let expected = '';
    try { await bl.sweep({ ...spec, ...bad }); } catch (e) { expected = e.message; }
    assert.ok(expected, JSON.stringify(bad));
    assert.throws(() => bl.checkSweep({ ...spec, ...bad }), { message: expected });
  }
  assert.equal(bl.checkSweep({ ...spec, seeds: 100000, calibSize: 1000 }).seeds, 100000);
});

test('training limits: checkTraining throws what model.qat(), inq(), prune() and SOS reconstruction throw, and accepts what they accept', async () => {
  const { checkTrainingOptions } = await import(process.env.BITLENS_JS ? pathToFileURL(process.env.BITLENS_JS).href
    : new URL('../../web/bitlens.js', import.meta.url).href);
  const train = bl.loadDataset(defaultData()).head(40);
  const run = { qat: (o) => model.qat(train, o), inq: (o) => model.inq(train, o), prune: (o) => model.prune(train, o),
    sos: (o) => model.quantize({ ...o, method: 'sos', calib: train }) };
  for (const [kind, bad] of [
    ['qat', { wbits: 4, abits: 4, epochs: 0 }], ['qat', { wbits: 4, abits: 4, epochs: 10001 }], ['qat', { wbits: 9, abits: 4 }], ['qat', { wbits: 4, abits: 1 }],
    ['qat', { budget: 1, epochs: 2 }], ['qat', { abudget: 4 }], ['qat', { wbits: 4, abits: 4, epochs: NaN }],
    ['inq', { wbits: 3, partitions: [50, 40, 100] }], ['inq', { wbits: 3, partitions: [50, 75] }], ['inq', { wbits: 3, epochsPerStep: 10001 }],
    ['prune', { keepHeads: 0 }], ['prune', { keepHeads: 0.1 }], ['prune', { keepMlp: 0.5, epochs: 1.5 }], ['prune', { epochs: 2 }],
    ['sos', { wbits: 4, abits: 4, reconIters: -1 }], ['sos', { wbits: 4, abits: 4, calibSize: 8, reconBatch: 16 }], ['sos', { wbits: 9, abits: 4 }],
  ]) {
    let expected = '';
    try { await run[kind](bad); } catch (e) { expected = e.message; }
    assert.ok(expected, `${kind} ${JSON.stringify(bad)} is refused`);
    assert.throws(() => bl.checkTraining(model, kind, bad), { message: expected }, `${kind} ${JSON.stringify(bad)}`);
    // The JavaScript half (no WASM) says the same, or nothing when the quantization settings are what is wrong.
    let js = null;
    try { checkTrainingOptions(kind, bad, { blocks: model.info.blocks }); } catch (e) { js = e.message; }
    assert.ok(js === expected || (js === null && /^(weights|activations) \(--[wa]bits\)/.test(expected)), `${kind} ${JSON.stringify(bad)}: ${js} vs ${expected}`);
  }
  // What the page used to refuse (more than 50 epochs; QBitOpt with one epoch) the library accepts.
  for (const [kind, ok] of [['qat', { wbits: 4, abits: 4, epochs: 60 }], ['qat', { budget: 4, epochs: 1 }], ['inq', { wbits: 3, epochsPerStep: 10000 }],
    ['prune', { keepHeads: 0.5, epochs: 10000 }], ['sos', { wbits: 4, abits: 4, reconIters: 20000, calibSize: 16 }]]) {
    assert.doesNotThrow(() => bl.checkTraining(model, kind, ok), `${kind} ${JSON.stringify(ok)}`);
    assert.doesNotThrow(() => checkTrainingOptions(kind, ok, { blocks: model.info.blocks }), `${kind} ${JSON.stringify(ok)}`);
  }
  assert.throws(() => checkTrainingOptions('ptq', {}), /^TypeError: checkTrainingOptions: `kind` must be 'qat', 'inq', 'prune' or 'sos', got "ptq"$/);
  assert.throws(() => bl.checkTraining(model, 'ptq', {}), /^TypeError: checkTraining: `kind` must be 'qat', 'inq', 'prune' or 'sos', got "ptq"$/);
  assert.throws(() => bl.checkTraining({}, 'qat', {}), /`model` must be a Model/);
  train.delete();
});

test('imageInfo reads a header with the library\'s decoder: the page skips what it calls no image, whatever the name', () => {
  const png = encodePngGray(defaultImage(0).pixels, 28, 28);
  assert.deepEqual(bl.imageInfo(png), { format: 'PNG', width: 28, height: 28, channels: 1 });
  assert.deepEqual(bl.imageInfo(encodePng(new Uint8Array(5 * 3 * 3).fill(7), 5, 3, 3)), { format: 'PNG', width: 5, height: 3, channels: 3 });
  assert.equal(bl.imageInfo(new TextEncoder().encode('not a png at all')), null);
  assert.equal(bl.imageInfo(png.subarray(0, 12)), null, 'a PNG cut inside its header');
  assert.throws(() => bl.imageInfo('x.png'), /imageInfo: expected a Uint8Array or ArrayBuffer, got string/);
  // Every image the decoder loads has an imageInfo: the default set's first images as PNG files.
  const files = [0, 1, 2].map((i) => ({ bytes: encodePngGray(defaultImage(i).pixels, 28, 28), name: `c/${i}.png`, label: 'Trouser' }));
  for (const f of files) assert.equal(bl.imageInfo(f.bytes).format, 'PNG');
});

test('attentionProbs: every head\'s attention matrix, rows summing to 1, whose class-token rows give attention()', () => {
  const png = encodePngGray(defaultImage(3).pixels, 28, 28);
  const { heads, tokens, values } = model.attentionProbs(png, { block: 1 });
  assert.equal(heads, model.info.heads);
  const { imageSize, patchSize, distillationToken } = model.info;
  assert.equal(tokens, (imageSize[0] / patchSize) * (imageSize[1] / patchSize) + 1 + (distillationToken ? 1 : 0), 'the patches and the class token');
  assert.equal(values.length, heads * tokens * tokens);
  for (let r = 0; r < heads * tokens; r++) {
    let sum = 0;
    for (let j = 0; j < tokens; j++) sum += values[r * tokens + j];
    assert.ok(Math.abs(sum - 1) < 1e-5, `row ${r} sums to ${sum}`);
  }
  const map = model.attention(png, { block: 1 });
  for (let j = 1; j < tokens; j++) {
    let mean = 0;
    for (let h = 0; h < heads; h++) mean += values[h * tokens * tokens + j] / heads;
    assert.ok(Math.abs(mean - map[j - 1]) < 1e-6, `patch ${j - 1}: ${mean} vs ${map[j - 1]}`);
  }
  // A quantized model's are after its post-softmax quantizer: at 3-bit uniform, few distinct values.
  const q = model.quantize({ wbits: 8, abits: 8, softmaxBits: 3, softmax: 'uniform', calib: data, calibSize: 8 });
  const qp = q.attentionProbs(png, { block: 1 });
  assert.ok(new Set(qp.values).size <= 8, `${new Set(qp.values).size} distinct values at 3 bits`);
  q.delete();
  assert.throws(() => model.attentionProbs(png, { block: 9 }), /^RangeError: attentionProbs: `block` must be a whole number from -\d+ to \d+ \(negative: from the last block\), got 9$/);
});
