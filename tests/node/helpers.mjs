// Shared helpers for the Node tests: repo paths, the shipped model's files, the native CLI.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const path = (rel) => root + rel;
export const cli = process.env.BITLENS_CLI || path('build/native/bitlens');  // BITLENS_CLI: test another build of the CLI

export function modelFiles(dir) {
  const read = (f) => { try { return readFileSync(path(`${dir}/${f}`)); } catch { return undefined; } };
  return { safetensors: read('model.safetensors'), config: read('config.json'), preprocessor: read('preprocessor_config.json') };
}
export const defaultData = () => ({
  idxImages: readFileSync(path('models/data/fmnist-test-1k-images-idx3-ubyte.gz')),
  idxLabels: readFileSync(path('models/data/fmnist-test-1k-labels-idx1-ubyte.gz')),
});
export function nativeEval(modelDir, dataPath) {
  return JSON.parse(execFileSync(cli, ['eval', '--model', path(modelDir), '--data', path(dataPath), '--json']).toString());
}

// A minimal PNG encoder (8-bit grey or RGB), for tests and benchmarks that need real encoded files.
import { deflateSync, gunzipSync } from 'node:zlib';
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
export function encodePng(pixels, width, height, channels = 1) {
  if (channels !== 1 && channels !== 3) throw new Error(`encodePng: ${channels} channels (1 or 3)`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = channels === 1 ? 0 : 2; // 8-bit grey or RGB
  const row = width * channels;
  const raw = Buffer.alloc((row + 1) * height);
  for (let y = 0; y < height; y++) Buffer.from(pixels.subarray(y * row, (y + 1) * row)).copy(raw, y * (row + 1) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}
export const encodePngGray = (pixels, width, height) => encodePng(pixels, width, height, 1);

// Image i (28×28 pixels) and label i of the default IDX set.
export function defaultImage(i) {
  const { idxImages, idxLabels } = defaultData();
  const img = gunzipSync(idxImages), lab = gunzipSync(idxLabels);
  return { pixels: img.subarray(16 + i * 784, 16 + (i + 1) * 784), label: lab[8 + i] };
}

export function nativeQuantize(modelDir, dataPath, args) {
  return JSON.parse(execFileSync(cli, ['quantize', '--model', path(modelDir), '--calib', path(dataPath), '--eval', path(dataPath), ...args, '--json']).toString());
}

export function nativeSweep(modelDir, dataPath, args) {
  return JSON.parse(execFileSync(cli, ['sweep', '--model', path(modelDir), '--data', path(dataPath), '--calib', path(dataPath), ...args, '--jobs', '2', '--json', '-']).toString());
}

export function nativeMixed(modelDir, dataPath, args) {
  return JSON.parse(execFileSync(cli, ['mixed', '--model', path(modelDir), '--calib', path(dataPath), '--eval', path(dataPath), ...args, '--jobs', '2', '--json']).toString());
}

// The shipped 5,000 training images (models/data/fmnist-train-5k-*) as a Dataset of `bl`.
export const TRAIN_5K = 'models/data/fmnist-train-5k-images-idx3-ubyte.gz';
export const trainSubset = (bl) => bl.loadDataset({
  idxImages: readFileSync(path(TRAIN_5K)),
  idxLabels: readFileSync(path('models/data/fmnist-train-5k-labels-idx1-ubyte.gz')),
});
// A model of `bl` as the CLI loads it from its directory: the same name in an export's metadata.
export const loadAsCli = (bl, dir) => bl.loadModel({ ...modelFiles(dir), name: `${path(dir)}/model.safetensors` });

// Start-and-abort cycles of a stepped training run (`run(signal, onProgress)`; `counter(p)`: the step a progress
// report is at): a warm-up aborted at step 2 (the heap grows to its working size), then `cycles` runs aborted at
// step 3 — no step reported after the abort, the heap as it was — and an already-aborted signal starts nothing.
export async function assertAbortCycles(bl, run, { cycles = 2, counter = (p) => p.step } = {}) {
  const ac0 = new AbortController();
  await assert.rejects(run(ac0.signal, (p) => { if (counter(p) === 2) ac0.abort(); }), { name: 'AbortError' });
  const before = bl.module.HEAPU8.length;
  for (let i = 0; i < cycles; i++) {
    const ac = new AbortController();
    let last = -1;
    await assert.rejects(run(ac.signal, (p) => { last = counter(p); if (last === 3) ac.abort(); }), { name: 'AbortError' });
    assert.equal(last, 3, 'no step after the abort');
  }
  assert.equal(bl.module.HEAPU8.length, before, 'the heap did not grow');
  const done = new AbortController();
  done.abort();
  await assert.rejects(run(done.signal), { name: 'AbortError' });
}

// The package's entry (web/bitlens.js), or another build's copy of it: BITLENS_JS names one (asan.test.mjs runs the
// lifetime and abuse tests again on the AddressSanitizer build that way).
import { pathToFileURL } from 'node:url';
export const loadBitLens = async () => (await import(process.env.BITLENS_JS ? pathToFileURL(process.env.BITLENS_JS).href
  : new URL('../../web/bitlens.js', import.meta.url).href)).createBitLens();
