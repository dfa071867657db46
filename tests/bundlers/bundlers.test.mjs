// The packed tarball in fresh web apps, one per bundler, each with the defaults a new project gets (Vite: none;
// webpack: none; esbuild: `--bundle`; Rollup: the node-resolve plugin every Rollup app needs for npm packages):
// production build, served by a small static server, opened in Chromium, which loads the shipped model and
// classifies one PNG — the answer must be Node's, bit for bit. Also a module worker built by Vite, and
// createBitLensWorker() (the package's own worker) built by Vite and by webpack.
// Apps and their node_modules are cached in build/bundlers/ (first run: the npm registry; then only the tarball
// is reinstalled). Run: npm run test:bundlers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { createBitLens } from '../../web/bitlens.js';
import { root, path, modelFiles, encodePngGray, defaultImage } from '../node/helpers.mjs';
import { CHROMIUM, CHROMIUM_ARGS } from '../e2e/helpers.mjs';

const work = path('build/bundlers');
const MODEL = 'models/vit-fmnist-hf';
const { pixels } = defaultImage(7);
const png = encodePngGray(pixels, 28, 28);

// What every app does: load the model and the PNG from its server, classify, write the answer (or the error).
const CLASSIFY = `
export async function classify(createBitLens, options) {
  const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
  const bl = await createBitLens(options);
  const model = bl.loadModel({ safetensors: await get('/model/model.safetensors'), config: await get('/model/config.json'),
    preprocessor: await get('/model/preprocessor_config.json') });
  return model.classify(await get('/img.png'), { topK: 1 })[0];
}
export function show(p) {
  p.then((r) => { document.body.dataset.result = JSON.stringify(r); }, (e) => { document.body.dataset.error = String(e && e.message || e); });
}
`;
const MAIN = (options = '') => `import { createBitLens } from 'bitlens';
import { classify, show } from './classify.js';
show(classify(createBitLens${options ? `, ${options}` : ''}));
`;
const HTML = (script, type = 'module') => `<!doctype html><html><head><meta charset="utf-8"><title>app</title></head>
<body><script ${type ? `type="${type}" ` : ''}src="${script}"></script></body></html>
`;

// The same with createBitLensWorker (bitlens/worker): the bundler must also bundle the package's worker and its .wasm.
const MAIN_REMOTE = `import { createBitLensWorker } from 'bitlens/worker';
import { show } from './classify.js';
show((async () => {
  const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
  const bl = await createBitLensWorker();
  const model = await bl.loadModel({ safetensors: await get('/model/model.safetensors'), config: await get('/model/config.json'),
    preprocessor: await get('/model/preprocessor_config.json') });
  const [top] = await model.classify(await get('/img.png'), { topK: 1 });
  bl.terminate();
  return top;
})());
`;

// name → { deps, files, build, dist }
const APPS = {
  vite: {
    deps: ['vite'],
    files: { 'index.html': HTML('/src/main.js'), 'src/main.js': MAIN() },
    build: [['npx', 'vite', 'build']],
  },
  'vite-worker': {
    deps: ['vite'],
    files: {
      'index.html': HTML('/src/main.js'),
      'src/main.js': `const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
w.onmessage = (e) => { document.body.dataset[e.data.ok ? 'result' : 'error'] = e.data.ok ? JSON.stringify(e.data.value) : e.data.error; };
`,
      'src/worker.js': `import { createBitLens } from 'bitlens';
import { classify } from './classify.js';
classify(createBitLens).then((value) => postMessage({ ok: true, value }), (e) => postMessage({ ok: false, error: String(e.message) }));
`,
    },
    build: [['npx', 'vite', 'build']],
  },
  'vite-createBitLensWorker': {
    deps: ['vite'],
    files: { 'index.html': HTML('/src/main.js'), 'src/main.js': MAIN_REMOTE },
    build: [['npx', 'vite', 'build']],
  },
  'webpack-createBitLensWorker': {
    deps: ['webpack', 'webpack-cli'],
    files: { 'src/index.js': MAIN_REMOTE, 'dist/index.html': HTML('main.js', '') },
    build: [['npx', 'webpack', '--mode', 'production']],
  },
  webpack: {
    deps: ['webpack', 'webpack-cli'],
    files: { 'src/index.js': MAIN(), 'dist/index.html': HTML('main.js', '') },
    build: [['npx', 'webpack', '--mode', 'production']],
  },
  esbuild: {
    // esbuild emits no asset for new URL(…, import.meta.url): the app serves the .wasm files itself (next to the page).
    deps: ['esbuild'],
    files: { 'src/main.js': MAIN(), 'dist/index.html': HTML('main.js', '') },
    build: [['npx', 'esbuild', 'src/main.js', '--bundle', '--outfile=dist/main.js']],
    copyWasm: 'dist/bitlens-core.wasm',
  },
  rollup: {
    // Rollup emits no asset for new URL(…, import.meta.url) either: the app serves it and says where (wasmPaths).
    deps: ['rollup', '@rollup/plugin-node-resolve'],
    files: {
      'rollup.config.mjs': `import { nodeResolve } from '@rollup/plugin-node-resolve';
export default { input: 'src/main.js', output: { dir: 'dist', format: 'es' }, plugins: [nodeResolve()] };
`,
      'src/main.js': MAIN("{ wasmPaths: '/assets/' }"),
      'dist/index.html': HTML('main.js'),
    },
    build: [['npx', 'rollup', '-c']],
    copyWasm: 'dist/assets/bitlens-core.wasm',
  },
};

function serve(dir) {
  const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png' };
  const server = createServer((req, res) => {
    const u = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file;
    if (u === '/img.png') { res.writeHead(200, { 'content-type': 'image/png' }); res.end(png); return; }
    if (u.startsWith('/model/')) file = path(`${MODEL}/${u.slice(7)}`);
    else file = join(dir, normalize(u === '/' ? '/index.html' : u));
    if (!file.startsWith(dir) && !file.startsWith(path(MODEL)) || !existsSync(file)) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'content-type': MIME[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

let browser, tarball, want;
before(async () => {
  mkdirSync(work, { recursive: true });
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: root }).toString().trim().split('\n').pop();
  tarball = join(work, out);
  const bl = await createBitLens();
  const m = bl.loadModel(modelFiles(MODEL));
  want = m.classify(png, { topK: 1 })[0];
  m.delete();
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
after(async () => { await browser?.close(); });

async function open(dir) {
  const server = await serve(dir);
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => document.body && (document.body.dataset.result || document.body.dataset.error), null, { timeout: 60_000 });
  const { result, error } = await page.evaluate(() => ({ ...document.body.dataset }));
  await page.close();
  await new Promise((r) => server.close(r));
  return { result: result && JSON.parse(result), error, problems };
}

for (const [name, app] of Object.entries(APPS)) {
  test(`${name}: a fresh app with the default config classifies the PNG in Chromium as Node does`, async () => {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(join(dir, 'package.json'))) {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `app-${name}`, private: true, type: 'module' }, null, 2));
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--save-dev', ...app.deps], { cwd: dir, stdio: 'ignore' });
    }
    execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: dir, stdio: 'ignore' });
    rmSync(join(dir, 'dist'), { recursive: true, force: true });
    for (const [f, text] of Object.entries({ ...app.files, 'src/classify.js': CLASSIFY })) {
      mkdirSync(join(dir, f, '..'), { recursive: true });
      writeFileSync(join(dir, f), text);
    }
    for (const cmd of app.build) execFileSync(cmd[0], cmd.slice(1), { cwd: dir, stdio: 'pipe' });
    const dist = join(dir, 'dist');
    if (app.copyWasm) {
      // Before the .wasm is served: an Error that names the URL and the option to set.
      const missing = await open(dist);
      assert.equal(missing.result, undefined);
      assert.match(missing.error, /bitlens-core\.wasm failed with HTTP 404.*wasmPaths/);
      mkdirSync(join(dir, app.copyWasm, '..'), { recursive: true });
      cpSync(join(dir, 'node_modules/bitlens/web/lib/bitlens-core.wasm'), join(dir, app.copyWasm));
      // and the relaxed-SIMD kernels beside it (Chromium validates relaxed SIMD, so the package fetches them).
      cpSync(join(dir, 'node_modules/bitlens/web/lib/bitlens-relaxed.wasm'), join(dir, app.copyWasm, '../bitlens-relaxed.wasm'));
    }
    const { result, error, problems } = await open(dist);
    assert.equal(error, undefined);
    assert.deepEqual(problems, []);
    assert.deepEqual(result, want);
  });
}
