// Helpers for the end-to-end tests: repo paths, the browser, and test images made from the real
// Fashion-MNIST evaluation set (PNG-encoded, zipped with fflate).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { encodePngGray } from '../node/helpers.mjs';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const artifacts = join(root, 'tests/artifacts');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];
// The shipped model the tests upload (BITLENS_E2E_MODEL overrides, e.g. to try another model folder).
export const MODEL_DIR = join(root, process.env.BITLENS_E2E_MODEL || 'models/vit-fmnist-hf');
export const LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export function missingPrerequisites() {
  const need = [
    [CHROMIUM, 'Debian chromium (apt-get install chromium)'],
    [join(root, 'web/lib/bitlens-core.wasm'), 'the WASM build (npm run build:wasm)'],
    [join(MODEL_DIR, 'model.safetensors'), `the shipped model (${MODEL_DIR})`],
    [join(root, 'node_modules/@observablehq/plot'), 'the npm devDependencies (npm ci)'],
  ];
  return need.filter(([p]) => !existsSync(p)).map(([, what]) => what);
}

export function saveArtifact(name, bytes) {
  mkdirSync(artifacts, { recursive: true });
  const p = join(artifacts, name);
  writeFileSync(p, bytes);
  return p;
}

/** A grayscale 8-bit PNG (the Node tests' encoder). */
export { encodePngGray };

/**
 * A class's folder name: the model's label, or its class number where the label cannot be a folder's name ("T-shirt/top"
 * → "0"; the library would also take "T-shirt_top", matched by letters and digits).
 */
export const classFolderName = (c) => (LABELS[c].includes('/') ? String(c) : LABELS[c]);

/**
 * `perClass` real images of each class from the default evaluation set, as PNG files in one folder per
 * class (classFolderName): [{ path, bytes }].
 */
export function classFolderImages(perClass = 5, top = 'fmnist-sample') {
  const img = gunzipSync(readFileSync(join(root, 'models/data/fmnist-test-1k-images-idx3-ubyte.gz')));
  const lab = gunzipSync(readFileSync(join(root, 'models/data/fmnist-test-1k-labels-idx1-ubyte.gz')));
  const n = lab.readUInt32BE(4);
  const count = new Array(10).fill(0);
  const out = [];
  for (let i = 0; i < n && out.length < perClass * 10; i++) {
    const c = lab[8 + i];
    if (count[c] >= perClass) continue;
    count[c]++;
    const png = encodePngGray(img.subarray(16 + i * 784, 16 + (i + 1) * 784), 28, 28);
    out.push({ path: `${top}/${classFolderName(c)}/${String(i).padStart(4, '0')}.png`, bytes: png });
  }
  return out;
}

/** A .zip (fflate) of classFolderImages(). */
export function classFolderZip(perClass = 5) {
  const tree = {};
  for (const f of classFolderImages(perClass)) tree[f.path] = new Uint8Array(f.bytes);
  return Buffer.from(zipSync(tree, { level: 6 }));
}

/** classFolderImages() written to disk under dir; returns the top folder. */
export function writeClassFolder(dir, perClass = 3) {
  const top = join(dir, 'fmnist-folder');
  for (const f of classFolderImages(perClass, 'fmnist-folder')) {
    const p = join(dir, f.path);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, f.bytes);
  }
  return top;
}

// A test server on a free port and a Chromium page on it (1366×900, downloads on) whose page errors and console
// errors go into `problems`; close() stops both.
export async function openPage(problems, { args = [] } = {}) {  // args: Chromium switches added to CHROMIUM_ARGS
  const { chromium } = await import('playwright-core');
  const { start } = await import('../../web/serve.mjs');
  const { server, url } = await start({ port: 0, quiet: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, ...args] });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  const close = async () => {
    await browser.close();
    await new Promise((r) => server.close(r));
  };
  return { origin: url.replace(/\/$/, ''), page, close };
}

/** A safetensors file from { name: { shape, data: Float32Array } } (F32, 8-byte aligned header). */
export function safetensorsBytes(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'latin1');
  let o = 8 + json.length;
  for (const t of Object.values(tensors)) {
    Buffer.from(t.data.buffer, t.data.byteOffset, 4 * t.data.length).copy(out, o);
    o += 4 * t.data.length;
  }
  return out;
}

/** The tensors of a safetensors file (F32 only): { name: { shape, data: Float32Array } }. */
export function readSafetensors(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    const raw = bytes.subarray(8 + n + a, 8 + n + b);
    out[name] = { shape: t.shape, data: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)) };
  }
  return out;
}

/**
 * The shipped Hugging Face ViT (models/vit-fmnist-hf) made into a model for 32×32 RGB images: the patch embedding takes
 * three channels (each a third of the grey one's weights) and the position embeddings cover 8×8 patches (the 7×7 ones
 * repeated). Written as a model folder `dir/name/` (model.safetensors, config.json, preprocessor_config.json); returns it.
 */
export function writeRgb32Model(dir, name = 'rgb32-vit', configExtra = {}) {
  const src = join(root, 'models/vit-fmnist-hf');
  const t = readSafetensors(readFileSync(join(src, 'model.safetensors')));
  const proj = t['vit.embeddings.patch_embeddings.projection.weight'];
  const [hidden, , p] = proj.shape;
  const rgb = new Float32Array(hidden * 3 * p * p);
  for (let o = 0; o < hidden; o++) for (let c = 0; c < 3; c++) for (let k = 0; k < p * p; k++) rgb[(o * 3 + c) * p * p + k] = proj.data[o * p * p + k] / 3;
  t['vit.embeddings.patch_embeddings.projection.weight'] = { shape: [hidden, 3, p, p], data: rgb };
  const pos = t['vit.embeddings.position_embeddings'];
  const n = 1 + (32 / p) ** 2;
  const wide = new Float32Array(n * hidden);
  for (let i = 0; i < n; i++) wide.set(pos.data.subarray((i % pos.shape[1]) * hidden, (i % pos.shape[1] + 1) * hidden), i * hidden);
  t['vit.embeddings.position_embeddings'] = { shape: [1, n, hidden], data: wide };
  const config = { ...JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')), image_size: 32, num_channels: 3, ...configExtra };
  const pre = { ...JSON.parse(readFileSync(join(src, 'preprocessor_config.json'), 'utf8')), size: { height: 32, width: 32 }, image_mean: [0.286, 0.286, 0.286], image_std: [0.353, 0.353, 0.353] };
  const out = join(dir, name);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'model.safetensors'), safetensorsBytes(t));
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 1));
  writeFileSync(join(out, 'preprocessor_config.json'), JSON.stringify(pre, null, 1));
  return out;
}
