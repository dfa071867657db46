// The package as a user gets it: memory stays flat over many cycles, and `npm pack` installs into an
// empty folder and classifies an image there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens } from '../../web/bitlens.js';
import { root, path, modelFiles, defaultData, encodePngGray, defaultImage } from './helpers.mjs';

test('WASM memory stays flat over 100 quantize/evaluate/delete cycles', async () => {
  const bl = await createBitLens();
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const cycle = (i) => {
    const q = model.quantize({ calib: data, wbits: 4 + (i % 4), abits: 8, calibSize: 4, seed: i, weightRange: 'minmax', actRange: 'minmax' });
    q.evaluate(data, { limit: 20 });
    q.delete();
  };
  for (let i = 0; i < 10; i++) cycle(i); // warm-up: the heap grows to its working size
  const before = bl.module.HEAPU8.length;
  for (let i = 10; i < 110; i++) cycle(i);
  const after = bl.module.HEAPU8.length;
  assert.equal(after, before, `heap grew from ${before} to ${after} bytes`);
  model.delete();
  data.delete();
});

test('npm pack installs into an empty folder and classifies an image there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root }).toString().trim().split('\n').pop();
    execFileSync('npm', ['init', '-y'], { cwd: dir, stdio: 'ignore' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(dir, out)], { cwd: dir, stdio: 'ignore' });
    const { pixels } = defaultImage(7);
    writeFileSync(join(dir, 'img.png'), encodePngGray(pixels, 28, 28));
    writeFileSync(join(dir, 'run.mjs'), `
      import { createBitLens } from 'bitlens';
      import { readFileSync } from 'node:fs';
      const bl = await createBitLens();
      const m = bl.loadModel({ safetensors: readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/model.safetensors'))}),
        config: readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/config.json'))}, 'utf8'),
        preprocessor: readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/preprocessor_config.json'))}, 'utf8') });
      console.log(JSON.stringify(m.classify(readFileSync('img.png'), { topK: 1 })[0]));
    `);
    const top = JSON.parse(execFileSync('node', ['run.mjs'], { cwd: dir }).toString());
    const bl = await createBitLens();
    const m = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
    const want = m.classify(encodePngGray(pixels, 28, 28), { topK: 1 })[0];
    assert.deepEqual(top, want); // the installed package gives exactly the in-repo answer
    assert.equal(typeof top.label, 'string');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
