// `npm run bench -- --browser` (issue 16): the Node bench's comparison, inside headless Chromium. BitLens with relaxed
// SIMD and forced SIMD128 (FP32; the integer path at W4A4 and W8A8) against onnxruntime-web's wasm backend (one thread
// on both sides; fp32 and ORT's dynamic int8) on DeiT-tiny, DeiT-small (random weights, 224²) and the shipped models,
// interleaved round by round (models-page.mjs), then the integer GEMM rates (gemm-browser.mjs). A benchmark, not a
// test: it prints a table and PASS/MISS against issue 16's targets, and writes build/bench/results.json's `browser`
// (the rest of the file is kept).
//
//   node tests/bench/models-browser.mjs [--runs 20] [--warmup 3] [--only deit-tiny,vit-fmnist-hf] [--no-deit-small]
//                                       [--no-gemm] [--seconds 0.5] [--out build/bench]
//
// The models are make_models.py's (common.mjs's ensureModels: python3-torch and python3-onnx, installed when root).
// Everything is served from 127.0.0.1 by a static server here: the page makes no off-origin request.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS } from '../e2e/helpers.mjs';
import { encodePng } from '../node/helpers.mjs';
import { ROOT, SHIPPED_DIRS, SYNTHETIC, benchImages, ensureModels, meanStd, preprocess, stats } from './common.mjs';
import { gemmRates, printGemmRates } from './gemm-browser.mjs';

const TARGETS = { int: 2.5, fp32: 1.8, gemm_int8_gops: 150 };  // issue 16, in Chromium
const CONFIGS = [{ wbits: 4, abits: 4 }, { wbits: 8, abits: 8 }];

function parseArgs(argv) {
  const o = { runs: 20, warmup: 3, only: null, small: true, gemm: true, seconds: 0.5, softmax: null, out: path.join(ROOT, 'build/bench') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--runs') o.runs = Math.max(1, parseInt(val(), 10));
    else if (a === '--warmup') o.warmup = Math.max(0, parseInt(val(), 10));
    else if (a === '--only') o.only = new Set(val().split(','));
    else if (a === '--no-deit-small') o.small = false;
    else if (a === '--no-gemm') o.gemm = false;
    else if (a === '--seconds') o.seconds = Number(val()) || 0.5;
    else if (a === '--softmax') {
      o.softmax = val();
      if (!['uniform', 'log2', 'sulq'].includes(o.softmax)) throw new Error(`--softmax must be uniform, log2 or sulq, not '${o.softmax}'`);
    }
    else if (a === '--out') o.out = path.resolve(val());
    else if (a === '--help' || a === '-h') {
      console.log('usage: npm run bench -- --browser [--runs N] [--warmup N] [--only deit-tiny,deit-small,vit-fmnist-hf,deit-fmnist-timm]\n' +
        '                                 [--no-deit-small] [--no-gemm] [--seconds S] [--softmax Q] [--out DIR]\n' +
        '  --runs/--warmup  interleaved rounds per model (DeiT-small: 4× DeiT-tiny\'s time a round)\n' +
        '  --no-deit-small  skip DeiT-small (the slowest model; about half of the run)\n' +
        '  --no-gemm        skip the integer GEMM rates (gemm-browser.mjs)\n' +
        '  --seconds S      length of each timed GEMM batch\n' +
        '  --softmax Q      post-softmax quantizer of the integer configurations (default: the library\'s, sulq; uniform:\n' +
        '                   probs·v on integer codes too)');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

// ------------------------------------------------------------------------------------------------
// A static server: /web/, /models/ (the repository's), /ort/ (onnxruntime-web's dist), /bench/ (the cached exports),
// /tests/bench/models-page.mjs, /mem/ (bytes made here); / is an empty page.

const MIME = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };

async function serve(out, mem) {
  const dirs = [['/web/', path.join(ROOT, 'web')], ['/models/', path.join(ROOT, 'models')], ['/ort/', path.join(ROOT, 'node_modules/onnxruntime-web/dist')],
    ['/bench/', out]];
  const server = createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    // Cross-origin isolated (everything is same-origin), so the page's clock has 5 µs steps rather than 100 µs.
    const iso = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    const send = (status, type, body) => { res.writeHead(status, { ...iso, 'Content-Type': type }); res.end(body); };
    if (p === '/favicon.ico') return send(204, 'image/x-icon', '');
    if (p === '/') return send(200, 'text/html', '<!doctype html><meta charset="utf-8"><title>BitLens bench</title>');
    if (mem.has(p)) return send(200, 'application/octet-stream', mem.get(p));
    let file = p === '/tests/bench/models-page.mjs' ? path.join(ROOT, p) : null;
    for (const [prefix, dir] of dirs) {
      if (file || !p.startsWith(prefix)) continue;
      const f = path.normalize(path.join(dir, p.slice(prefix.length)));
      if (f.startsWith(dir + path.sep)) file = f;
    }
    let st = null;
    try { if (file && !p.includes('\0')) st = statSync(file); } catch { /* not found */ }
    if (!st?.isFile()) return send(404, 'text/plain', `not found: ${p}\n`);
    res.writeHead(200, { ...iso, 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': st.size });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

// ------------------------------------------------------------------------------------------------
// One model: its image and calibration PNGs into `mem`, the page's benchModel, the summary.

async function benchModel(page, key, dir, onnxDir, opt, mem) {
  const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const C = cfg.num_channels ?? cfg.in_chans ?? cfg.model_args?.in_chans ?? 3;
  const size = cfg.image_size ?? cfg.img_size ?? cfg.model_args?.img_size ?? cfg.pretrained_cfg?.input_size?.[1] ?? 224;
  const [H, W] = Array.isArray(size) ? size : [size, size];
  const { mean, std } = meanStd(dir, C);
  const big = H * W >= 100 * 100;
  const ncal = big ? 8 : 32;  // as bench.mjs
  const { pixels, labels } = benchImages(ncal, W, H, C);
  const input = preprocess(pixels[0], W, H, C, mean, std);
  mem.set(`/mem/${key}/input.f32`, Buffer.from(input.buffer));
  pixels.forEach((p, i) => mem.set(`/mem/${key}/calib${i}.png`, encodePng(p, W, H, C)));
  const url = (d) => `/${path.relative(ROOT, d).startsWith('models') ? path.relative(ROOT, d) : 'bench/' + path.relative(opt.out, d)}`;
  const runs = big ? opt.runs : Math.max(opt.runs, 40);  // small models: each sample is already ≥ 20 ms of calls
  const r = await page.evaluate(async (args) => (await import('/tests/bench/models-page.mjs')).benchModel(args),
    { key, model: url(dir), preprocessor: existsSync(path.join(dir, 'preprocessor_config.json')), onnx: url(onnxDir), shape: [C, H, W], calib: ncal, labels, runs, warmup: opt.warmup,
      configs: opt.softmax ? CONFIGS.map((c) => ({ ...c, softmax: opt.softmax })) : CONFIGS });
  r.timing = Object.fromEntries(Object.entries(r.raw).map(([k, s]) => [k, stats(s)]));
  delete r.raw;
  r.shape = [C, H, W];
  r.runs = runs;
  r.softmax = opt.softmax ?? 'sulq';
  const ratio = (a, b) => (r.timing[a] && r.timing[b] ? +(r.timing[a].median_ms / r.timing[b].median_ms).toFixed(3) : null);
  // speed-up = ORT median / BitLens median (> 1: BitLens faster); BitLens on relaxed SIMD, the backend browsers get.
  r.fp32_speedup = ratio('ort_fp32', 'bitlens_relaxed_fp32');
  r.int_speedup = ratio('ort_int8', 'bitlens_relaxed_w4a4');
  r.w8a8_speedup = ratio('ort_int8', 'bitlens_relaxed_w8a8');
  r.fp32_speedup_simd128 = ratio('ort_fp32', 'bitlens_simd128_fp32');
  r.int_speedup_simd128 = ratio('ort_int8', 'bitlens_simd128_w4a4');
  r.relaxed_over_simd128_w4a4 = ratio('bitlens_simd128_w4a4', 'bitlens_relaxed_w4a4');
  for (const k of [...mem.keys()]) if (k.startsWith(`/mem/${key}/`)) mem.delete(k);
  return r;
}

// ------------------------------------------------------------------------------------------------

const lpad = (s, n) => String(s).padStart(n);
const ms = (t) => (t ? t.median_ms.toFixed(t.median_ms < 10 ? 2 : 1) : '—');
const x = (v) => (v ? `${v.toFixed(2)}×` : '—');

function printModels(rows) {
  console.log('\nModels in Chromium, one thread, median ms per image (forwardRaw / session.run), variants interleaved round by round');
  console.log(`${'model'.padEnd(17)}${lpad('ORT fp32', 9)}${lpad('BL fp32', 9)}${lpad('speed-up', 9)}${lpad('ORT int8', 10)}${lpad('W4A4 rlx', 10)}` +
    `${lpad('W4A4 128', 10)}${lpad('speed-up', 9)}${lpad('(128)', 7)}${lpad('W8A8', 8)}${lpad('vs int8', 8)}`);
  for (const r of rows) {
    if (r.error) { console.log(`${r.model.padEnd(17)}error: ${r.error}`); continue; }
    const t = r.timing;
    console.log(`${r.model.padEnd(17)}${lpad(ms(t.ort_fp32), 9)}${lpad(ms(t.bitlens_relaxed_fp32), 9)}${lpad(x(r.fp32_speedup), 9)}${lpad(ms(t.ort_int8), 10)}` +
      `${lpad(ms(t.bitlens_relaxed_w4a4), 10)}${lpad(ms(t.bitlens_simd128_w4a4), 10)}${lpad(x(r.int_speedup), 9)}${lpad(x(r.int_speedup_simd128), 7)}` +
      `${lpad(ms(t.bitlens_relaxed_w8a8), 8)}${lpad(x(r.w8a8_speedup), 8)}`);
  }
  console.log('  speed-up = ORT median / BitLens median; BL = BitLens on relaxed SIMD (FP32 is the same code on both backends:' +
    ' SIMD128 FP32 in results.json); W4A4 integer against ORT dynamic int8; (128) = BitLens forced to SIMD128');
  for (const r of rows) {
    if (r.error) continue;
    const c = r.checks;
    const eq = CONFIGS.map(({ wbits, abits }) => `W${wbits}A${abits} ${c[`w${wbits}a${abits}_relaxed_equals_simd128`] ? 'bit-equal' : 'DIFFER'}`).join(', ');
    console.log(`  ${r.model}: FP32 vs ORT fp32 max|Δlogit| ${c.fp32_vs_ort_max_abs_diff ?? '—'}${c.fp32_vs_ort_ok === false ? ' NOT OK' : ''}; relaxed vs SIMD128: ${eq}; ` +
      `${r.w4a4_integer_layers} Linears and ${r.w4a4_integer_attention} attention matmuls integer (${r.softmax} probs), GELU on thresholds in ${r.w4a4_integer_gelu ?? '—'} blocks; ${r.runs} rounds of ${r.reps} call${r.reps > 1 ? 's' : ''}${r.notes.length ? '; ' + r.notes.join('; ') : ''}`);
  }
}

export async function browserBench(argv = []) {
  const opt = parseArgs(argv);
  const log = (...a) => console.error('[bench --browser]', ...a);
  mkdirSync(opt.out, { recursive: true });
  const keys = [...SYNTHETIC, ...SHIPPED_DIRS.map((d) => path.basename(d))]
    .filter((k) => (!opt.only || opt.only.has(k)) && (k !== 'deit-small' || opt.small));
  ensureModels({ out: opt.out, want: (k) => keys.includes(k), log });
  if (!existsSync(CHROMIUM)) throw new Error(`no ${CHROMIUM}: apt-get install chromium (src/tools/setup.sh)`);
  if (!existsSync(path.join(ROOT, 'web/lib/bitlens-relaxed.wasm'))) log('web/lib/bitlens-relaxed.wasm is missing (npm run build:wasm with clang-19): the page will fail');

  const R = { date: new Date().toISOString(), loadavg_before: os.loadavg().map((v) => +v.toFixed(2)), models: {} };
  const mem = new Map();
  const { server, origin } = await serve(opt.out, mem);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const problems = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    page.on('request', (q) => { if (!q.url().startsWith(origin)) problems.push(`off-origin request: ${q.url()}`); });
    await page.goto(`${origin}/`);
    R.chromium = browser.version();
    R.user_agent = await page.evaluate(() => navigator.userAgent);
    const rows = [];
    for (const key of keys) {
      const synthetic = SYNTHETIC.includes(key);
      const dir = synthetic ? path.join(opt.out, key) : path.join(ROOT, SHIPPED_DIRS.find((d) => path.basename(d) === key));
      const onnxDir = path.join(opt.out, key);
      if (!existsSync(path.join(dir, 'model.safetensors')) || !existsSync(path.join(onnxDir, 'model.onnx'))) {
        rows.push({ model: key, error: `no model or ONNX export in ${path.relative(ROOT, onnxDir)} (make_models.py failed?)` });
        continue;
      }
      log(`${key} …`);
      const t0 = performance.now();
      try {
        rows.push(await benchModel(page, key, dir, onnxDir, opt, mem));
      } catch (e) {
        log(`${key}: ${e.message}`);
        rows.push({ model: key, error: e.message.split('\n')[0] });
      }
      log(`${key}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    for (const r of rows) R.models[r.model] = r;
    R.ort_web = await page.evaluate(async () => (await import('/tests/bench/models-page.mjs')).ortVersion()).catch(() => null);
    printModels(rows);
    if (opt.gemm) {
      log('integer GEMMs …');
      R.gemm = await gemmRates(page, { seconds: opt.seconds });
      console.log('');
      printGemmRates(R.gemm);
    }
  } finally {
    await browser.close();
    await new Promise((r) => server.close(r));
  }
  R.loadavg_after = os.loadavg().map((v) => +v.toFixed(2));
  R.problems = problems;
  for (const [k, r] of Object.entries(R.models)) {  // the flat keys issue 16 names: `deit-tiny.fp32_speedup`, …
    if (r.error) continue;
    R[`${k}.fp32_speedup`] = r.fp32_speedup;
    R[`${k}.int_speedup`] = r.int_speedup;
  }
  if (R.gemm) R.gemm_int8_gops = +R.gemm.int8_mean.toFixed(1);
  const tiny = R.models['deit-tiny'];
  R.targets = [
    { name: 'DeiT-tiny W4A4 integer vs ORT-web dynamic int8', value: tiny?.int_speedup ?? null, target: TARGETS.int, unit: '×' },
    { name: 'DeiT-tiny FP32 vs ORT-web fp32', value: tiny?.fp32_speedup ?? null, target: TARGETS.fp32, unit: '×' },
    { name: 'int8 GEMM, relaxed SIMD (mean over DeiT-tiny shapes)', value: R.gemm_int8_gops ?? null, target: TARGETS.gemm_int8_gops, unit: ' GOP/s' },
  ].map((t) => ({ ...t, result: t.value === null ? null : t.value >= t.target }));
  console.log(`\nTargets (issue 16, Chromium ${R.chromium}, load ${R.loadavg_before.join(' ')} → ${R.loadavg_after.join(' ')})`);
  for (const t of R.targets) console.log(`  ${t.result === null ? 'n/a ' : t.result ? 'PASS' : 'MISS'}  ${t.name.padEnd(54)} ${t.value ?? '—'}${t.unit} (target ≥ ${t.target}${t.unit})`);
  if (problems.length) console.log(problems.join('\n'));
  try { R.git = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim(); } catch { /* no git */ }

  const file = path.join(opt.out, 'results.json');
  let all = {};
  try { all = JSON.parse(readFileSync(file, 'utf8')); } catch { /* none yet */ }
  all.browser = R;
  writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
  console.log(`\nresults: ${path.relative(ROOT, file)} (browser)`);
  return R;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await browserBench(process.argv.slice(2));
