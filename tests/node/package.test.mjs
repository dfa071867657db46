// The package as a user gets it: memory stays flat over many cycles, and `npm pack` installs into an
// empty folder and classifies an image there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
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

// The packed tarball, installed into an empty folder as a user would: `import` and `require`, the .wasm and
// package.json by package path, no process-wide handlers, and a failed load that names the file and the option.
test('npm pack installs into an empty folder: import and require classify an image, no process handlers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root }).toString().trim().split('\n').pop();
    execFileSync('npm', ['init', '-y'], { cwd: dir, stdio: 'ignore' });
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(dir, out)], { cwd: dir, stdio: 'ignore' });
    const { pixels } = defaultImage(7);
    writeFileSync(join(dir, 'img.png'), encodePngGray(pixels, 28, 28));
    const load = (bl, fs) => `${bl}.loadModel({ safetensors: ${fs}.readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/model.safetensors'))}),
        config: ${fs}.readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/config.json'))}, 'utf8'),
        preprocessor: ${fs}.readFileSync(${JSON.stringify(path('models/vit-fmnist-hf/preprocessor_config.json'))}, 'utf8') })`;
    writeFileSync(join(dir, 'run.mjs'), `
      import { createBitLens } from 'bitlens';
      import * as fs from 'node:fs';
      const bl = await createBitLens();
      console.log(JSON.stringify(${load('bl', 'fs')}.classify(fs.readFileSync('img.png'), { topK: 1 })[0]));
    `);
    writeFileSync(join(dir, 'run.cjs'), `
      const { createBitLens, Model } = require('bitlens');
      const fs = require('fs');
      if (typeof Model !== 'function') throw new Error('no Model class');
      createBitLens().then((bl) => console.log(JSON.stringify(${load('bl', 'fs')}.classify(fs.readFileSync('img.png'), { topK: 1 })[0])));
    `);
    // An app with its own unhandledRejection handler keeps running; 11 instances add no listener.
    writeFileSync(join(dir, 'handlers.cjs'), `
      process.on('unhandledRejection', (r) => console.log('handled: ' + r.message));
      process.on('warning', (w) => console.log('warning: ' + w.name));
      const { createBitLens } = require('bitlens');
      (async () => {
        for (let i = 0; i < 11; i++) await createBitLens();
        console.log('listeners ' + process.listenerCount('unhandledRejection') + ' ' + process.listenerCount('uncaughtException') + ' ' + process.listenerCount('exit'));
        Promise.reject(new Error('the app rejects'));
        setTimeout(() => console.log('still running'), 20);
      })();
    `);
    writeFileSync(join(dir, 'paths.mjs'), `
      import { createRequire } from 'node:module';
      import { createBitLens } from 'bitlens';
      const require = createRequire(import.meta.url);
      console.log(require.resolve('bitlens/bitlens-core.wasm'));
      console.log(require('bitlens/package.json').version);
      await createBitLens({ wasmPaths: '/nowhere/' }).catch((e) => console.log(e.message));
    `);
    const run = (f) => execFileSync('node', [f], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const bl = await createBitLens();
    const m = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
    const want = m.classify(encodePngGray(pixels, 28, 28), { topK: 1 })[0];
    m.delete();
    assert.deepEqual(JSON.parse(run('run.mjs')), want); // import: exactly the in-repo answer
    assert.deepEqual(JSON.parse(run('run.cjs')), want); // require: the same
    assert.equal(run('handlers.cjs'), 'listeners 1 0 0\nhandled: the app rejects\nstill running\n');
    const [wasm, version, message] = run('paths.mjs').trim().split('\n');
    assert.match(wasm, /node_modules\/bitlens\/web\/lib\/bitlens-core\.wasm$/);
    assert.equal(version, JSON.parse(readFileSync(path('package.json'), 'utf8')).version);
    assert.match(message, /\/nowhere\/bitlens-core\.wasm \(ENOENT\).*wasmPaths.*wasmBinary/);
    // The types as a user's TypeScript sees them through the installed package's `exports`: tsc --strict, with the
    // calls that must not compile marked @ts-expect-error (an unused one fails too).
    for (const f of ['tsconfig.json', 'api.ts', 'cjs.cts']) writeFileSync(join(dir, f), readFileSync(path(`tests/package/${f}`)));
    execFileSync(process.execPath, [path('node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, stdio: 'pipe' });
    const listed = execFileSync('tar', ['tzf', join(dir, out)]).toString().split('\n').filter(Boolean).sort();
    assert.deepEqual(listed, ['package/LICENSE', 'package/README.md', 'package/package.json', 'package/web/bitlens-remote.d.ts',
      'package/web/bitlens-remote.js', 'package/web/bitlens-worker.js', 'package/web/bitlens.d.ts', 'package/web/bitlens.js',
      'package/web/lib/bitlens-core-scalar.wasm', 'package/web/lib/bitlens-core.mjs', 'package/web/lib/bitlens-core.wasm',
      'package/web/lib/bitlens-relaxed.wasm', 'package/web/lib/bitlens.cjs']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the browser entry bundles as a classic script: no top-level await, no node: import, no process handlers', async () => {
  const { build } = await import('esbuild');
  // esbuild's iife format refuses top-level await, and its browser platform refuses node: modules.
  const r = await build({ entryPoints: [path('web/bitlens.js')], bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'silent' });
  assert.deepEqual(r.errors, []);
  for (const f of ['web/bitlens.js', 'web/lib/bitlens-core.mjs']) {
    const src = readFileSync(path(f), 'utf8');
    assert.doesNotMatch(src, /['"]node:/, `${f} names a node: module`);
    assert.doesNotMatch(src, /process\[?["'.]?on["'\]]*\(/, `${f} installs a process handler`);
  }
  assert.match(readFileSync(path('web/bitlens.js'), 'utf8'), /new URL\('\.\/lib\/bitlens-core\.wasm', import\.meta\.url\)/);
});
