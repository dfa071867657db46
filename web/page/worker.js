// BitLens demo — the page's module worker: the package's worker (web/bitlens-worker.js, what createBitLensWorker()
// runs) extended with the page's session. It holds the model, the images the user brought (evaluation images,
// calibration pool, training images) and the models runs made, so the page never blocks and never sends them twice.
// Every handler here is `bl['page:name'](payload, { onProgress })` on the page (web/page/workers.js); errors, progress and
// callbacks travel as for the API's own calls. The page cancels a run by terminating the worker (a synchronous WASM
// call cannot be interrupted) and starting a fresh one.
//
// What a rule of the library decides, the library answers: the IDX files are read by loadDataset (src/data/dataset.cpp),
// the image extensions are bl.imageExtensions, a folder's class is the model's by bl.classIndices (the evaluation's own
// rule), whether a file is an image is bl.imageInfo (the decoder's header check, whatever the file's name), a sweep's
// settings are checked by bl.checkSweep and its CSV is bl.sweepCsv (`bitlens sweep --csv`'s).
import { extendWorker } from '../bitlens-worker.js';
import { unzipSync, zipSync, zlibSync } from '../vendor/fflate.js';

let bl = null;           // the BitLens instance (set on every call: the package's worker owns it)
let model = null;        // Model
let modelName = '';
let source = null;       // the loaded images: { kind: 'idx', data: Dataset (all of them), n } | { kind: 'files', files, n, skipped }
let sourceName = '';
let evalData = null;     // Dataset: the evaluation images (the first `limit`, class-balanced for folders)
let calibData = null;    // Dataset: the calibration pool (all loaded images)
let limit = 0;
let trainSource = null;  // the training images for fine-tuning (QAT), as `source`
let trainName = '';
let trainData = null;    // Dataset: all of them
let tunedModel = null;   // QatModel or InqModel: the last fine-tuned model (for the download)
const sosModels = new Map(); // configuration name → SosModel of the last SOS run (for the downloads)
const prunedModels = new Map(); // page's id ("p1", …) → PrunedModel, every pruned model of this model and images
let latencyInputs = null; // the first LATENCY_IMAGES images as the model sees them (for timing forwards)
const quantCache = new Map(); // "config|seed" → QuantizedModel (for the sample view and the export)

// Whether a file name has one of the library's image extensions (src/data/dataset.cpp image_extensions()).
const isImageName = (name) => bl.imageExtensions.some((e) => name.toLowerCase().endsWith(e) && name.length > e.length);

// ---------- helpers ----------------------------------------------------------------------------

function bytesOf(x) { return x instanceof Uint8Array ? x : new Uint8Array(x); }
function textOf(x) { return x == null ? '' : typeof x === 'string' ? x : new TextDecoder().decode(bytesOf(x)); }
function putU32(b, o, v) { b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 255; b[o + 2] = (v >>> 8) & 255; b[o + 3] = v & 255; }

function clearQuantCache() {
  for (const q of quantCache.values()) q.delete();
  quantCache.clear();
}

// ---------- PNG (for showing and classifying IDX images) ---------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  putU32(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  putU32(out, 8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
function encodePngGray(pixels, width, height) {
  const ihdr = new Uint8Array(13);
  putU32(ihdr, 0, width); putU32(ihdr, 4, height);
  ihdr[8] = 8; ihdr[9] = 0;
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlibSync(raw)), pngChunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

// ---------- loading images ----------------------------------------------------------------------

// IDX: two files (images idx3, labels idx1; gzipped or raw), read by the library (load_idx: its checks, its errors).
// The files come in either order: when the first pair fails, the other order is tried, and the first error is said
// if that fails too.
function loadIdx(files) {
  if (files.length !== 2) {
    throw new Error(`IDX needs two files, the images (…-images-idx3-ubyte[.gz]) and the labels (…-labels-idx1-ubyte[.gz]); got ${files.length}: ${files.map((f) => f.name).join(', ')}`);
  }
  const load = (img, lab) => bl.loadDataset({ idxImages: bytesOf(img.bytes), idxLabels: bytesOf(lab.bytes), imagesName: img.name, labelsName: lab.name });
  const [a, b] = /labels|idx1/i.test(files[0].name) && !/labels|idx1/i.test(files[1].name) ? [files[1], files[0]] : files;
  let data, imagesName = a.name;
  try { data = load(a, b); } catch (e) {
    try { data = load(b, a); imagesName = b.name; } catch { throw e; }
  }
  sourceOwned.add(data);
  return { kind: 'idx', data, n: data.size, imagesName, skipped: [] };
}

// The files named (first ones) in a message, e.g. "a.png, b.png and 3 more".
function someNames(list, k = 3) {
  return list.slice(0, k).join(', ') + (list.length > k ? ` and ${(list.length - k).toLocaleString()} more` : '');
}

// Image folders: [{ path: 'root/Class/img.png', bytes }] → files labelled by their parent folder. Files that are not
// images of a format BitLens reads (whatever their name says) and images outside a class folder are skipped and
// listed in `skipped` ({ path, reason }); only a folder with no usable image at all is refused.
function folderFiles(entries, what) {
  const files = [];
  const others = [];
  const skipped = [];
  for (const e of entries) {
    const parts = e.path.split('/').filter(Boolean);
    const base = parts[parts.length - 1] || '';
    if (parts.some((p) => p.startsWith('.') || p === '__MACOSX')) continue;
    if (!isImageName(base)) { if (base) others.push(e.path); continue; }
    const bytes = bytesOf(e.bytes);
    const header = bl.imageInfo(bytes);  // the library's decoder reads the header: null when it is no image it decodes
    if (!header) { skipped.push({ path: e.path, reason: 'not an image (its bytes are not PNG, JPEG, BMP or GIF)' }); continue; }
    if (parts.length < 2) { skipped.push({ path: e.path, reason: 'not inside a class folder' }); continue; }
    files.push({ bytes, name: e.path, label: parts[parts.length - 2], header });
  }
  if (!files.length) {
    const outside = skipped.filter((s) => s.reason === 'not inside a class folder').map((s) => s.path);
    const broken = skipped.filter((s) => s.reason !== 'not inside a class folder').map((s) => s.path);
    const why = [];
    if (outside.length) why.push(`${someNames(outside)} ${outside.length > 1 ? 'are' : 'is'} not inside a class folder (expected one folder per class, e.g. Trouser/0001.png)`);
    if (broken.length) why.push(`${someNames(broken)} ${broken.length > 1 ? 'are not images' : 'is not an image'} (${broken.length > 1 ? 'their' : 'its'} bytes are not PNG, JPEG, BMP or GIF)`);
    if (!why.length) why.push(`expected one folder per class holding ${bl.imageExtensions.join(', ')} files${others.length ? `; found only ${someNames(others)}` : ''}`);
    throw new Error(`${what}: no usable images: ${why.join('; ')}`);
  }
  files.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { kind: 'files', files, n: files.length, skipped };
}

class ZipLimit extends Error {}

// A zip's entries, refused before inflating when they would decompress to more than the library's limit for
// decompressed bytes (a zip bomb: fflate allocates each entry's declared size and inflates no further than it).
function unzip(bytes, name) {
  const limit = bl.limits.decompressedBytes;
  let total = 0, count = 0;
  const filter = (f) => {
    total += f.originalSize;
    if (++count > bl.limits.datasetImages) throw new ZipLimit(`${name}: holds more than ${bl.limits.datasetImages.toLocaleString('en-US')} files (the limit)`);
    if (total > limit) {
      throw new ZipLimit(`${name}: decompresses to more than ${limit.toLocaleString('en-US')} bytes (the limit; ${f.name} alone declares `
        + `${f.originalSize.toLocaleString('en-US')}): refused before unpacking`);
    }
    return true;
  };
  let entries;
  try { entries = unzipSync(bytesOf(bytes), { filter }); } catch (e) {
    if (e instanceof ZipLimit) throw new Error(e.message);
    throw new Error(`${name}: not a readable .zip file (${e.message || e})`);
  }
  return Object.entries(entries).filter(([p]) => !p.endsWith('/')).map(([path, b]) => ({ path, bytes: b }));
}

// The IDX sources' own Datasets: the evaluation, calibration and training sets that are all of an IDX source's images
// are that Dataset itself (not a copy: one set of decoded images in WASM memory), freed with the source (freeSource).
const sourceOwned = new WeakSet();
const release = (ds) => { if (ds && !sourceOwned.has(ds)) ds.delete(); };

// `count` images of a source (0: all) as a Dataset. IDX: the first ones (all of them: the source's own); folders: class-balanced, and each file keeps its
// folder's name as its class (the evaluation maps it onto the model's classes: bl.classIndices' rule).
function loadImages(src, count) {
  if (src.kind === 'idx') return !count || count >= src.n ? src.data : src.data.head(count);
  let files = src.files;
  if (count && count < files.length) {
    // Class-balanced: round-robin over the classes (folders are sorted by class).
    const byClass = new Map();
    for (const f of files) { if (!byClass.has(f.label)) byClass.set(f.label, []); byClass.get(f.label).push(f); }
    const queues = [...byClass.values()];
    const picked = [];
    for (let i = 0; picked.length < count; i++) {
      for (const q of queues) if (i < q.length && picked.length < count) picked.push(q[i]);
    }
    files = picked;
  }
  return bl.loadDataset({ files: files.map((f) => ({ bytes: f.bytes, name: f.name, label: f.label })) });
}

function sourceClassNames(src) {
  return src.kind === 'idx' ? src.data.classes : [...new Set(src.files.map((f) => f.label))];
}

function freeSource(src) {
  if (src && src.kind === 'idx') src.data.delete();
}

// bl.loadDataset of `count` images of a source; a file the library cannot decode (its error starts with the file's name)
// is dropped from the source and listed in its `skipped`, and the rest is loaded (each such file costs one more attempt,
// so after MAX_UNDECODABLE of them the set is refused).
const MAX_UNDECODABLE = 20;
function loadDatasetSkipping(src, count) {
  for (let dropped = 0; ; dropped++) {
    try { return loadImages(src, count); } catch (e) {
      const bad = src.kind === 'files' ? src.files.findIndex((f) => e.message.startsWith(`${f.name}: `)) : -1;
      if (bad < 0 || src.files.length === 1) throw e;
      if (dropped >= MAX_UNDECODABLE) throw new Error(`${e.message} (and ${dropped} other images could not be decoded either: is this an image set?)`);
      src.skipped.push({ path: src.files[bad].name, reason: e.message.slice(src.files[bad].name.length + 2) });
      src.files.splice(bad, 1);
      src.n = src.files.length;
    }
  }
}

function buildDatasets() {
  release(evalData);
  release(calibData);
  evalData = calibData = null;
  clearQuantCache();
  clearPruned();
  if (!source || !bl) return;
  calibData = loadDatasetSkipping(source, 0);
  evalData = loadDatasetSkipping(source, limit);
}

// The training images, with folder names mapped onto the (current) model's labels.
function buildTrainData() {
  release(trainData);
  trainData = null;
  if (!trainSource || !bl) return;
  trainData = loadDatasetSkipping(trainSource, 0);
}

function clearTuned() {
  if (tunedModel) { tunedModel.delete(); tunedModel = null; }
}

// model.qat() or model.inq() (`what`) on the training images, keeping the PTQ start; progress posted when `key(p)`
// (an epoch or partition step ended, or the last step) and otherwise at most every 100 ms.
async function fineTune(what, opts, key, post) {
  if (!model || !evalData) throw new Error('load a model and images first');
  if (!trainData) throw new Error('load training images first');
  clearTuned();
  let last = 0;
  const onProgress = (p) => {
    const now = Date.now();
    if (key(p) || now - last > 100) { last = now; post({ progress: p }); }
  };
  return model[what](trainData, opts, { onProgress, keepPtq: true });
}

// A fine-tuned model kept for the download; what the page shows of it: `extra`, the images, FP32 on the held-out
// ones, and the PTQ start (`ptq`) and the result (`tuned`) on the evaluation images.
function keepTuned(q, extra) {
  const evalOf = (m) => {
    const r = m.evaluate(evalData);
    return { top1: r.top1, n: r.n, perClass: r.perClass, worstClass: r.worstClass };
  };
  try {
    const result = {
      ...extra, trainImages: q.trainImages, valImages: q.valImages,
      validationFp32: q.validationFp32 && { top1: q.validationFp32.top1, worstClass: q.validationFp32.worstClass },
      ptq: evalOf(q.ptq), tuned: evalOf(q), modelBytes: q.info.modelBytes, ptqBytes: q.ptq.info.modelBytes, config: q.info.config,
    };
    q.ptq.delete();
    q.ptq = null;
    tunedModel = q;
    return result;
  } catch (e) {
    q.delete();
    throw e;
  }
}

function clearSos() {
  for (const q of sosModels.values()) q.delete();
  sosModels.clear();
}

// What the page sent (IDX files, a zip, or a folder's files) → a source.
function parseSource(input) {
  if (input.kind === 'idx') return { src: loadIdx(input.files), name: input.files.map((f) => f.name).join(' + ') };
  if (input.kind === 'zip') return { src: folderFiles(unzip(input.bytes, input.name), input.name), name: input.name };
  if (input.kind === 'folder') return { src: folderFiles(input.files, input.name), name: input.name };
  throw new Error(`unknown image source '${input.kind}'`);
}

function dataSummary() {
  if (!source) return null;
  const evalN = evalData ? evalData.size : Math.min(limit || source.n, source.n);
  return { name: sourceName, kind: source.kind, poolN: source.n, evalN, classes: sourceClassNames(source), shape: calibData ? calibData.shape : null, skipped: source.skipped || [] };
}


// ---------- structured pruning and the trade-off ---------------------------------------------

// Forward latency: the median over LATENCY_IMAGES images of one forward's time, after LATENCY_WARMUP untimed forwards;
// each image's forward repeated until it takes at least LATENCY_MIN_MS (the worker's clock is coarse).
const LATENCY_IMAGES = 32;
const LATENCY_WARMUP = 8;
const LATENCY_MIN_MS = 10;

function clearPruned() {
  for (const m of prunedModels.values()) m.delete();
  prunedModels.clear();
  latencyInputs = null;
}

function latencyImages() {
  if (!latencyInputs) {
    const n = Math.min(LATENCY_IMAGES, source.n);
    latencyInputs = Array.from({ length: n }, (_, i) => {
      const img = sampleImage(i);
      return model.preprocess(img.png, { name: img.name });
    });
  }
  return latencyInputs;
}

// ms per image of each model's forwardRaw (Models or QuantizedModels), the median over the latency images. The
// models take turns on each image, so a burst of other work on the machine slows them alike.
function forwardMs(models) {
  const inputs = latencyImages();
  const reps = models.map((m) => {
    const t = performance.now();
    for (let i = 0; i < LATENCY_WARMUP; i++) m.forwardRaw(inputs[i % inputs.length]);
    const guess = Math.max(1e-3, (performance.now() - t) / LATENCY_WARMUP);
    return Math.max(1, Math.min(200, Math.ceil(LATENCY_MIN_MS / guess)));
  });
  const times = models.map(() => []);
  for (const x of inputs) {
    models.forEach((m, k) => {
      const t = performance.now();
      for (let r = 0; r < reps[k]; r++) m.forwardRaw(x);
      times[k].push((performance.now() - t) / reps[k]);
    });
  }
  return times.map((ts) => {
    ts.sort((a, b) => a - b);
    const h = ts.length >> 1;
    return ts.length % 2 ? ts[h] : (ts[h - 1] + ts[h]) / 2;
  });
}

const evalSummary = (r) => ({ top1: r.top1, n: r.n, worstClass: r.worstClass });


// ---------- teaching views -----------------------------------------------------------------------

// A deterministic stand-in for post-softmax attention probabilities: softmax rows of random logits.
function softmaxLike(rows = 64, cols = 50) {
  let s = 12345;
  const rnd = () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const z = [];
    for (let c = 0; c < cols; c++) {
      const g = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
      z.push(2.0 * g);
    }
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const t = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < cols; c++) out[r * cols + c] = e[c] / t;
  }
  return out;
}

function histogram(values, bins = 120) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (hi === lo) hi = lo + 1e-6;
  const counts = new Array(bins).fill(0);
  const w = (hi - lo) / bins;
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v - lo) / w))]++;
  return counts.map((c, i) => ({ x0: lo + i * w, x1: lo + (i + 1) * w, count: c }));
}

// The positive values binned on a log10 scale: [{ x0, x1, count }].
function logHistogram(values, bins) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (v > 0) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!(hi > 0)) return [];
  const l0 = Math.log10(lo), l1 = Math.log10(hi) + 1e-9, w = (l1 - l0) / bins;
  const counts = new Array(bins).fill(0);
  for (const v of values) if (v > 0) counts[Math.min(bins - 1, Math.floor((Math.log10(v) - l0) / w))]++;
  return counts.map((count, i) => ({ x0: 10 ** (l0 + i * w), x1: 10 ** (l0 + (i + 1) * w), count }));
}

// A Linear layer's input width (its weight is out × in, row-major), from its canonical name and the model's shape.
function layerInputs(layer) {
  const info = model.info;
  const b = /^blocks\.(\d+)\./.exec(layer);
  const block = b ? info.blocks[Number(b[1])] : null;
  if (/^patch_embed/.test(layer)) return info.channels * info.patchSize * info.patchSize;
  if (block && /\.fc2$/.test(layer)) return block.mlpDim;
  if (block && /\.attn\.proj$/.test(layer)) return block.heads * (info.hiddenSize / info.heads);
  return info.hiddenSize;
}

// The values a quantizer sees and its grid over them, as the sweep uses it. Weights: the weight quantizers (uniform and
// power-of-two, symmetric), per channel (each output channel has its own grid: the widest channel is drawn) or per
// tensor (one grid for the layer), as `granularity` says. Softmax: the post-softmax quantizers (uniform, log2, SULQ)
// on attention-like probabilities.
function teach({ layer, bits, source: what, granularity = 'channel' }) {
  if (!model) throw new Error('load a model first');
  let values, channel = null, channels = null;
  if (what === 'softmax') values = softmaxLike();
  else {
    const w = model.weight(layer);
    values = w;
    const len = layerInputs(layer);
    if (granularity === 'channel' && len > 0 && w.length % len === 0 && w.length > len) {
      channels = w.length / len;
      let best = 0, widest = -1;
      for (let r = 0; r < channels; r++) {
        let m = 0;
        for (let j = r * len; j < (r + 1) * len; j++) m = Math.max(m, Math.abs(w[j]));
        if (m > widest) { widest = m; best = r; }
      }
      channel = best;
      values = w.subarray(best * len, (best + 1) * len);
    }
  }
  const quantizers = what === 'softmax' ? ['uniform', 'log2', 'sulq'] : ['uniform', 'pow2'];
  const grids = quantizers.map((quantizer) => {
    const opts = { quantizer, bits, symmetric: what !== 'softmax' };
    const r = bl.quantizeTensor(values, opts);
    return { quantizer, levels: Array.from(r.levels), params: r.params };
  });
  return {
    values: what === 'softmax' ? 'softmax-like' : layer, n: values.length, hist: histogram(values), grids,
    granularity: what === 'softmax' ? 'tensor' : channel != null ? 'channel' : 'tensor', channel, channels,
  };
}

function quantizedFor(cfg, seed, calibSize) {
  calibSize = Math.min(calibSize || 32, calibData.size);
  const key = JSON.stringify([cfg, seed, calibSize]);
  if (!quantCache.has(key)) {
    if (quantCache.size >= 4) { const [k, q] = quantCache.entries().next().value; q.delete(); quantCache.delete(k); }
    quantCache.set(key, model.quantize({ ...cfg, seed, calibSize, calib: calibData }));
  }
  return quantCache.get(key);
}

function sampleImage(index) {
  if (!source) throw new Error('load images first');
  const i = Math.max(0, Math.min(source.n - 1, index | 0));
  if (source.kind === 'idx') {
    const im = source.data.image(i);
    return { index: i, png: encodePngGray(im.pixels, im.width, im.height), name: `${source.imagesName} #${i}`, trueClass: im.label };
  }
  const f = source.files[i];
  return { index: i, png: f.bytes, name: f.name, trueClass: f.label };
}

// The model's class of an image's class name, by the evaluation's own rule (bl.classIndices over the pool's classes, so
// a model with generic labels takes them in the pool's order); -1 when the model has no such class.
function trueIndex(trueClass) {
  const names = calibData ? calibData.classes : [trueClass];
  try {
    return bl.classIndices(model, names)[names.indexOf(trueClass)] ?? -1;
  } catch {
    return -1;
  }
}

// The class token's attention to each patch at `block`, mean over heads (FP32, and quantized when a
// configuration is chosen), with the patch grid's shape.
function attention(png, name, q, block) {
  const { imageSize, patchSize, channels } = model.info;
  const grid = [Math.floor(imageSize[0] / patchSize), Math.floor(imageSize[1] / patchSize)];
  return {
    grid, block: block < 0 ? model.info.depth + block : block,
    // The image as the model sees it (after resizing and cropping), to draw under the maps.
    input: { values: model.preprocess(png, { name }), channels, height: imageSize[0], width: imageSize[1] },
    fp32: Array.from(model.attention(png, { block, name })),
    quant: q ? Array.from(q.attention(png, { block, name })) : null,
  };
}

function sample({ index, config, seed, calibSize, block = -1 }) {
  if (!model) throw new Error('load a model first');
  const img = sampleImage(index);
  const fp32 = model.classify(img.png, { topK: 3, name: img.name });
  const t = trueIndex(img.trueClass);
  const q = config ? quantizedFor(config, seed, calibSize) : null;
  const quant = q ? { top: q.classify(img.png, { topK: 3, name: img.name }) } : null;
  return { ...img, trueIndex: t, trueLabel: t >= 0 ? model.info.labels[t] : img.trueClass, fp32, quant, attention: attention(img.png, img.name, q, block) };
}

// ---------- messages ---------------------------------------------------------------------------

const handlers = {
  loadModel({ safetensors, config, preprocessor, name }) {
    if (!safetensors) throw new Error('no .safetensors file: a model needs model.safetensors and config.json');
    if (!config) throw new Error(`no config.json beside ${name || 'the .safetensors file'}: BitLens needs it to know the architecture`);
    const m = bl.loadModel({ safetensors: bytesOf(safetensors), config: textOf(config), preprocessor: textOf(preprocessor), name: name || 'model.safetensors' });
    clearQuantCache();
    clearTuned();
    clearSos();
    clearPruned();
    if (model) model.delete();
    model = m;
    modelName = name || 'model.safetensors';
    let dataError = null;
    try { buildDatasets(); } catch (e) { dataError = e.message; }
    try { buildTrainData(); } catch (e) { dataError = dataError || `training images: ${e.message}`; }
    return { info: model.info, name: modelName, data: dataSummary(), dataError };
  },
  loadData({ input, limit: lim }) {
    const { src, name } = parseSource(input);
    const old = { source, sourceName, limit };
    source = src; sourceName = name; limit = lim || 0;
    try {
      if (model) buildDatasets();
    } catch (e) {
      source = old.source; sourceName = old.sourceName; limit = old.limit;
      freeSource(src);
      try { if (model) buildDatasets(); } catch { /* keep going */ }
      throw e;
    }
    if (old.source !== src) freeSource(old.source);
    return dataSummary();
  },
  setLimit({ limit: lim }) {
    if ((lim || 0) !== limit) { limit = lim || 0; if (model) buildDatasets(); }
    return dataSummary();
  },
  evaluate() {
    if (!model || !evalData) throw new Error('load a model and images first');
    const r = model.evaluate(evalData);
    return { top1: r.top1, n: r.n, labels: r.labels, perClass: r.perClass, classCount: r.classCount, worstClass: r.worstClass, confusion: r.confusion };
  },
  // The whole sweep, or with `spec.shard` one part of it (the page spreads a sweep over workers and merges the parts
  // with the API's own bl.mergeSweeps).
  async sweep({ spec }, post) {
    if (!model || !evalData) throw new Error('load a model and images first');
    let last = 0;
    const onProgress = ({ done, total }) => {
      const now = Date.now();
      if (done === total || done === 0 || now - last > 100) { last = now; post({ progress: { done, total } }); }
    };
    return bl.sweep({ ...spec, model, data: evalData, calib: calibData }, { onProgress });
  },
  /** A QAT / QBitOpt / INQ / pruning run's settings checked by the library (bl.checkTraining: the run's own error), before any work. */
  checkTraining({ kind, options }) {
    if (!model) throw new Error('load a model first');
    bl.checkTraining(model, kind, options);
    return true;
  },
  /** A sweep's settings checked by the library against the loaded model and images (the sweep's own error), before any work. */
  checkSweep({ spec }) {
    if (!model || !evalData) throw new Error('load a model and images first');
    return bl.checkSweep({ ...spec, model, data: evalData, calib: calibData });
  },
  /**
   * Mixed precision: sensitivities on `sensSize` calibration images, the exact plan under `budget`
   * average bits, then a sweep of uniform W⌊budget⌋A⌊budget⌋ against the plan over `seeds` draws.
   */
  async mixed({ quant, objective, budget, maxBytes, sensSize, seeds, calibSize }, post) {
    if (!model || !evalData) throw new Error('load a model and images first');
    let last = 0;
    const progress = (phase) => ({ done, total }) => {
      const now = Date.now();
      if (done === total || done === 0 || now - last > 100) { last = now; post({ progress: { done, total, phase } }); }
    };
    const sens = await bl.sensitivities({ model, calib: calibData, objective, sensSize: Math.min(sensSize, calibData.size), ...quant },
      { onProgress: progress('sensitivities') });
    // A size budget compares with the widest uniform weights the plan's average allows, activations at 8 bits.
    const plan = maxBytes ? bl.planMixed(sens, { maxBytes }) : bl.planMixed(sens, { budget });
    const b = Math.max(2, Math.floor(maxBytes ? plan.weightBitsAvg : budget));
    const uniformConfig = { wbits: b, abits: maxBytes ? 8 : b, ...quant };
    calibSize = Math.min(calibSize, calibData.size);
    // The bit-widths uniform quantization gives every layer and point (edges stay at 8 bits).
    const u = model.quantize({ ...uniformConfig, calibSize, calib: calibData });
    const uniform = { layerBits: u.info.layerBits, pointBits: u.info.pointBits };
    u.delete();
    const sweep = await bl.sweep({ model, data: evalData, calib: calibData, seeds, calibSize,
      configs: [uniformConfig, { ...quant, layerBits: plan.layerBits, pointBits: plan.pointBits }] }, { onProgress: progress('comparison') });
    return { budget, maxBytes, objective, sensSize: sens.sensSize, sens, plan, uniform, sweep };
  },
  /** The training images for fine-tuning: kept beside the evaluation images. */
  loadTrainData({ input, name: shown }) {
    const { src, name: named } = parseSource(input);
    const name = shown || named;
    const old = { trainSource, trainName };
    trainSource = src; trainName = name;
    try {
      buildTrainData();
    } catch (e) {
      trainSource = old.trainSource; trainName = old.trainName;
      freeSource(src);
      try { buildTrainData(); } catch { /* keep going */ }
      throw e;
    }
    if (old.trainSource !== src) freeSource(old.trainSource);
    return { name, kind: src.kind, n: src.n, classes: sourceClassNames(src), shape: trainData ? trainData.shape : null, skipped: src.skipped || [] };
  },
  /**
   * Fine-tuning (QAT; with a `budget`, QBitOpt) of one configuration on the training images, then the PTQ start and
   * the best epoch evaluated on the evaluation images. Progress: every epoch and every allocation of bits, and every
   * step at most every 100 ms.
   */
  async qat({ quant, options }, post) {
    const q = await fineTune('qat', { ...quant, ...options }, (p) => p.epochStats || p.allocated || p.step === p.steps, post);
    return keepTuned(q, { history: q.history, bestEpoch: q.bestEpoch, avgWbits: q.avgWbits, avgAbits: q.avgAbits,
      budget: q.budget, allocations: q.allocations, keptAllocation: q.keptAllocation });
  },
  /**
   * INQ of one configuration (power-of-two weights) on the training images, then its PTQ start and the result
   * evaluated on the evaluation images. Progress: every partition step, and every step at most every 100 ms.
   */
  async inq({ quant, options }, post) {
    const q = await fineTune('inq', { ...quant, ...options }, (p) => p.stepStats || p.iteration === p.iterations, post);
    return keepTuned(q, { history: q.history, partitions: q.partitions });
  },
  /**
   * SOS block reconstruction of one configuration, calibrated on the loaded images (`calibSize` drawn with
   * seed 0), every stage evaluated on the evaluation images. Progress: every finished block and stage, and
   * every iteration at most every 100 ms. `first` starts a new run of configurations (the previous models go).
   */
  async sos({ quant, name, first }, post) {
    if (!model || !evalData) throw new Error('load a model and images first');
    if (first) clearSos();
    let last = 0;
    const onProgress = (p) => {
      const now = Date.now();
      if (p.stageResults || p.blockResults || p.done === p.total || now - last > 100) { last = now; post({ progress: p }); }
    };
    const q = await model.quantize({ ...quant, method: 'sos', calib: calibData }, { evaluate: evalData, onProgress });
    if (sosModels.has(name)) sosModels.get(name).delete();
    sosModels.set(name, q);
    const stage = (s) => ({ stage: s.stage, seconds: s.seconds, top1: s.top1, n: s.n, perClass: s.perClass, worstClass: s.worstClass, maxLogitChange: s.maxLogitChange });
    return { stages: q.stages.map(stage), blocks: q.blocks, modelBytes: q.info.modelBytes, config: q.info.config };
  },
  exportSos({ name }) {
    const q = sosModels.get(name);
    if (!q) throw new Error(`no reconstructed model named ${name}: run SOS reconstruction first`);
    return q.exportSafetensors();
  },
  exportTuned() {
    if (!tunedModel) throw new Error('no fine-tuned model: run “Fine-tune” first');
    return tunedModel.exportSafetensors();
  },
  /**
   * Structured pruning of the loaded model on the training images (model.prune); the pruned model is kept under `modelId`
   * for measuring and the download. Progress: every evaluated epoch, and every step at most every 100 ms.
   */
  async prune({ modelId: id, options }, post) {
    if (!model || !evalData) throw new Error('load a model and images first');
    if (!trainData) throw new Error('load training images first');
    let last = 0;
    const onProgress = (p) => {
      const now = Date.now();
      if (p.epochStats || p.step === p.steps || now - last > 100) { last = now; post({ progress: p }); }
    };
    const m = await model.prune(trainData, options, { onProgress });
    if (prunedModels.has(id)) prunedModels.get(id).delete();
    prunedModels.set(id, m);
    return {
      info: m.info, history: m.history, bestEpoch: m.bestEpoch, importance: m.importance, keptHeads: m.keptHeads, keptUnits: m.keptUnits,
      layers: m.layers, parametersBefore: m.parametersBefore, parameters: m.parameters, trainImages: m.trainImages, valImages: m.valImages,
      validationFp32: m.validationFp32 && evalSummary(m.validationFp32),
    };
  },
  /**
   * The trade-off points of one model (`modelId`: 'fp32' for the loaded model, or a pruned model's): FP32 and each of
   * `configs` quantized with `quant` (calibrated on the loaded images, seed 0, the Linears on the integer path), each
   * evaluated on the evaluation images, its forward timed and its size in bytes (FP32: 4 per parameter; quantized:
   * the export's model bytes). Progress after each.
   */
  measure({ modelId: id, quant, configs }, post) {
    if (!model || !evalData) throw new Error('load a model and images first');
    const m = id === 'fp32' ? model : prunedModels.get(id);
    if (!m) throw new Error(`the pruned model ${id} is gone (the worker restarted): prune it again`);
    const total = configs.length + 2;  // each precision, then the timing
    const quantized = [];
    try {
      post({ progress: { done: 0, total, what: 'evaluating FP32' } });
      const points = [{ precision: 'FP32', bytes: 4 * m.info.parameters, ...evalSummary(m.evaluate(evalData)) }];
      configs.forEach((c, i) => {
        post({ progress: { done: i + 1, total, what: `quantizing to ${c.name} and evaluating` } });
        const q = m.quantize({ ...quant, wbits: c.wbits, abits: c.abits, seed: 0, calibSize: Math.min(quant.calibSize, calibData.size), calib: calibData, integer: true });
        quantized.push(q);
        points.push({ precision: c.name, bytes: q.info.modelBytes, integerLayers: q.info.integerLayers, ...evalSummary(q.evaluate(evalData)) });
      });
      post({ progress: { done: configs.length + 1, total, what: 'timing the forward passes' } });
      forwardMs([m, ...quantized]).forEach((ms, k) => { points[k].ms = ms; });
      return { id, parameters: m.info.parameters, linears: m.info.layers.length, points };
    } finally {
      for (const q of quantized) q.delete();
    }
  },
  /** A pruned model as a model folder in a .zip: model.safetensors (FP32), config.json (records the pruning), preprocessor_config.json. */
  exportPruned({ modelId: id, folder }) {
    const m = prunedModels.get(id);
    if (!m) throw new Error(`the pruned model ${id} is gone (the worker restarted): prune it again`);
    const f = m.exportFiles();
    const enc = new TextEncoder();
    const files = { [`${folder}/model.safetensors`]: f.safetensors, [`${folder}/config.json`]: enc.encode(f.config) };
    if (f.preprocessor) files[`${folder}/preprocessor_config.json`] = enc.encode(f.preprocessor);
    return zipSync(files, { level: 0 });
  },
  teach,
  sample,
  exportModel({ config, seed, calibSize }) {
    if (!model) throw new Error('load a model first');
    return quantizedFor(config, seed, calibSize).exportSafetensors();
  },
};

// ---------- the one-image view's flips (issue 18 item 4) ---------------------------------------
// Every evaluation image classified by FP32 and by one configuration (the same quantized model as the sample view:
// same configuration, seed and calibration draw), and the images where exactly one of the two is right: `broken`
// (FP32 right, the configuration wrong) and `fixed` (the reverse). Each image by its number in the loaded images (the
// sample view's number), with its true class and both top-1 predictions. FP32's predictions are kept per model and images.

let fp32Predictions = null;  // { model, evalData, top: [class index per evaluation image] }

// The evaluation images' numbers among the loaded images (evalData is the first `limit`; for folders class-balanced).
function evalImageNumbers() {
  const n = evalData.size;
  if (source.kind === 'idx' || !(limit && limit < source.files.length)) return Array.from({ length: n }, (_, i) => i);
  const byClass = new Map();
  source.files.forEach((f, i) => { if (!byClass.has(f.label)) byClass.set(f.label, []); byClass.get(f.label).push(i); });
  const queues = [...byClass.values()];
  const picked = [];
  for (let i = 0; picked.length < n; i++) for (const q of queues) if (i < q.length && picked.length < n) picked.push(q[i]);
  return picked;
}

function flips({ config, seed, calibSize }) {
  if (!model || !evalData) throw new Error('load a model and images first');
  const q = quantizedFor(config, seed, calibSize);
  const numbers = evalImageNumbers();
  const images = numbers.map((i) => sampleImage(i));
  if (!fp32Predictions || fp32Predictions.model !== model || fp32Predictions.evalData !== evalData) {
    fp32Predictions = { model, evalData, top: images.map((im) => model.classify(im.png, { topK: 1, name: im.name })[0].index) };
  }
  const truth = new Map();
  const broken = [], fixed = [];
  images.forEach((im, k) => {
    if (!truth.has(im.trueClass)) truth.set(im.trueClass, trueIndex(im.trueClass));
    const t = truth.get(im.trueClass);
    const f = fp32Predictions.top[k];
    const p = q.classify(im.png, { topK: 1, name: im.name })[0].index;
    if ((f === t) === (p === t)) return;
    (f === t ? broken : fixed).push({ index: im.index, trueIndex: t, fp32: f, quant: p });
  });
  return { n: images.length, labels: model.info.labels, broken, fixed };
}
handlers.flips = flips;

// ---------- Learn mode (issue 18 item 1) -------------------------------------------------------
// The lessons' numbers, computed once with the library's own quantizers (bl.quantizeTensor) on the loaded model's
// real tensors, for every knob value a lesson offers (2–8 bits), so that turning a knob only redraws in the page:
// (a) one output channel of `layer`: its weights and their uniform-quantized values and levels at each bit-width;
// (b) the whole layer under each range method: its clipping bound and rounding error at each bit-width;
// (c) real post-softmax attention: every head's whole attention matrix (model.attentionProbs) at every block for the
//     first images, binned on a log scale, with the levels, error and values rounded to 0 of the uniform, log2 and SULQ
//     grids at each bit-width (one grid for all of them, as a per-tensor quantizer);
// (d) the layer's weight matrix per tensor (one grid) vs per channel (a grid per row): each row's error at each bit-width.
const LEARN_BITS = [2, 3, 4, 5, 6, 7, 8];
const mse = (a, b) => { let s = 0; for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2; return s / a.length; };

function learn({ layer, images = 16 }) {
  if (!model) throw new Error('load a model first');
  const name = layer && model.info.layers.includes(layer) ? layer
    : model.info.layers.find((l) => /blocks\.1\.mlp\.fc1|layer\.1\.intermediate/.test(l)) || model.info.layers[0];
  const w = model.weight(name);
  const cols = layerInputs(name);
  const rows = w.length / cols;
  // (a) the widest output channel (the one the quantizer view draws).
  let ch = 0, widest = -1;
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) m = Math.max(m, Math.abs(w[j]));
    if (m > widest) { widest = m; ch = r; }
  }
  const row = w.slice(ch * cols, (ch + 1) * cols);
  const shown = Math.min(cols, 64);  // the channel's grid is fitted to all of it; the figure shows its first 64
  const a = { channel: ch, values: Array.from(row.subarray(0, shown)), byBits: {} };
  for (const bits of LEARN_BITS) {
    const q = bl.quantizeTensor(row, { quantizer: 'uniform', bits, symmetric: true, range: 'minmax' });
    a.byBits[bits] = { q: Array.from(q.values.subarray(0, shown)), levels: Array.from(q.levels), mse: mse(row, q.values) };
  }
  // (b) range methods on the whole layer.
  const b = { hist: histogram(w, 80), byMethod: {} };
  for (const range of ['minmax', 'percentile', 'mse']) {
    b.byMethod[range] = {};
    for (const bits of LEARN_BITS) {
      const q = bl.quantizeTensor(w, { quantizer: 'uniform', bits, symmetric: true, range });
      let lo = Infinity, hi = -Infinity, clipped = 0;
      for (const v of q.levels) { if (v < lo) lo = v; if (v > hi) hi = v; }
      for (const v of w) if (v < lo || v > hi) clipped++;
      b.byMethod[range][bits] = { lo, hi, clipped, mse: mse(w, q.values) };
    }
  }
  // (c) every head's attention probabilities at every block for the first images.
  let c = null;
  if (source) {
    const parts = [];
    const n = Math.min(images, source.n);
    let heads = 0, tokens = 0;
    for (let i = 0; i < n; i++) {
      const img = sampleImage(i);
      for (let blk = 0; blk < model.info.depth; blk++) {
        const a = model.attentionProbs(img.png, { block: blk, name: img.name });
        parts.push(a.values);
        heads = a.heads, tokens = a.tokens;
      }
    }
    const p = new Float32Array(parts.reduce((t, a) => t + a.length, 0));
    parts.reduce((o, a) => { p.set(a, o); return o + a.length; }, 0);
    c = { n: p.length, images: n, blocks: model.info.depth, heads, tokens, hist: logHistogram(p, 60), byQuantizer: {} };
    for (const quantizer of ['uniform', 'log2', 'sulq']) {
      c.byQuantizer[quantizer] = {};
      for (const bits of LEARN_BITS) {
        const q = bl.quantizeTensor(p, { quantizer, bits, symmetric: false });
        let zeroed = 0;
        for (let i = 0; i < p.length; i++) if (p[i] > 0 && q.values[i] === 0) zeroed++;
        c.byQuantizer[quantizer][bits] = { levels: Array.from(q.levels), mse: mse(p, q.values), zeroed };
      }
    }
  }
  // (d) per tensor vs per channel: each row's mean squared error.
  const d = { rows, cols, byBits: {} };
  for (const bits of LEARN_BITS) {
    const t = bl.quantizeTensor(w, { quantizer: 'uniform', bits, symmetric: true, range: 'minmax' }).values;
    const tensor = [], channel = [];
    for (let r = 0; r < rows; r++) {
      const x = w.subarray(r * cols, (r + 1) * cols);
      tensor.push(mse(x, t.subarray(r * cols, (r + 1) * cols)));
      channel.push(mse(x, bl.quantizeTensor(x, { quantizer: 'uniform', bits, symmetric: true, range: 'minmax' }).values));
    }
    d.byBits[bits] = { tensor, channel };
  }
  return { model: modelName, layer: name, a, b, c, d };
}
handlers.learn = learn;

// The heavy lessons (e)–(h) are lists of independent runs, each a function of its item alone: the page spreads
// them over its workers (payload.items: this worker's share, all by default; payload.fp32: false on the workers that
// leave the FP32 evaluation to the first) and merges the parts (web/page/learn.js), the same numbers as one worker's.
// Each handler checks its items first, before what it has loaded and before any work.
const share = (payload, all) => (payload.items ?? all).map((it) => {
  if (!all.some((a) => JSON.stringify(a) === JSON.stringify(it))) throw new Error(`not an item of this lesson: ${JSON.stringify(it)}`);
  return it;
});

// Each heavy lesson's items (the page splits them over its workers).
handlers.learnItems = () => ({ e: LEARN_BITS, f: DRAW_ITEMS, g: MIXED_BITS, h: REPAIR_METHODS });

// (e) the average hides the worst class: FP32 and W b A b (the library's default quantizers, seed 0, 32 calibration
// images) at each bit-width on the evaluation images, per class. Heavier (a quantization and an evaluation per
// bit-width), so computed only when the lesson opens; progress per bit-width.
function learnClasses(payload, post) {
  const items = share(payload, LEARN_BITS);
  if (!model || !evalData) throw new Error('load a model and images first');
  const fp32 = fp32Part(payload);
  const byBits = {};
  items.forEach((bits, k) => {
    post({ progress: { done: k, total: items.length, bits } });
    const q = model.quantize({ calib: calibData, wbits: bits, abits: bits, calibSize: Math.min(32, calibData.size), seed: 0 });
    try {
      const r = q.evaluate(evalData);
      byBits[bits] = { top1: r.top1, perClass: r.perClass, worstClass: r.worstClass };
    } finally {
      q.delete();
    }
  });
  return { model: modelName, ...fp32, byBits };
}
handlers.learnClasses = learnClasses;
// A lesson's FP32 evaluation (opts: evaluate's), as its result's fields; none on a worker that leaves it to the first
// (payload.fp32 false).
function fp32Part(payload, opts) {
  if (payload.fp32 === false) return {};
  const fp = model.evaluate(evalData, opts);
  return { n: fp.n, labels: fp.labels, fp32: { top1: fp.top1, perClass: fp.perClass } };
}

// (f) calibration draws: W b A b at 3–6 bits with DRAW_SEEDS seeds, each drawing DRAW_CALIB calibration images from the
// pool, evaluated on the first DRAW_IMAGES evaluation images: per seed the top-1 and per-class accuracy, so the page
// shows the spread over draws and the worst one. A quantization and an evaluation per (bit-width, seed); progress each.
const DRAW_BITS = [3, 4, 5, 6], DRAW_SEEDS = 5, DRAW_IMAGES = 400, DRAW_CALIB = 8;
const DRAW_ITEMS = DRAW_BITS.flatMap((bits) => Array.from({ length: DRAW_SEEDS }, (_, seed) => [bits, seed]));
function learnDraws(payload, post) {
  const items = share(payload, DRAW_ITEMS);
  if (!model || !evalData) throw new Error('load a model and images first');
  const t0 = performance.now();
  const limit = Math.min(DRAW_IMAGES, evalData.size), calibSize = Math.min(DRAW_CALIB, calibData.size);
  const fp32 = fp32Part(payload, { limit });
  const byBits = {};
  for (const [i, [bits, seed]] of items.entries()) {
    post({ progress: { done: i, total: items.length, bits, seed } });
    const q = model.quantize({ calib: calibData, wbits: bits, abits: bits, calibSize, seed });
    try {
      const r = q.evaluate(evalData, { limit });
      (byBits[bits] ||= []).push({ seed, top1: r.top1, perClass: r.perClass, worstClass: r.worstClass });
    } finally {
      q.delete();
    }
  }
  return { model: modelName, calibSize, seeds: DRAW_SEEDS, ...fp32, byBits, seconds: (performance.now() - t0) / 1000 };
}
handlers.learnDraws = learnDraws;

// (g) mixed precision: every layer's and activation point's sensitivity (bl.sensitivities on MIXED_SENS calibration
// images, seed 0), then at each of MIXED_BITS bits uniform W b A b and the plan (bl.planMixed) in uniform's bytes with
// b-bit activations on average, both calibrated on 32 images with seed 0 and evaluated on the first DRAW_IMAGES
// evaluation images. Progress: the sensitivities' steps (at most every 100 ms), then each budget.
const MIXED_BITS = [3, 4, 5, 6], MIXED_SENS = 32;
// In two steps when the page spreads it: payload.sensOnly returns the sensitivities alone; then each worker gets them
// (payload.sens) with its share of the bit-widths (payload.items) and plans, quantizes and evaluates those.
async function learnMixed(payload, post) {
  const items = share(payload, MIXED_BITS);
  if (!model || !evalData) throw new Error('load a model and images first');
  const t0 = performance.now();
  const limit = Math.min(DRAW_IMAGES, evalData.size), calibSize = Math.min(32, calibData.size);
  let last = 0;
  const sens = payload.sens ?? await bl.sensitivities({ model, calib: calibData, sensSize: Math.min(MIXED_SENS, calibData.size), seed: 0 }, {
    onProgress: ({ done, total }) => { const now = Date.now(); if (now - last > 100 || done === total) { last = now; post({ progress: { phase: 'sensitivities', done, total } }); } },
  });
  if (payload.sensOnly) return { sens };
  const fp32 = fp32Part(payload, { limit });
  const run = (opts) => {
    const q = model.quantize({ calib: calibData, calibSize, seed: 0, ...opts });
    try {
      const r = q.evaluate(evalData, { limit });
      return { top1: r.top1, perClass: r.perClass, worstClass: r.worstClass, bytes: q.info.modelBytes, layerBits: q.info.layerBits, pointBits: q.info.pointBits };
    } finally {
      q.delete();
    }
  };
  const byBits = {};
  for (const [i, bits] of items.entries()) {
    post({ progress: { phase: 'budgets', done: i, total: items.length, bits } });
    // The same size: the plan gets uniform's bytes (its 8-bit edges included) and its activation bits.
    const uniform = run({ wbits: bits, abits: bits });
    const plan = bl.planMixed(sens, { maxBytes: uniform.bytes, abudget: bits });
    byBits[bits] = { mixed: run({ layerBits: plan.layerBits, pointBits: plan.pointBits }), uniform,
      weightBitsAvg: plan.weightBitsAvg, actBitsAvg: plan.actBitsAvg };
  }
  return { model: modelName, ...fp32, sensSize: sens.sensSize,
    candidates: sens.candidates, layers: sens.weights.map((w) => ({ name: w.name, values: w.values, sensitivity: w.sensitivity })),
    byBits, seconds: (performance.now() - t0) / 1000 };
}
handlers.learnMixed = learnMixed;

// (h) repairing the worst class at W3A3: PTQ (32 calibration images, seed 0), SOS reconstruction (REPAIR_ITERS Adam
// iterations per block and stage), QAT (1 epoch on the first REPAIR_TRAIN training images) and INQ (3-bit
// power-of-two weights, partitions 50 and 100 %, 1 epoch each on the same images), each evaluated on the first
// DRAW_IMAGES evaluation images. Progress: each method.
const REPAIR_BITS = 3, REPAIR_ITERS = 20, REPAIR_TRAIN = 500;
const REPAIR_METHODS = ['ptq', 'sos', 'qat', 'inq'];
async function learnRepair(payload, post) {
  const items = share(payload, REPAIR_METHODS);
  if (!model || !evalData) throw new Error('load a model and images first');
  if (!trainData) throw new Error('load training images first');
  const t0 = performance.now();
  const limit = Math.min(DRAW_IMAGES, evalData.size), calibSize = Math.min(32, calibData.size);
  const base = { wbits: REPAIR_BITS, abits: REPAIR_BITS, calibSize, seed: 0 };
  const train = { epochs: 1, limit: REPAIR_TRAIN };
  const make = {
    ptq: () => model.quantize({ ...base, calib: calibData }),
    sos: () => model.quantize({ ...base, calib: calibData, method: 'sos', reconIters: REPAIR_ITERS }),
    qat: () => model.qat(trainData, { ...base, ...train }),
    inq: () => model.inq(trainData, { ...base, calibSize: Math.min(32, REPAIR_TRAIN), partitions: [50, 100], epochsPerStep: 1, limit: REPAIR_TRAIN }),
  };
  const fp32 = fp32Part(payload, { limit });
  const byMethod = {};
  for (const [i, name] of items.entries()) {
    post({ progress: { done: i, total: items.length, method: name } });
    const t = performance.now();
    const q = await make[name]();
    try {
      const r = q.evaluate(evalData, { limit });
      byMethod[name] = { top1: r.top1, perClass: r.perClass, worstClass: r.worstClass, seconds: (performance.now() - t) / 1000 };
    } finally {
      q.delete();
    }
  }
  return { model: modelName, bits: REPAIR_BITS, iters: REPAIR_ITERS, train: Math.min(REPAIR_TRAIN, trainData.size),
    ...fp32, byMethod, seconds: (performance.now() - t0) / 1000 };
}
handlers.learnRepair = learnRepair;

// Every handler becomes an instance method of the package's worker, named 'page:' + its name (apart from the API's own
// methods): the page calls bl['page:name'](payload, { onProgress }) (web/page/workers.js).
extendWorker(Object.fromEntries(Object.entries(handlers).map(([name, h]) => [`page:${name}`, (instance, payload = {}, { onProgress } = {}) => {
  bl = instance;
  return h(payload, (m) => { if (m.progress && onProgress) onProgress(m.progress); });
}])));
