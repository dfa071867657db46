// The integer GEMMs in Chromium (issue 16): relaxed SIMD (bitlens-relaxed.wasm) against SIMD128, on DeiT-tiny's
// Linear shapes (197 tokens; qkv, proj, fc1, fc2), int8 and int4 weights, activation codes in [0, 127], through
// the shipped module's _benchIntGemm. A benchmark, not a test: it prints GOP/s (2·M·N·K per GEMM), the ratio,
// PASS/MISS against the 150 GOP/s target for the relaxed int8 GEMM, and checks that both give the same sums.
//
//   node tests/bench/gemm-browser.mjs [--seconds 0.5]
// `npm run bench -- --browser` (models-browser.mjs) calls gemmRates on its own page and keeps the rates in results.json.
import { pathToFileURL } from 'node:url';

const SHAPES = [['qkv', 197, 576, 192], ['proj', 197, 192, 192], ['fc1', 197, 768, 192], ['fc2', 197, 192, 768]];

/**
 * On a page of an origin that serves /web/ and /models/: { rows: [{ weights, shape, relaxed, simd128, same }] (GOP/s),
 * models: [{ config, relaxed, simd128 }] (vit-fmnist-hf ms per image), int8_mean } (relaxed int8 GOP/s over the shapes).
 */
export async function gemmRates(page, { seconds = 0.5 } = {}) {
  const { out: rows, models } = await page.evaluate(async ({ SHAPES, seconds }) => {
    const { createBitLens } = await import('/web/bitlens.js');
    const relaxed = await createBitLens();
    const simd = await createBitLens({ backend: 'simd128' });
    if (relaxed.backend !== 'relaxed-simd') throw new Error(`backend ${relaxed.backend}: this Chromium has no relaxed SIMD`);
    // GOP/s of the best of 3 timed batches, each about `seconds` long.
    const rate = (bl, useRelaxed, int4, [, M, N, K]) => {
      const run = (iters) => JSON.parse(bl.module._benchIntGemm(M, N, K, int4, useRelaxed, iters));
      const once = run(3);
      const iters = Math.max(3, Math.round(seconds / (once.seconds / 3)));
      let best = Infinity, checksum;
      for (let r = 0; r < 3; r++) { const t = run(iters); best = Math.min(best, t.seconds / iters); checksum = t.checksum; }
      return { gops: (2 * M * N * K) / best / 1e9, checksum };
    };
    const out = [];
    for (const int4 of [false, true]) {
      for (const s of SHAPES) {
        const a = rate(relaxed, true, int4, s), b = rate(simd, false, int4, s);
        out.push({ weights: int4 ? 'int4' : 'int8', shape: `${s[0]} ${s[1]}×${s[2]}×${s[3]}`, relaxed: a.gops, simd128: b.gops, same: a.checksum === b.checksum });
      }
    }
    // The shipped model at W4A4 and W8A6 on the integer path: ms per image (forwardRaw, best of 3 passes over 200 inputs).
    const bytes = async (p) => new Uint8Array(await (await fetch(p)).arrayBuffer());
    const files = { safetensors: await bytes('/models/vit-fmnist-hf/model.safetensors'), config: await (await fetch('/models/vit-fmnist-hf/config.json')).text() };
    const idx = { idxImages: await bytes('/models/data/fmnist-test-1k-images-idx3-ubyte.gz'), idxLabels: await bytes('/models/data/fmnist-test-1k-labels-idx1-ubyte.gz') };
    const inputs = Array.from({ length: 200 }, (_, i) => Float32Array.from({ length: 784 }, (_, j) => Math.sin(i * 784 + j)));
    const models = [];
    for (const c of [{ wbits: 4, abits: 4 }, { wbits: 8, abits: 6 }]) {
      const ms = [];
      for (const bl of [relaxed, simd]) {
        const model = bl.loadModel(files), data = bl.loadDataset(idx);
        const q = model.quantize({ calib: data, calibSize: 16, integer: true, ...c });
        let best = Infinity;
        for (let r = 0; r < 3; r++) {
          const t0 = performance.now();
          for (const x of inputs) q.forwardRaw(x);
          best = Math.min(best, (performance.now() - t0) / inputs.length);
        }
        ms.push(best);
        q.delete(); model.delete(); data.delete();
      }
      models.push({ config: `W${c.wbits}A${c.abits}`, relaxed: ms[0], simd128: ms[1] });
    }
    return { out, models };
  }, { SHAPES, seconds });
  const int8 = rows.filter((r) => r.weights === 'int8').map((r) => r.relaxed);
  return { rows, models, int8_mean: int8.reduce((a, b) => a + b, 0) / int8.length };
}

export function printGemmRates({ rows, models, int8_mean: mean }) {
  console.log('integer GEMM in Chromium, one thread (GOP/s; M×N×K)');
  console.log('weights  shape              relaxed  simd128  ratio  same sums');
  for (const r of rows) {
    console.log(`${r.weights.padEnd(8)} ${r.shape.padEnd(18)} ${r.relaxed.toFixed(1).padStart(7)}  ${r.simd128.toFixed(1).padStart(7)}  ${(r.relaxed / r.simd128).toFixed(2).padStart(5)}  ${r.same}`);
  }
  console.log(`relaxed int8 GEMM, mean over DeiT-tiny shapes: ${mean.toFixed(1)} GOP/s — ${mean >= 150 ? 'PASS' : 'MISS'} (target 150)`);
  console.log('vit-fmnist-hf, integer path, ms per image (forwardRaw)');
  for (const m of models) console.log(`${m.config.padEnd(6)} relaxed ${m.relaxed.toFixed(3)}  simd128 ${m.simd128.toFixed(3)}  speed-up ${(m.simd128 / m.relaxed).toFixed(2)}×`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { openPage } = await import('../e2e/helpers.mjs');
  const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 0.5;
  const problems = [];
  const { origin, page, close } = await openPage(problems);
  try {
    await page.goto(`${origin}/`);
    printGemmRates(await gemmRates(page, { seconds }));
    if (problems.length) console.log(problems.join('\n'));
  } finally {
    await close();
  }
}
