// BitLens — the JS API over the WebAssembly module. Works in Node 20 and in browsers (main thread
// or Web Worker). Objects that hold WASM memory have an explicit delete().
import createBitLensModule from './lib/bitlens-core.mjs';

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

function toBytes(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`${what}: expected a Uint8Array or ArrayBuffer, got ${x === null ? 'null' : typeof x}`);
}
function toText(x, what) {
  if (x === undefined || x === null) return '';
  if (typeof x === 'string') return x;
  return new TextDecoder().decode(toBytes(x, what));
}

export class Dataset {
  /** @internal */ constructor(handle) { this._h = handle; }
  get size() { this._alive(); return this._h.size(); }
  get classes() { this._alive(); return JSON.parse(this._h.classes()); }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('Dataset: used after delete()'); }
}

function evalResult(r) {
  return {
    top1: r.top1, n: r.n, labels: r.labels, perClass: r.per_class, classCount: r.class_count,
    worstClass: r.worst_class, confusion: r.confusion,
  };
}

// Options of model.quantize(), in the C++ config's field names.
const QUANT_FIELDS = {
  wbits: 'wbits', abits: 'abits', softmaxBits: 'softmax_bits', weights: 'weights', granularity: 'granularity',
  weightRange: 'weight_range', actRange: 'act_range', softmax: 'softmax', sulqRoundExponent: 'sulq_round_exponent',
  edges8bit: 'edges_8bit', reparam: 'reparam', calibSize: 'calib_size', seed: 'seed',
};
function quantConfig(opts) {
  const cfg = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'calib' || k === 'integer' || v === undefined) continue;
    if (!(k in QUANT_FIELDS)) throw new TypeError(`quantize: unknown option '${k}' (expected ${Object.keys(QUANT_FIELDS).join(', ')}, calib, integer)`);
    cfg[QUANT_FIELDS[k]] = v;
  }
  return JSON.stringify(cfg);
}

export class QuantizedModel {
  /** @internal */ constructor(handle) { this._h = handle; this.info = JSON.parse(handle.info()); }
  evaluate(data, { limit = 0 } = {}) {
    this._alive();
    if (!(data instanceof Dataset)) throw new TypeError('evaluate: expected a Dataset from loadDataset()');
    data._alive();
    return evalResult(JSON.parse(this._h.evaluate(data._h, limit)));
  }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('QuantizedModel: used after delete()'); }
}

export class Model {
  /** @internal */ constructor(handle) { this._h = handle; this.info = JSON.parse(handle.info()); }
  get labels() { return this.info.labels; }
  /** Top-1, per-class accuracy, confusion matrix and worst class on a dataset. */
  evaluate(data, { limit = 0 } = {}) {
    this._alive();
    if (!(data instanceof Dataset)) throw new TypeError('evaluate: expected a Dataset from loadDataset()');
    data._alive();
    return evalResult(JSON.parse(this._h.evaluate(data._h, limit)));
  }
  /**
   * Post-training quantization calibrated on `calib` (a Dataset): returns a QuantizedModel.
   * Options: wbits, abits (2–8), softmax ('sulq' | 'log2' | 'uniform'), softmaxBits, weights
   * ('uniform' | 'pow2'), granularity ('channel' | 'tensor'), weightRange / actRange ('mse' |
   * 'minmax' | 'percentile'), reparam, edges8bit, calibSize (default 32), seed, integer (int8 path).
   */
  quantize(opts = {}) {
    this._alive();
    const { calib, integer = false } = opts;
    if (!(calib instanceof Dataset)) throw new TypeError('quantize: `calib` must be a Dataset from loadDataset()');
    calib._alive();
    return new QuantizedModel(this._h.quantize(quantConfig(opts), calib._h, !!integer));
  }
  /** The FP32 weight of a layer (names in `info.layers`), as a Float32Array [out × in]. */
  weight(name) { this._alive(); return this._h.weight(String(name)); }
  /** Classifies one encoded image (PNG, JPEG, BMP, GIF): the top-k labels with probabilities. */
  classify(image, { topK = 5, name = 'image' } = {}) {
    this._alive();
    const logits = JSON.parse(this._h.classify(toBytes(image, 'classify'), name));
    const m = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - m));
    const s = e.reduce((a, b) => a + b, 0);
    return logits
      .map((z, i) => ({ index: i, label: this.info.labels[i], probability: e[i] / s, logit: z }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, topK);
  }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('Model: used after delete()'); }
}

/**
 * Creates a BitLens instance. Options: `wasmBinary` (bytes of bitlens-core.wasm) or `locateFile`
 * (as Emscripten's). In Node the .wasm beside the module is read from disk.
 */
export async function createBitLens(options = {}) {
  const opts = { ...options };
  if (!opts.wasmBinary && !opts.locateFile && isNode) {
    const { readFile } = await import('node:fs/promises');
    opts.wasmBinary = await readFile(new URL('./lib/bitlens-core.wasm', import.meta.url));
  }
  const M = await createBitLensModule(opts);
  return {
    module: M,
    /** Loads safetensors + config.json (+ preprocessor_config.json), each bytes or text. */
    loadModel({ safetensors, config, preprocessor, name = 'model.safetensors', heads = 0 }) {
      return new Model(M._loadModel(toBytes(safetensors, 'loadModel: safetensors'), toText(config, 'config'),
        toText(preprocessor, 'preprocessor'), name, heads));
    },
    /**
     * Quantizes a plain array of values, for teaching views: returns the dequantized values, the
     * quantizer's levels and its fitted parameters. Options: quantizer ('uniform' | 'log2' | 'sulq' |
     * 'pow2'), bits (2–8), symmetric, range ('minmax' | 'percentile' | 'mse'), roundExponent.
     */
    quantizeTensor(values, options = {}) {
      const arr = values instanceof Float32Array ? values : Float32Array.from(values);
      const r = M._quantizeTensor(arr, JSON.stringify(options));
      return { values: r.values, levels: r.levels, params: JSON.parse(r.params) };
    },
    /**
     * Loads a labeled dataset: `{ idxImages, idxLabels }` (IDX bytes, gzipped or raw) or
     * `{ files: [{ bytes, name, label }] }` (encoded images with their class names).
     */
    loadDataset(spec) {
      if (spec && spec.idxImages) {
        return new Dataset(M._loadIdx(toBytes(spec.idxImages, 'loadDataset: idxImages'),
          toBytes(spec.idxLabels, 'loadDataset: idxLabels'), spec.imagesName || 'images.idx',
          spec.labelsName || 'labels.idx'));
      }
      if (spec && Array.isArray(spec.files)) {
        const files = spec.files.map((f, i) => toBytes(f.bytes, `loadDataset: files[${i}].bytes`));
        return new Dataset(M._loadEncoded(files, spec.files.map((f) => String(f.name)),
          spec.files.map((f) => String(f.label))));
      }
      throw new TypeError('loadDataset: expected { idxImages, idxLabels } or { files: [{ bytes, name, label }] }');
    },
  };
}
export default createBitLens;
