// Helpers for the end-to-end tests: repo paths, the browser, and test images made from the real
// Fashion-MNIST evaluation set (PNG-encoded, zipped with fflate).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { deflateSync, gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { zipSync } from 'fflate';

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

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
/** A grayscale 8-bit PNG. */
export function encodePngGray(pixels, width, height) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) Buffer.from(pixels.subarray(y * width, (y + 1) * width)).copy(raw, y * (width + 1) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/**
 * `perClass` real images of each class from the default evaluation set, as PNG files in one folder per
 * class (named after the model's labels, "/" written as "_": "T-shirt_top"): [{ path, bytes }].
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
    out.push({ path: `${top}/${LABELS[c].replace(/\//g, '_')}/${String(i).padStart(4, '0')}.png`, bytes: png });
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
