// Relaxed SIMD in Chromium (issue 16): the package loads bitlens-relaxed.wasm beside the main module, sharing its
// memory, and the integer path's GEMMs for activations of at most 7 bits run i32x4.relaxed_dot_i8x16_i7x16_add —
// with logits bit for bit those of the SIMD128 kernels (backend: 'simd128') and of the module without SIMD
// (backend: 'scalar'), before and after the heap grows. And a Chromium with SIMD switched off, which gets the scalar
// module by itself, and a page served without its modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { missingPrerequisites, openPage } from './helpers.mjs';

const missing = missingPrerequisites();

// In the page: the shipped model's files, the default images, and 24 of them normalised as the model's preprocessor
// does ((x/255 − 0.2860) / 0.3530), left in globalThis.relaxedTest for the runs.
async function loadInPage() {
  const bytes = async (p) => new Uint8Array(await (await fetch(p)).arrayBuffer());
  const gunzip = async (b) => new Uint8Array(await new Response(new Blob([b]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
  const files = { safetensors: await bytes('/models/vit-fmnist-hf/model.safetensors'), config: await (await fetch('/models/vit-fmnist-hf/config.json')).text() };
  const idx = { idxImages: await bytes('/models/data/fmnist-test-1k-images-idx3-ubyte.gz'), idxLabels: await bytes('/models/data/fmnist-test-1k-labels-idx1-ubyte.gz') };
  const raw = await gunzip(idx.idxImages);
  const inputs = [];
  for (let i = 0; i < 24; i++) inputs.push(Float32Array.from(raw.subarray(16 + i * 784, 16 + (i + 1) * 784), (v) => (v / 255 - 0.286) / 0.353));
  globalThis.relaxedTest = { files, idx, inputs };
}

test('relaxed SIMD: backend relaxed-simd in Chromium, logits and accuracies bit-identical to forced simd128 and scalar (W4A4 with SULQ and with uniform probs, W8A6, W6A7 integer, attention matmuls on codes too; W8A8 stays SIMD128), also after memory growth', { skip: missing.length ? `missing: ${missing.join(', ')}` : false, timeout: 600_000 }, async () => {
  const problems = [];
  const { origin, page, close } = await openPage(problems);
  try {
    await page.goto(`${origin}/`);
    await page.evaluate(loadInPage);
    const r = await page.evaluate(async () => {
      const { createBitLens, relaxedSimdSupported } = await import('/web/bitlens.js');
      const { files, idx, inputs } = globalThis.relaxedTest;
      // W4A4 twice: SULQ probs (q·kᵀ on codes) and uniform probs (probs·v on codes too), both on the relaxed dot.
      const configs = [{ wbits: 4, abits: 4 }, { wbits: 4, abits: 4, softmax: 'uniform' }, { wbits: 8, abits: 6 }, { wbits: 6, abits: 7 },
        { wbits: 8, abits: 8 }];
      const run = async (bl) => {
        const model = bl.loadModel(files);
        const data = bl.loadDataset(idx);
        const out = [];
        for (const c of configs) {
          const q = model.quantize({ calib: data, calibSize: 16, seed: 3, integer: true, ...c });
          const logits = inputs.map((x) => Array.from(new Uint32Array(q.forwardRaw(x).buffer)));  // the bits
          out.push({ config: c, integerLayers: q.info.integerLayers, integerAttention: q.info.integerAttention, integerGelu: q.info.integerGelu, depth: q.info.blocks.length,
            logits, evaluate: q.evaluate(data, { limit: 300 }) });
          q.delete();
        }
        model.delete();
        data.delete();
        return out;
      };
      const gemm = (bl, relaxed) => JSON.parse(bl.module._benchIntGemm(37, 13, 200, false, relaxed, 1)).checksum
        + ',' + JSON.parse(bl.module._benchIntGemm(37, 13, 200, true, relaxed, 1)).checksum;
      const relaxed = await createBitLens();
      const simd = await createBitLens({ backend: 'simd128' });
      const scalar = await createBitLens({ backend: 'scalar' });
      const out = { supported: relaxedSimdSupported(), backends: [relaxed.backend, simd.backend, scalar.backend] };
      out.relaxed = await run(relaxed);
      out.simd = await run(simd);
      out.scalar = await run(scalar);
      out.gemm = [gemm(relaxed, true), gemm(relaxed, false), gemm(simd, false)];
      // Memory growth: an 80 MB request grows the shared heap; the relaxed module sees the same, larger memory.
      out.heapBefore = relaxed.module.HEAPU8.length;
      relaxed.quantizeTensor(new Float32Array(20_000_000), { bits: 4 });
      out.heapAfter = relaxed.module.HEAPU8.length;
      out.relaxedGrown = await run(relaxed);
      out.gemmGrown = gemm(relaxed, true);
      try { await createBitLens({ backend: 'avx' }); } catch (e) { out.badBackend = e.message; }
      const { createBitLensWorker } = await import('/web/bitlens-remote.js');
      for (const opts of [{}, { backend: 'simd128' }]) {
        const w = await createBitLensWorker(opts);
        (out.workerBackends ||= []).push(w.backend);
        w.terminate();
      }
      return out;
    });
    await page.waitForFunction(() => document.getElementById('st-backend').dataset.backend, null, { timeout: 120_000 });
    assert.equal(await page.textContent('#st-backend'), 'relaxed SIMD', 'the page says which kernels run');
    assert.equal(r.supported, true);
    assert.deepEqual(r.backends, ['relaxed-simd', 'simd128', 'scalar']);
    assert.deepEqual(r.workerBackends, ['relaxed-simd', 'simd128'], 'createBitLensWorker: the worker loads it too');
    assert.ok(r.heapAfter > r.heapBefore + 64e6, `heap grew: ${r.heapBefore} → ${r.heapAfter}`);
    for (const [i, c] of r.simd.entries()) {
      assert.ok(c.integerLayers > 0, `${JSON.stringify(c.config)}: integer layers`);
      // every block's q·kᵀ on codes; probs·v too with uniform probs (the default, SULQ, keeps it float)
      assert.equal(c.integerAttention, c.depth * (c.config.softmax === 'uniform' ? 2 : 1), `${JSON.stringify(c.config)}: integer attention`);
      // GELU on thresholds where fc2's input has ≤ 4 bits (the same codes: covered by the bitwise comparisons below)
      assert.equal(c.integerGelu, c.config.abits <= 4 ? c.depth : 0, `${JSON.stringify(c.config)}: GELU on thresholds`);
      assert.deepEqual(r.relaxed[i].logits, c.logits, `${JSON.stringify(c.config)}: logits bit for bit`);
      assert.deepEqual(r.relaxed[i].evaluate, c.evaluate, `${JSON.stringify(c.config)}: evaluation`);
      assert.deepEqual(r.relaxedGrown[i].logits, c.logits, `${JSON.stringify(c.config)}: logits after growth`);
      assert.deepEqual(r.scalar[i].logits, c.logits, `${JSON.stringify(c.config)}: the scalar module's logits`);
    }
    assert.equal(r.gemm[0], r.gemm[1], 'relaxed and SIMD128 GEMMs give the same sums');
    assert.equal(r.gemm[1], r.gemm[2]);
    assert.equal(r.gemmGrown, r.gemm[0]);
    assert.match(r.badBackend, /`backend` must be 'relaxed-simd', 'simd128', 'scalar'/);
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

// The configurations the SIMD-off browser and Node compare (integer paths and a simulated one), and one run of them:
// logits bits on 24 real images and an evaluation. A plain function, so that the page runs its own source text.
async function runConfigs(bl, files, idx, inputs) {
  const model = bl.loadModel(files);
  const data = bl.loadDataset(idx);
  const out = [];
  for (const c of [{ wbits: 4, abits: 4, integer: true }, { wbits: 4, abits: 4, softmax: 'uniform', integer: true }, { wbits: 8, abits: 8 }]) {
    const q = model.quantize({ calib: data, calibSize: 16, seed: 3, ...c });
    out.push({ config: c, logits: inputs.map((x) => Array.from(new Uint32Array(q.forwardRaw(x).buffer))), evaluate: q.evaluate(data, { limit: 300 }) });
    q.delete();
  }
  model.delete();
  data.delete();
  return out;
}

// SIMD really off: V8 compiles Wasm SIMD only where the CPU has SSE4.1, and --js-flags=--no-enable-sse4-1 hides it,
// so this Chromium rejects every SIMD module as an engine without SIMD does (tests/node/backends.test.mjs does the
// same to Node).
test('Chromium with Wasm SIMD off (--js-flags=--no-enable-sse4-1): the package and the page pick the scalar module by themselves and say so; its logits and evaluations are Node\'s SIMD128 ones bit for bit', { skip: missing.length ? `missing: ${missing.join(', ')}` : false, timeout: 600_000 }, async () => {
  const problems = [];
  const { origin, page, close } = await openPage(problems, { args: ['--js-flags=--no-enable-sse4-1'] });
  let r;
  try {
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, { timeout: 300_000 });
    const shown = await page.evaluate(() => ({ text: document.getElementById('st-backend').textContent, title: document.getElementById('st-backend').title }));
    await page.evaluate(loadInPage);
    r = await page.evaluate(`(async () => {
      const { createBitLens, simdSupported } = await import('/web/bitlens.js');
      const { files, idx, inputs } = globalThis.relaxedTest;
      const core = new Uint8Array(await (await fetch('/web/lib/bitlens-core.wasm')).arrayBuffer());
      const out = { simdSupported: simdSupported(), coreValidates: WebAssembly.validate(core) };
      try { await createBitLens({ backend: 'simd128' }); out.simd128 = 'loaded'; } catch (e) { out.simd128 = e.message; }
      const bl = await createBitLens();
      out.backend = bl.backend;
      out.runs = await (${runConfigs.toString()})(bl, files, idx, inputs);
      return out;
    })()`);
    r.shown = shown;
  } finally {
    await close();
  }
  assert.equal(r.coreValidates, false, 'the flag must really switch SIMD off: bitlens-core.wasm still validated');
  assert.equal(r.simdSupported, false);
  assert.match(r.simd128, /does not validate WebAssembly SIMD; use 'scalar'/);
  assert.equal(r.backend, 'scalar');
  assert.equal(r.shown.text, 'scalar (slow)', 'the page says which kernels run');
  assert.match(r.shown.title, /without SIMD/);
  // The same runs in this Node process on the SIMD128 module.
  const { createBitLens } = await import('../../web/bitlens.js');
  const { modelFiles, defaultData } = await import('../node/helpers.mjs');
  const idx = defaultData();
  const raw = gunzipSync(idx.idxImages);
  const inputs = Array.from({ length: 24 }, (_, i) => Float32Array.from(raw.subarray(16 + i * 784, 16 + (i + 1) * 784), (v) => (v / 255 - 0.286) / 0.353));
  const bl = await createBitLens({ backend: 'simd128' });
  const { safetensors, config } = modelFiles('models/vit-fmnist-hf');
  const node = await runConfigs(bl, { safetensors, config: config.toString() }, idx, inputs);
  for (const [i, c] of node.entries()) {
    assert.deepEqual(r.runs[i].config, c.config);
    assert.deepEqual(r.runs[i].logits, c.logits, `${JSON.stringify(c.config)}: logits bit for bit`);
    assert.deepEqual(r.runs[i].evaluate, c.evaluate, `${JSON.stringify(c.config)}: evaluation`);
  }
  assert.deepEqual(problems, []);
});

// A server without the WASM modules (a deployment that forgot web/lib): the page says what is missing and which file
// to serve, the header says no model, images or kernels loaded, and nothing hangs on "loading…".
test('the page without its WebAssembly (HTTP 404 for the modules): a readable error naming the file, the header says none', { skip: missing.length ? `missing: ${missing.join(', ')}` : false, timeout: 120_000 }, async () => {
  const problems = [];
  const { origin, page, close } = await openPage(problems);
  try {
    await page.context().route(/\/web\/lib\/bitlens-[a-z-]*\.wasm$/, (route) => route.fulfill({ status: 404, body: 'not here' }));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => document.getElementById('run-error').textContent.trim() !== '', null, { timeout: 60_000 });
    const error = await page.textContent('#run-error');
    assert.match(error, /the BitLens worker failed to start: .*bitlens-core\.wasm failed with HTTP 404/);
    assert.match(error, /npm run build:wasm/);
    for (const id of ['st-model', 'st-data', 'st-backend']) assert.equal(await page.textContent(`#${id}`), 'none', id);
    assert.equal(await page.evaluate(() => document.body.dataset.ready), undefined, 'the page must not claim to be ready');
  } finally {
    await close();
  }
  // The 404s themselves are the browser's console errors; anything else is not.
  assert.deepEqual(problems.filter((p) => !/404/.test(p)), []);
});
