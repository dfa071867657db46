// What the Node bench (bench.mjs) and the browser bench (models-browser.mjs) share: interleaved timing, the bench's
// deterministic images and their preprocessing, and the cached models of tests/bench/make_models.py (DeiT-tiny and
// DeiT-small with random weights, the shipped models, each as safetensors + fp32 ONNX + ORT's dynamic int8 ONNX).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const HERE = path.join(ROOT, 'tests/bench');

// ------------------------------------------------------------------------------------------------
// Statistics and interleaved timing

export function stats(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  return { median_ms: +median.toFixed(4), best_ms: +s[0].toFixed(4), mean_ms: +mean.toFixed(4), worst_ms: +s[n - 1].toFixed(4), runs: n };
}

// variants: [{ name, fn }]; each round runs every variant once (in order), after `warmup` rounds, so all variants see
// the same machine load. Returns { name: stats }, with the per-round samples in the non-enumerable `raw`.
export async function roundRobin(variants, { runs, warmup }) {
  for (let w = 0; w < warmup; w++) for (const v of variants) await v.fn();
  const t = Object.fromEntries(variants.map((v) => [v.name, []]));
  for (let r = 0; r < runs; r++)
    for (const v of variants) {
      const t0 = performance.now();
      await v.fn();
      t[v.name].push(performance.now() - t0);
    }
  const out = Object.fromEntries(Object.entries(t).map(([k, s]) => [k, stats(s)]));
  Object.defineProperty(out, 'raw', { value: t, enumerable: false });
  return out;
}

// ------------------------------------------------------------------------------------------------
// Inputs: deterministic images, PNG-encoded for bitlens and preprocessed the same way for ORT

export function xorshift(seed) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}
// Random images with some structure (smooth colour fields plus noise), so they are not all alike. HWC bytes.
export function syntheticImages(count, w, h, ch, seed) {
  const r = xorshift(seed), out = [];
  for (let n = 0; n < count; n++) {
    const px = new Uint8Array(w * h * ch), base = [], fx = [], fy = [];
    for (let c = 0; c < ch; c++) base.push(r() % 256), fx.push((r() % 7) + 1), fy.push((r() % 5) + 1);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let c = 0; c < ch; c++) {
          const v = base[c] + 70 * Math.sin((x * fx[c]) / w * Math.PI) * Math.cos((y * fy[c]) / h * Math.PI) + ((r() % 61) - 30);
          px[(y * w + x) * ch + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
    out.push(px);
  }
  return out;
}
export function readIdx(buf) {
  const b = buf[0] === 0x1f && buf[1] === 0x8b ? gunzipSync(buf) : buf;
  const nd = b[3], dims = [];
  for (let i = 0; i < nd; i++) dims.push(b.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(b.buffer, b.byteOffset + 4 + 4 * nd, dims.reduce((a, c) => a * c, 1)) };
}
// bitlens' preprocess() in float32: v = p/255; v = (v - mean[c]) / std[c]; CHW.
export function preprocess(px, w, h, ch, mean, std) {
  const f = Math.fround, out = new Float32Array(ch * w * h);
  for (let c = 0; c < ch; c++) {
    const m = f(mean[c]), s = f(std[c]);
    for (let i = 0; i < w * h; i++) out[c * w * h + i] = f(f(f(px[i * ch + c] / 255) - m) / s);
  }
  return out;
}
export function meanStd(dir, channels) {
  const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  let mean, std;
  if (cfg.pretrained_cfg || cfg.model_args || cfg.architecture) {
    mean = cfg.pretrained_cfg?.mean ?? [0.485, 0.456, 0.406];
    std = cfg.pretrained_cfg?.std ?? [0.229, 0.224, 0.225];
  } else {
    const pre = path.join(dir, 'preprocessor_config.json');
    const p = existsSync(pre) ? JSON.parse(readFileSync(pre, 'utf8')) : {};
    mean = p.image_mean ?? [0.5, 0.5, 0.5];
    std = p.image_std ?? [0.5, 0.5, 0.5];
  }
  const fit = (v) => (v.length >= channels ? v.slice(0, channels) : Array(channels).fill(v[0]));
  return { mean: fit(mean), std: fit(std) };
}
// `count` images for a model taking C×H×W: Fashion-MNIST test images for 1×28×28, else syntheticImages. HWC bytes.
export function benchImages(count, W, H, C) {
  if (!(C === 1 && H === 28 && W === 28)) return { pixels: syntheticImages(count, W, H, C, 1234), labels: null };
  const imgs = readIdx(readFileSync(path.join(ROOT, 'models/data/fmnist-test-1k-images-idx3-ubyte.gz')));
  const labs = readIdx(readFileSync(path.join(ROOT, 'models/data/fmnist-test-1k-labels-idx1-ubyte.gz')));
  const [n, h, w] = imgs.dims;
  const k = Math.min(n, count);
  return { pixels: Array.from({ length: k }, (_, i) => imgs.data.subarray(i * h * w, (i + 1) * h * w)), labels: Array.from(labs.data.subarray(0, k)) };
}

// ------------------------------------------------------------------------------------------------
// Cached models (tests/bench/make_models.py, run with Debian's python3-torch and python3-onnx on one thread)

export const SYNTHETIC = ['deit-tiny', 'deit-small'];
export const SHIPPED_DIRS = ['models/vit-fmnist-hf', 'models/deit-fmnist-timm'];
const MODELS_FORMAT = 2;  // tests/bench/make_models.py's FORMAT: cached exports of another format are redone
const PY_PACKAGES = { torch: 'python3-torch', onnx: 'python3-onnx' };

const pyHas = new Map();
export function hasPython(module) {
  if (!pyHas.has(module)) pyHas.set(module, spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0);
  return pyHas.get(module);
}
export const hasPyOnnx = () => hasPython('onnx');
export const hasTorch = () => hasPython('torch');

// make_models.py needs torch (all parts) and onnx (the exports). As root (a fresh machine, CI) the missing Debian packages
// are installed, as src/tools/setup.sh does for the build; otherwise they are named. True when both import.
export function ensurePythonPackages(log = console.error) {
  const missing = Object.entries(PY_PACKAGES).filter(([m]) => !hasPython(m)).map(([, p]) => p);
  if (!missing.length) return true;
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    log(`installing ${missing.join(' ')} (Debian) for tests/bench/make_models.py …`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
    pyHas.clear();
  }
  const still = Object.entries(PY_PACKAGES).filter(([m]) => !hasPython(m)).map(([, p]) => p);
  if (still.length) log(`missing ${still.join(' ')}: run as root \`apt-get install ${still.join(' ')}\`; the ONNX exports (and ORT's rows) are skipped`);
  return !still.length;
}

/**
 * Runs tests/bench/make_models.py for `parts` (synthetic, fmnist, gemm) into `out`; shippedDirs: the shipped model folders
 * (relative to the repository) it exports.
 */
export function runMakeModels(parts, { out, shippedDirs = SHIPPED_DIRS, log = console.error }) {
  ensurePythonPackages(log);
  log(`exporting models (${parts.join(',')}) with tests/bench/make_models.py …`);
  const r = spawnSync('/usr/bin/python3', [path.join(HERE, 'make_models.py'), '--out', out, '--only', parts.join(','),
    '--shipped', shippedDirs.join(',')],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONWARNINGS: 'ignore' } });
  if (r.status !== 0) log(`make_models.py failed (exit ${r.status}${r.error ? ', ' + r.error.message : ''}); continuing with what exists`);
}

/**
 * Makes the cached models that `want(key)` asks for and that are missing or stale (a shipped model changed, an export of
 * another format, no int8 export), and the one-op GEMM models when `gemm`. Installs or names the Python packages first.
 */
export function ensureModels({ out, want = () => true, shippedDirs = SHIPPED_DIRS, gemm = false, log = console.error }) {
  const manifestPath = path.join(out, 'models.json');
  const man = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, 'utf8')) : {};
  const has = (k, f) => existsSync(path.join(out, k, f));
  const noInt8 = (k) => !man[k]?.int8conv || man[k].format !== MODELS_FORMAT || !has(k, 'model.int8.onnx');
  const needs = (onnxCounts) => {
    const parts = [];
    if (SYNTHETIC.some((k) => want(k) && (!has(k, 'model.onnx') || !has(k, 'model.safetensors') || (onnxCounts && noInt8(k))))) parts.push('synthetic');
    for (const d of shippedDirs) {
      const k = path.basename(d), src = path.join(ROOT, d, 'model.safetensors');
      if (!want(k) || !existsSync(src)) continue;
      const st = statSync(src), m = man[k];
      if (!m || !has(k, 'model.onnx') || m.source_size !== st.size || Math.abs(m.source_mtime - st.mtimeMs / 1000) > 1e-3 ||
        (onnxCounts && noInt8(k))) { parts.push('fmnist'); break; }
    }
    if (gemm && onnxCounts && !existsSync(path.join(out, 'gemm', 'int8_197x768x192.onnx'))) parts.push('gemm');  // one-op ONNX: needs onnx
    return parts;
  };
  if (!needs(true).length) return;
  ensurePythonPackages(log);
  // Without python3-onnx a missing int8 export is not a reason to run make_models.py again every time.
  const parts = needs(hasPyOnnx());
  if (parts.length) runMakeModels(parts, { out, shippedDirs, log });
}
