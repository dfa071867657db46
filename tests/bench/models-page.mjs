// The browser side of tests/bench/models-browser.mjs: imported by its page (served by it), never by Node. One model:
// BitLens with relaxed SIMD and with SIMD128 (FP32, and the integer path at W4A4 and W8A8) against onnxruntime-web's wasm
// backend (one thread; the fp32 ONNX and ORT's dynamic int8 form), all on the same preprocessed image, interleaved
// round by round. Returns the per-round samples (ms) for Node to summarise, and the checks.
//
// The page serves: /web/ (the package), /ort/ (node_modules/onnxruntime-web/dist), /bench/<key>/ (make_models.py's
// exports), /models/ (the shipped models), /mem/<key>/ (the bench's images: input.f32 and calib<i>.png).
import { createBitLens } from '/web/bitlens.js';
import * as ort from '/ort/ort.wasm.min.mjs';

ort.env.wasm.numThreads = 1;
ort.env.wasm.simd = true;
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = '/ort/';
ort.env.logLevel = 'error';

let runtimes;
async function bitlensRuntimes() {
  runtimes ??= Promise.all([createBitLens({ backend: 'relaxed-simd' }), createBitLens({ backend: 'simd128' })]);
  return runtimes;
}

const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};
const text = async (url) => new TextDecoder().decode(await bytes(url));
const argmax = (a) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
const maxAbsDiff = (a, b) => { let d = 0; for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i])); return d; };
const sameBits = (a, b) => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

// The same interleaving as common.mjs's roundRobin, raw samples only, except that each sample is `reps` calls (per-call
// ms returned): reps makes the fastest variant's sample ≥ 20 ms, as the page's clock may be coarse (100 µs without
// cross-origin isolation, 5 µs with it).
async function roundRobin(variants, { runs, warmup }) {
  for (let w = 0; w < warmup; w++) for (const v of variants) await v.fn();
  let fastest = Infinity;
  for (const v of variants) { const t0 = performance.now(); await v.fn(); fastest = Math.min(fastest, performance.now() - t0); }
  const reps = Math.max(1, Math.ceil(20 / Math.max(fastest, 0.005)));
  const t = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let r = 0; r < runs; r++)
    for (const v of variants) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) await v.fn();
      t[v.name].push((performance.now() - t0) / reps);
    }
  return { t, reps };
}

/**
 * key: the model's name; model: URL of its folder (model.safetensors, config.json, and preprocessor_config.json when
 * `preprocessor`);
 * onnx: URL of the folder with model.onnx and model.int8.onnx; shape [C, H, W]; calib: number of calibration PNGs under
 * /mem/<key>/, labels: their label names (or null: any of the model's); configs: integer-path bit-widths.
 */
export async function benchModel({ key, model: modelUrl, preprocessor, onnx, shape, calib: ncal, labels, runs, warmup, configs }) {
  const [relaxed, simd] = await bitlensRuntimes();
  if (relaxed.backend !== 'relaxed-simd') throw new Error(`backend ${relaxed.backend}: this Chromium has no relaxed SIMD`);
  const res = { model: key, notes: [], checks: {} };
  const made = [], sessions = {};
  try {
    const files = { safetensors: await bytes(`${modelUrl}/model.safetensors`), config: await text(`${modelUrl}/config.json`),
      preprocessor: preprocessor ? await text(`${modelUrl}/preprocessor_config.json`) : undefined };
    const input = new Float32Array((await bytes(`/mem/${key}/input.f32`)).buffer);
    const pngs = await Promise.all(Array.from({ length: ncal }, (_, i) => bytes(`/mem/${key}/calib${i}.png`)));

    // BitLens: FP32 and the integer path, on both backends.
    const V = [], logits = {};
    const q = {};
    for (const [name, bl] of [['relaxed', relaxed], ['simd128', simd]]) {
      const m = bl.loadModel(files);
      made.push(m);
      const names = m.info.labels;
      const data = bl.loadDataset({ files: pngs.map((b, i) => ({ bytes: b, name: `img${i}.png`, label: labels ? names[labels[i]] : names[i % names.length] })) });
      made.push(data);
      logits[`bitlens_${name}_fp32`] = m.forwardRaw(input);
      V.push({ name: `bitlens_${name}_fp32`, fn: () => m.forwardRaw(input) });
      for (const c of configs) {
        const t0 = performance.now();
        const qm = m.quantize({ calib: data, calibSize: ncal, integer: true, seed: 0, ...c });
        made.push(qm);
        const id = `w${c.wbits}a${c.abits}`;
        res[`quantize_${name}_${id}_ms`] = +(performance.now() - t0).toFixed(1);
        res[`${id}_integer_layers`] = `${qm.info.integerLayers}/${m.info.layers.length}`;
        res[`${id}_integer_attention`] = qm.info.integerAttention;  // q·kᵀ per block, + probs·v with uniform probs
        res[`${id}_integer_gelu`] = qm.info.integerGelu;  // blocks whose GELU runs on thresholds
        q[`${name}_${id}`] = qm;
        logits[`bitlens_${name}_${id}`] = qm.forwardRaw(input);
        V.push({ name: `bitlens_${name}_${id}`, fn: () => qm.forwardRaw(input) });
      }
    }
    // onnxruntime-web: fp32, and its dynamic int8 (MatMul → DynamicQuantizeMatMul; make_models.py's model.int8.onnx).
    const [C, H, W] = shape;
    for (const [name, file] of [['fp32', 'model.onnx'], ['int8', 'model.int8.onnx']]) {
      let buf;
      try { buf = await bytes(`${onnx}/${file}`); } catch (e) { res.notes.push(`ORT ${name}: ${e.message}`); continue; }
      const s = await ort.InferenceSession.create(buf, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      sessions[name] = s;
      const feeds = { [s.inputNames[0]]: new ort.Tensor('float32', input, [1, C, H, W]) };
      logits[`ort_${name}`] = (await s.run(feeds))[s.outputNames[0]].data;
      V.unshift({ name: `ort_${name}`, fn: () => s.run(feeds) });
    }
    // Checks: BitLens FP32 against ORT fp32 (same weights), relaxed against SIMD128 (bit for bit), top-1s.
    const fp = logits.bitlens_relaxed_fp32;
    if (logits.ort_fp32) {
      const m = Math.max(...logits.ort_fp32.map(Math.abs));
      res.checks.fp32_vs_ort_max_abs_diff = +maxAbsDiff(fp, logits.ort_fp32).toExponential(3);
      res.checks.fp32_vs_ort_ok = argmax(fp) === argmax(logits.ort_fp32) && res.checks.fp32_vs_ort_max_abs_diff <= 1e-3 * Math.max(1, m);
    }
    for (const c of configs) {
      const id = `w${c.wbits}a${c.abits}`;
      res.checks[`${id}_relaxed_equals_simd128`] = sameBits(logits[`bitlens_relaxed_${id}`], logits[`bitlens_simd128_${id}`]);
    }
    res.checks.top1 = Object.fromEntries(Object.entries(logits).map(([k, v]) => [k, argmax(v)]));
    res.variants = V.map((v) => v.name);
    const { t, reps } = await roundRobin(V, { runs, warmup });
    res.raw = t;
    res.reps = reps;
    res.cross_origin_isolated = globalThis.crossOriginIsolated;
    return res;
  } finally {
    for (const m of made.reverse()) m.delete();
    for (const s of Object.values(sessions)) await s.release();
  }
}

export const ortVersion = () => ort.env.versions?.web ?? ort.env.versions?.common ?? null;
export const userAgent = () => navigator.userAgent;
