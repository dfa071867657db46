// The library answers what the page used to answer itself (issue 18 item 6): the results CSV, a folder's class, the
// image extensions and a sweep's limits come from one implementation, so the page (through the package), the package
// and the CLI give the same bytes and the same errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, defaultData, defaultImage, encodePngGray, loadBitLens, modelFiles, path } from './helpers.mjs';

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
