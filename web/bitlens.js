// BitLens — the JS API over the WebAssembly module. Works in Node 20 and in browsers (main thread
// or Web Worker). Objects that hold WASM memory have an explicit delete().
import createBitLensModule from './lib/bitlens-core.mjs';

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

// A value as messages show it: numbers as JS writes them (NaN, Infinity), the rest as JSON.
const show = (v) => (typeof v === 'number' || v === undefined ? String(v) : JSON.stringify(v));
const typeName = (x) => (x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x);
// Whether an ArrayBuffer was detached (transferred to a worker with postMessage, or by structuredClone): its views read 0 bytes.
function isDetached(buf) {
  if (typeof buf.detached === 'boolean') return buf.detached;
  try {
    new Uint8Array(buf, 0, 0);
    return false;
  } catch {
    return true;
  }
}
const DETACHED = 'the ArrayBuffer is detached (transferred, e.g. to a worker with postMessage); pass a copy or the bytes before transferring them';
function toBytes(x, what) {
  if (x instanceof ArrayBuffer || ArrayBuffer.isView(x)) {
    if (isDetached(x instanceof ArrayBuffer ? x : x.buffer)) throw new TypeError(`${what}: ${DETACHED}`);
    if (x instanceof Uint8Array) return x;
    if (x instanceof ArrayBuffer) return new Uint8Array(x);
    return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  }
  throw new TypeError(`${what}: expected a Uint8Array or ArrayBuffer, got ${typeName(x)}`);
}
function toText(x, what) {
  if (x === undefined || x === null) return '';
  if (typeof x === 'string') return x;
  if (!(x instanceof ArrayBuffer || ArrayBuffer.isView(x))) throw new TypeError(`${what}: expected text (a string) or its bytes (Uint8Array or ArrayBuffer), got ${typeName(x)}`);
  return new TextDecoder().decode(toBytes(x, what));
}
// Values for a model's input or quantizeTensor: a Float32Array or an array of numbers, every one finite.
function toFloats(x, what) {
  let arr;
  if (x instanceof Float32Array) {
    if (isDetached(x.buffer)) throw new TypeError(`${what}: ${DETACHED}`);
    arr = x;
  } else if (Array.isArray(x) || ArrayBuffer.isView(x)) {
    if (ArrayBuffer.isView(x) && isDetached(x.buffer)) throw new TypeError(`${what}: ${DETACHED}`);
    arr = Float32Array.from(x, Number);
  } else {
    throw new TypeError(`${what}: expected a Float32Array or an array of numbers, got ${typeName(x)}`);
  }
  for (let i = 0; i < arr.length; i++) {
    if (!Number.isFinite(arr[i])) throw new RangeError(`${what}: value ${i} is ${Array.isArray(x) && typeof x[i] !== 'number' ? show(x[i]) : arr[i]} (expected finite numbers)`);
  }
  return arr;
}
// The number options every entry point shares, checked before anything crosses to C++ (where NaN and Infinity would
// arrive as JSON null, and an out-of-range size_t would wrap).
const MAX_U32 = 0xffffffff;
function checkWhole(v, what, name, lo, hi, note = '') {
  if (Number.isInteger(v) && v >= lo && v <= hi) return v;
  const want = hi >= Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${lo}` : `a whole number from ${lo} to ${hi}`;
  throw new (typeof v === 'number' ? RangeError : TypeError)(`${what}: \`${name}\` must be ${want}${note}, got ${show(v)}`);
}
// `limit` (images, 0: all): any whole number ≥ 0; beyond the data set's size it means all of them.
const checkLimit = (limit, what) => Math.min(checkWhole(limit, what, 'limit', 0, Number.MAX_SAFE_INTEGER, ' (0: every image)'), MAX_U32);
// JSON for C++ with every number finite (JSON.stringify writes NaN and Infinity as null): a non-finite number is an
// Error naming where it is (`opts.layerBits.head`).
function cppJson(value, what) {
  const walk = (v, path) => {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new RangeError(`${what}: \`${path}\` must be a finite number, got ${v}`);
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}${Array.isArray(v) ? `[${k}]` : `.${k}`}` : k);
  };
  walk(value, '');
  return JSON.stringify(value);
}

export class Dataset {
  /** @internal */ constructor(handle, M) { this._h = handle; this._M = M; }
  get size() { this._alive(); return this._h.size(); }
  get classes() { this._alive(); return JSON.parse(this._h.classes()); }
  /** The images' size and colour: the most common { width, height, channels } among them, `mixed` when they differ. */
  get shape() { this._alive(); return JSON.parse(this._M._datasetShape(this._h)); }
  /** The first `n` images (all of them when n ≥ size) as a new Dataset with the same classes. */
  head(n) {
    this._alive();
    return new Dataset(this._M._datasetHead(this._h, checkLimit(n, 'head')), this._M);
  }
  /** Image `i` as decoded: { width, height, channels, pixels (Uint8Array, row-major, channels interleaved), label }. */
  image(i) {
    this._alive();
    checkWhole(i, 'image', 'index', 0, Number.MAX_SAFE_INTEGER);
    return this._M._datasetImage(this._h, i);
  }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('Dataset: used after delete()'); }
}

function topK(logits, labels, k) {
  const m = Math.max(...logits);
  const e = logits.map((z) => Math.exp(z - m));
  const s = e.reduce((a, b) => a + b, 0);
  return logits
    .map((z, i) => ({ index: i, label: labels[i], probability: e[i] / s, logit: z }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k);
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
  layerBits: 'layer_bits', pointBits: 'point_bits', method: 'method', reconIters: 'recon_iters', reconBatch: 'recon_batch',
};
const METHODS = ['ptq', 'sos'];
// The method options checked here with the JS names (the C++ side checks again, in the CLI's words).
// `methods`: the methods `what` accepts.
// `calibSize`: the calibration set's size (a sweep's, for its configurations).
function checkMethod(opts, what, methods, calibSize = opts.calibSize ?? 32) {
  const { method = 'ptq', reconIters, reconBatch, reparam } = opts;
  if (!METHODS.includes(method)) throw new TypeError(`${what}: unknown method ${JSON.stringify(method)} (expected ${METHODS.map((m) => `'${m}'`).join(' or ')})`);
  if (!methods.includes(method)) throw new TypeError(`${what}: method '${method}' is not available here (${methods.map((m) => `'${m}'`).join(', ')} only)`);
  if (method !== 'sos') {
    for (const [k, v] of [['reconIters', reconIters], ['reconBatch', reconBatch]]) {
      if (v !== undefined) throw new TypeError(`${what}: \`${k}\` applies to method 'sos' (this is '${method}')`);
    }
    return;
  }
  if (reconIters !== undefined && !(Number.isInteger(reconIters) && reconIters >= 0)) {
    throw new RangeError(`${what}: \`reconIters\` must be a whole number ≥ 0 (iterations per block and stage), got ${show(reconIters)}`);
  }
  if (reconBatch !== undefined && !(Number.isInteger(reconBatch) && reconBatch >= 1)) {
    throw new RangeError(`${what}: \`reconBatch\` must be a whole number ≥ 1 (calibration images per iteration), got ${show(reconBatch)}`);
  }
  if (Number.isInteger(calibSize) && (reconBatch ?? 16) > calibSize) {
    throw new RangeError(`${what}: \`reconBatch\` (${reconBatch ?? 16}${reconBatch === undefined ? ', the default' : ''}) is larger than \`calibSize\` (${calibSize}): an iteration draws its images from the calibration set`);
  }
  if (reparam) throw new TypeError(`${what}: \`reparam\` is stage 2 of method 'sos' (the reconstructed channel-wise scales are folded in); drop it`);
}
function quantConfig(opts, what = 'quantize', methods = ['ptq'], calibSize = undefined) {
  const cfg = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'calib' || k === 'integer' || v === undefined) continue;
    if (!(k in QUANT_FIELDS)) throw new TypeError(`${what}: unknown option '${k}' (expected ${Object.keys(QUANT_FIELDS).join(', ')}${what === 'quantize' ? ', calib, integer' : ''})`);
    cppJson({ [k]: v }, what);  // NaN / Infinity named with the JS name, before they become null
    cfg[QUANT_FIELDS[k]] = v;
  }
  checkMethod(opts, what, methods, calibSize);
  return JSON.stringify(cfg);
}

// Training options model.qat() and model.inq() share, in the C++ names, each with its check (a message naming
// the field; the C++ side checks again).
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const TRAIN_FIELDS = {
  batch: ['batch', (v) => Number.isInteger(v) && v >= 1 && v <= 65536, 'a whole number from 1 to 65536'],
  limit: ['limit', (v) => Number.isSafeInteger(v) && v >= 0, 'a whole number ≥ 0 (0: every image)'],
  lr: ['lr', (v) => isNum(v) && v > 0, 'a number > 0'],
  minLr: ['min_lr', (v) => isNum(v) && v >= 0, 'a number ≥ 0 (and ≤ lr)'],
  weightDecay: ['weight_decay', (v) => isNum(v) && v >= 0, 'a number ≥ 0'],
  warmup: ['warmup', (v) => isNum(v) && v >= 0 && v <= 1, 'a fraction of the steps in [0, 1]'],
  clip: ['clip', (v) => isNum(v) && v >= 0, 'a number ≥ 0 (0: no clipping)'],
  distill: ['distill', (v) => typeof v === 'boolean', 'true or false'],
  temperature: ['temperature', (v) => isNum(v) && v > 0, 'a number > 0'],
  distillWeight: ['distill_weight', (v) => isNum(v) && v >= 0 && v <= 1, 'a number in [0, 1]'],
  labelSmoothing: ['label_smoothing', (v) => isNum(v) && v >= 0 && v < 1, 'a number in [0, 1)'],
  valSplit: ['val_split', (v) => isNum(v) && v >= 0 && v < 1, 'a fraction in [0, 1) of the training images'],
};
// QBitOpt (bit-widths reallocated during QAT under an average-bit budget): qat()'s options beyond the training's.
// `candidates`: distinct whole bit-widths from 2 to 8 (throws, naming the problem).
function checkCandidates(v) {
  if (!Array.isArray(v) || !v.every(Number.isInteger)) throw new TypeError(`qat: \`candidates\` must be an array of whole bit-widths (e.g. [2, 3, 4, 5, 6, 7, 8]), got ${show(v)}`);
  if (!v.length) throw new RangeError('qat: `candidates` is empty (expected bit-widths from 2 to 8, e.g. [2, 3, 4, 5, 6, 7, 8])');
  v.forEach((b, i) => {
    if (!(b >= 2 && b <= 8)) throw new RangeError(`qat: \`candidates\` must be bit-widths from 2 to 8, got ${b}`);
    if (v.indexOf(b) !== i) throw new RangeError(`qat: \`candidates\` lists ${b} bits twice`);
  });
  return true;
}
const QBITOPT_FIELDS = {
  budget: ['budget', (v) => isNum(v) && v > 0 && v <= 8, 'an average bit-width per weight above 0 and at most 8 (e.g. 4)'],
  abudget: ['abudget', (v) => isNum(v) && v > 0 && v <= 8, 'an average bit-width per activation value above 0 and at most 8 (e.g. 4)'],
  objective: ['objective', (v) => v === 'mean' || v === 'worst', "'mean' or 'worst'"],
  candidates: ['candidates', checkCandidates, ''],
  reallocEvery: ['realloc_every', (v) => Number.isInteger(v) && v >= 1, 'a whole number ≥ 1 (training steps between allocations; default: a quarter epoch)'],
  fisherBatches: ['fisher_batches', (v) => Number.isInteger(v) && v >= 1, 'a whole number ≥ 1 (batches per sensitivity estimate)'],
  sensitivityDecay: ['sensitivity_decay', (v) => isNum(v) && v >= 0 && v < 1, 'a number in [0, 1) (0: each allocation from its own batches only)'],
};
const QAT_FIELDS = { epochs: ['epochs', (v) => Number.isInteger(v) && v >= 1 && v <= 10000, 'a whole number from 1 to 10000'], ...TRAIN_FIELDS, ...QBITOPT_FIELDS };
// QBitOpt's options together: the other fields need `budget`, each budget at least the smallest candidate, and the
// bit-widths a budget allocates not given as well (they would be overwritten).
function checkBudget(options, quant) {
  const { budget, abudget, candidates = [2, 3, 4, 5, 6, 7, 8] } = options;
  if (budget === undefined) {
    if (abudget !== undefined) throw new TypeError("qat: `abudget` needs `budget` (the activations' bits are allocated with the weights')");
    const k = Object.keys(QBITOPT_FIELDS).find((f) => options[QBITOPT_FIELDS[f][0]] !== undefined);
    if (k) throw new TypeError(`qat: \`${k}\` applies with \`budget\` (QBitOpt: the bits reallocated during training under an average-bit budget)`);
    return;
  }
  const fewest = Math.min(...candidates);
  for (const [k, b] of [['budget', budget], ['abudget', abudget]]) {
    if (b !== undefined && b < fewest) throw new RangeError(`qat: \`${k}\` ${b} is infeasible: the smallest candidate is ${fewest} bits, so the budget must be at least ${fewest}`);
  }
  for (const k of ['wbits', 'layerBits', ...(abudget !== undefined ? ['pointBits'] : [])]) {
    if (quant[k] !== undefined) throw new TypeError(`qat: \`${k}\` does not apply with \`${k === 'pointBits' ? 'abudget' : 'budget'}\` (the bits of every ${k === 'pointBits' ? 'activation point' : 'layer'} are allocated)`);
  }
}
// INQ's partitions: cumulative percentages of each layer's weights frozen after each step (throws, naming the problem).
function checkPartitions(v) {
  if (!Array.isArray(v) || !v.every(isNum)) throw new TypeError(`inq: \`partitions\` must be an array of percentages (e.g. [50, 75, 87.5, 100]), got ${show(v)}`);
  if (!v.length) throw new RangeError('inq: `partitions` is empty (expected e.g. [50, 75, 87.5, 100])');
  v.forEach((p, i) => {
    if (!(p > 0 && p <= 100)) throw new RangeError(`inq: \`partitions\` must be percentages in (0, 100], got ${p}`);
    if (i && !(p > v[i - 1])) throw new RangeError(`inq: \`partitions\` must increase: ${v[i - 1]} is followed by ${p}`);
  });
  if (v[v.length - 1] !== 100) throw new RangeError(`inq: the last of \`partitions\` must be 100 (every weight a power of two), got ${v[v.length - 1]}`);
  return true;
}
const INQ_FIELDS = {
  partitions: ['partitions', checkPartitions, ''],
  epochsPerStep: ['epochs_per_step', (v) => Number.isInteger(v) && v >= 1 && v <= 10000, 'a whole number from 1 to 10000 (epochs of retraining per partition step)'],
  ...TRAIN_FIELDS,
};
// The quantize() options INQ takes (those `bitlens inq` takes): the weights are INQ's power-of-two levels.
const INQ_QUANT = ['wbits', 'abits', 'softmax', 'softmaxBits', 'weights', 'granularity', 'actRange', 'calibSize', 'seed', 'sulqRoundExponent', 'edges8bit'];

// A training run's options split into quantize()'s (`quantKeys`) and the training's (`fields`), checked. `integer`:
// whether the run takes quantize()'s `integer`; `lr`: the run's default learning rate (for the minLr check).
function trainSpec(opts, what, fields, quantKeys, { integer = true, lr = 1e-4 } = {}) {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${what}: the options must be an object`);
  const quant = {};
  const options = {};
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined || (integer && k === 'integer')) continue;
    if (k in fields) {
      const [name, ok, want] = fields[k];
      if (!ok(v)) throw new (typeof v === 'number' || typeof v === 'boolean' ? RangeError : TypeError)(`${what}: \`${k}\` must be ${want}, got ${show(v)}`);
      options[name] = v;
    } else if (quantKeys.includes(k)) {
      quant[k] = v;
    } else {
      throw new TypeError(`${what}: unknown option '${k}' (expected ${[...quantKeys, ...(integer ? ['integer'] : []), ...Object.keys(fields)].join(', ')})`);
    }
  }
  if (options.min_lr !== undefined && options.min_lr > (options.lr ?? lr)) throw new RangeError(`${what}: \`minLr\` (${options.min_lr}) must not exceed \`lr\` (${options.lr ?? lr})`);
  return { quant, options: JSON.stringify(options), integer: !!opts.integer };
}
function qatSpec(opts) {
  const { quant, options, integer } = trainSpec(opts, 'qat', QAT_FIELDS, Object.keys(QUANT_FIELDS));
  checkBudget(JSON.parse(options), quant);
  return { config: quantConfig(quant, 'qat', ['ptq']), options, integer };
}
function inqSpec(opts) {
  const { quant, options, integer } = trainSpec(opts, 'inq', INQ_FIELDS, INQ_QUANT);
  const { wbits, weights = 'pow2' } = quant;
  if (wbits === undefined) throw new TypeError('inq: `wbits` is required (the bit-width of the power-of-two weights, 2–8)');
  if (!(Number.isInteger(wbits) && wbits >= 2 && wbits <= 8)) throw new (typeof wbits === 'number' ? RangeError : TypeError)(`inq: \`wbits\` must be a whole number from 2 to 8, got ${show(wbits)}`);
  if (weights !== 'pow2') throw new TypeError(`inq: the weights are quantized to powers of two (INQ's levels); \`weights: ${JSON.stringify(weights)}\` does not apply`);
  return { config: quantConfig({ ...quant, weights }, 'inq', ['ptq']), options, integer };
}

// Structured pruning: which heads and MLP units go, how they are ranked, and the recovery's training options.
const isFraction = (v) => isNum(v) && v > 0 && v <= 1;
const PRUNE_FIELDS = {
  keepHeads: ['keep_heads', isFraction, "a fraction in (0, 1] of each layer's attention heads"],
  keepMlp: ['keep_mlp', isFraction, "a fraction in (0, 1] of each layer's MLP units"],
  importance: ['importance', (v) => v === 'taylor' || v === 'mask', "'taylor' or 'mask'"],
  importanceImages: ['importance_images', (v) => Number.isInteger(v) && v >= 0, 'a whole number ≥ 0 (0: every training image)'],
  featureWeight: ['feature_weight', (v) => isNum(v) && v >= 0, 'a number ≥ 0 (0: no feature loss)'],
  featureBlocks: ['feature_blocks', (v) => Number.isInteger(v) && v >= -1, 'a whole number ≥ 0, or -1 (the first half of the blocks)'],
  seed: ['seed', (v) => Number.isSafeInteger(v) && v >= 0, 'a whole number ≥ 0'],
  epochs: ['epochs', (v) => Number.isInteger(v) && v >= 0 && v <= 10000, 'a whole number from 0 to 10000 (0: no recovery)'],
  ...TRAIN_FIELDS,
};
// `blocks`: the model's info.blocks. Each block keeps round(fraction × count) of its heads and units, at least one:
// a fraction that leaves a block none is refused here, before any work.
function pruneSpec(opts, blocks) {
  const { options } = trainSpec(opts, 'prune', PRUNE_FIELDS, [], { integer: false, lr: 5e-4 });
  const o = JSON.parse(options);
  if (o.keep_heads === undefined && o.keep_mlp === undefined) throw new TypeError("prune: give `keepHeads` and/or `keepMlp` (the fraction of each layer's attention heads / MLP units kept, in (0, 1])");
  blocks.forEach((b, i) => {
    for (const [k, f, n, what] of [['keepHeads', o.keep_heads, b.heads, 'attention heads'], ['keepMlp', o.keep_mlp, b.mlpDim, 'MLP units']]) {
      if (f !== undefined && Math.floor(f * n + 0.5) === 0) throw new RangeError(`prune: \`${k}\` ${f} keeps none of the ${n} ${what} of layer ${i} (at least one must stay: ${k} ≥ ${0.5 / n})`);
    }
  });
  return { config: '', options, integer: false };
}

/**
 * Checks the options of model.qat(), model.inq() or model.prune() (`kind`: 'qat', 'inq' or 'prune'), or of
 * model.quantize({ method: 'sos', ... }) (`kind`: 'sos'; the quantize options but `calib`), as those calls check them
 * in JavaScript, without a model or WASM: throws the Error the call would (the same limits and messages,
 * e.g. "qat: `epochs` must be a whole number from 1 to 10000, got 0"). `blocks`: the model's `info.blocks`, against
 * which prune's fractions are checked (one that keeps none of a block's heads or units). What it passes, the
 * quantization settings aside (bit-widths, calibration size: checked in C++), the call accepts; bl.checkTraining()
 * checks those too.
 */
export function checkTrainingOptions(kind, options = {}, { blocks = [] } = {}) {
  trainingSpec(kind, options, blocks, 'checkTrainingOptions');
}
// SOS block reconstruction: quantize()'s options with `method: 'sos'` (no `calib`: the run's images).
function sosSpec(opts) {
  if (opts === null || typeof opts !== 'object') throw new TypeError('quantize: the options must be an object');
  const { calib, ...rest } = opts;
  return { config: quantConfig({ ...rest, method: 'sos' }, 'quantize', METHODS), options: '{}' };
}
function trainingSpec(kind, options, blocks, what) {
  const spec = { qat: qatSpec, inq: inqSpec, prune: (o) => pruneSpec(o, blocks), sos: sosSpec }[kind];
  if (!spec) throw new TypeError(`${what}: \`kind\` must be 'qat', 'inq', 'prune' or 'sos', got ${show(kind)}`);
  return spec(options);
}

// A worst class as EvalResult gives it: { index, label, accuracy } (null without one).
const worstOf = (index, accuracy, labels) => (index >= 0 ? { index, label: labels[index], accuracy } : null);
function epochStats(e, labels) {
  return { epoch: e.epoch, steps: e.steps, trainLoss: e.train_loss, valTop1: e.val_top1,
    valWorstClass: worstOf(e.val_worst_class, e.val_worst, labels), lr: e.lr, seconds: e.seconds };
}
// QBitOpt: a C++ allocation (allocation_json) → the JS shape.
function allocation(a) {
  return { step: a.step, layerBits: a.layer_bits, pointBits: a.point_bits, avgWbits: a.avg_wbits, avgAbits: a.avg_abits,
    weightCost: a.weight_cost, weightBudget: a.weight_budget, actCost: a.act_cost, actBudget: a.act_budget, changed: a.changed };
}
function qatProgress(p, labels) {
  const out = { epoch: p.epoch, epochs: p.epochs, step: p.step, steps: p.steps, loss: p.loss, seconds: p.seconds };
  if (p.finished) out.epochStats = epochStats(p.finished, labels);
  if (p.allocated) out.allocated = allocation(p.allocated);
  return out;
}
// INQ: a C++ partition step (inq_history_json) / progress → the JS shape.
function inqStep(s, labels) {
  return { step: s.step, partition: s.partition, frozen: s.frozen, frozenTop1: s.frozen_top1, frozenWorst: s.frozen_worst,
    valTop1: s.val_top1, valWorstClass: worstOf(s.val_worst_class, s.val_worst, labels), steps: s.steps, trainLoss: s.train_loss, seconds: s.seconds };
}
function inqProgress(p, labels) {
  const out = { step: p.step, steps: p.steps, iteration: p.iteration, iterations: p.iterations, loss: p.loss, seconds: p.seconds };
  if (p.finished) out.stepStats = inqStep(p.finished, labels);
  return out;
}

// Reads F32 safetensors bytes into { tensors: { name → Float32Array }, shapes: { name → dims } } in file order.
function readF32Safetensors(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hl)));
  const tensors = {};
  const shapes = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = t.data_offsets;
    tensors[name] = new Float32Array(bytes.slice(8 + hl + b, 8 + hl + e).buffer);
    shapes[name] = t.shape;
  }
  return { tensors, shapes };
}

// What Model and QuantizedModel share (`m`: either; `labels`: its class names), arguments checked here.
function evaluateOn(m, data, limit) {
  m._alive();
  if (!(data instanceof Dataset)) throw new TypeError('evaluate: expected a Dataset from loadDataset()');
  const n = checkLimit(limit, 'evaluate');
  data._alive();
  return evalResult(JSON.parse(m._h.evaluate(data._h, n)));
}
function imageName(name, what) {
  if (typeof name !== 'string') throw new TypeError(`${what}: \`name\` must be a string (the file name, for messages and the format), got ${typeName(name)}`);
  return name;
}
function classifyOn(m, image, k, name, labels) {
  m._alive();
  const bytes = toBytes(image, 'classify');
  checkWhole(k, 'classify', 'topK', 1, Infinity);
  return topK(JSON.parse(m._h.classify(bytes, imageName(name, 'classify'))), labels, k);
}
function attentionOn(m, image, block, name, full = false) {
  m._alive();
  const what = full ? 'attentionProbs' : 'attention';
  const bytes = toBytes(image, what);
  const depth = m.info.blocks.length;
  checkWhole(block, what, 'block', -depth, depth - 1, ' (negative: from the last block)');
  return m._h.attention(bytes, imageName(name, what), block, full);
}
function forwardRawOn(m, input) {
  m._alive();
  return m._h.forwardRaw(toFloats(input, 'forwardRaw'));
}

export class QuantizedModel {
  /** @internal */ constructor(handle, labels) { this._h = handle; this.info = JSON.parse(handle.info()); this.labels = labels; }
  evaluate(data, { limit = 0 } = {}) { return evaluateOn(this, data, limit); }
  /** Classifies one encoded image with the quantized model. */
  classify(image, { topK: k = 5, name = 'image' } = {}) { return classifyOn(this, image, k, name, this.labels); }
  /** Logits for one preprocessed input (Float32Array, channels × height × width, normalised). */
  forwardRaw(input) { return forwardRawOn(this, input); }
  /** The quantized model as safetensors bytes (packed int4/int8 codes, scales, recipe in __metadata__); loadModel reads it back with the original config.json. */
  exportSafetensors() { this._alive(); return this._h.exportSafetensors(); }
  /** As Model.attention, with the quantized model (post-softmax values after quantization). */
  attention(image, { block = -1, name = 'image' } = {}) { return attentionOn(this, image, block, name); }
  /** As Model.attentionProbs, with the quantized model (post-softmax values after quantization). */
  attentionProbs(image, { block = -1, name = 'image' } = {}) { return attentionOn(this, image, block, name, true); }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('QuantizedModel: used after delete()'); }
}

// What QatModel and InqModel share: the images trained on and held out, FP32 on the held-out ones, and (with
// `keepPtq`) the PTQ starting point, which delete() frees too.
class TrainedModel extends QuantizedModel {
  /** @internal */ constructor(handle, labels, summary, ptq) {
    super(handle, labels);
    this.trainImages = summary.train_images;
    this.valImages = summary.val_images;
    this.validationFp32 = summary.validation_fp32 ? evalResult(summary.validation_fp32) : null;
    this.ptq = ptq;
  }
  delete() {
    if (this.ptq) { this.ptq.delete(); this.ptq = null; }
    super.delete();
  }
}

/**
 * What model.qat() returns: the best epoch's QuantizedModel, with the run's learning curve. `ptq` (with
 * `keepPtq`) is the PTQ starting point (epoch 0); delete() frees it too. With a `budget` (QBitOpt), every
 * allocation of the run (`allocations`, the start's first) and the index of the kept model's (`keptAllocation`).
 */
export class QatModel extends TrainedModel {
  /** @internal */ constructor(handle, labels, summary, ptq) {
    super(handle, labels, summary, ptq);
    this.history = summary.history.map((e) => epochStats(e, labels));
    this.bestEpoch = summary.best_epoch;
    this.avgWbits = summary.avg_wbits;
    this.avgAbits = summary.avg_abits;
    const b = summary.budget;
    this.budget = b ? { weights: b.weights, activations: b.activations, objective: b.objective, candidates: b.candidates,
      fisherBatches: b.fisher_batches, sensitivityDecay: b.sensitivity_decay } : null;
    this.allocations = (summary.allocations || []).map(allocation);
    this.keptAllocation = b ? summary.kept_allocation : null;
  }
}

/**
 * What model.inq() returns: every weight a power of two (after the last partition step), with the run's
 * partition steps (`history`: step 0 = PTQ, every weight at its level at once). `ptq` (with `keepPtq`) is that
 * PTQ model; delete() frees it too.
 */
export class InqModel extends TrainedModel {
  /** @internal */ constructor(handle, labels, summary, ptq) {
    super(handle, labels, summary, ptq);
    this.history = summary.history.map((s) => inqStep(s, labels));
    this.partitions = this.history.slice(1).map((s) => s.partition);
  }
}

// How qat(), inq() and prune() step their C++ runs (QatRun / InqRun / PruneRun): the run made from the model's
// handle, the run option that keeps the starting point (`keep`) and that start as a JS object, the progress, the result.
const TRAIN_RUNS = {
  qat: { make: (mh, config, options, train) => mh.qat(config, options, train), keep: 'keepPtq',
    start: (h, integer, labels) => new QuantizedModel(h.best(integer), labels), progress: qatProgress,
    model: (h, integer, ...rest) => new QatModel(h.best(integer), ...rest) },
  inq: { make: (mh, config, options, train) => mh.inq(config, options, train), keep: 'keepPtq',
    start: (h, integer, labels) => new QuantizedModel(h.ptq(integer), labels), progress: inqProgress,
    model: (h, integer, ...rest) => new InqModel(h.result(integer), ...rest) },
  prune: { make: (mh, config, options, train) => mh.prune(options, train), keep: 'keepPruned',
    start: (h) => new Model(h.pruned()), progress: qatProgress,
    model: (h, integer, labels, summary, start) => new PrunedModel(h.result(), summary, start) },
};

// SOS: the C++ stage / block JSON → the JS shape.
function sosStage(st) {
  const out = { stage: st.stage, seconds: st.seconds };
  if (st.eval) Object.assign(out, evalResult(st.eval));
  if (st.max_logit_change !== undefined) out.maxLogitChange = st.max_logit_change;
  return out;
}
const sosBlock = (b) => ({ stage: b.stage, block: b.block, mseBefore: b.mse_before, mseAfter: b.mse_after, seconds: b.seconds });
// A step's progress (after a block's last iteration: that block, with its result).
function sosProgress(p) {
  const out = { stage: p.stage, block: p.block, blocks: p.blocks, iter: p.iter, iters: p.iters, done: p.done, total: p.total, loss: p.loss, seconds: p.seconds };
  if (p.blocks_done.length) out.blockResults = p.blocks_done.map(sosBlock);
  if (p.stages_done.length) out.stageResults = p.stages_done.map(sosStage);
  return out;
}

/**
 * What model.quantize({ method: 'sos' }) resolves to: the reconstructed model, with what each stage gave
 * (`stages`; with an evaluation set, each evaluated, stage 0 = PTQ with the same calibration draw) and each
 * block's reconstruction error (`blocks`).
 */
export class SosModel extends QuantizedModel {
  /** @internal */ constructor(handle, labels, summary) {
    super(handle, labels);
    this.stages = summary.stages.map(sosStage);
    this.blocks = summary.blocks.map(sosBlock);
  }
}

export class Model {
  /** @internal */ constructor(handle) { this._h = handle; this.info = JSON.parse(handle.info()); }
  get labels() { return this.info.labels; }
  /** Top-1, per-class accuracy, confusion matrix and worst class on a dataset. */
  evaluate(data, { limit = 0 } = {}) { return evaluateOn(this, data, limit); }
  /**
   * Post-training quantization calibrated on `calib` (a Dataset): returns a QuantizedModel.
   * Options: wbits, abits (2–8), softmax ('sulq' | 'log2' | 'uniform'), softmaxBits, weights
   * ('uniform' | 'pow2'), granularity ('channel' | 'tensor'), weightRange / actRange ('mse' |
   * 'minmax' | 'percentile'), reparam, edges8bit, calibSize (default 32), seed, integer (int8 path).
   *
   * `method: 'sos'` (I&S-ViT's three-stage block reconstruction; `reconIters` Adam iterations per block
   * and stage, default 100, on batches of `reconBatch` calibration images, default 16) returns a Promise of
   * a SosModel instead, one iteration per event-loop turn: the second argument takes `onProgress`, `signal`
   * (an AbortSignal: rejects with an AbortError, nothing left allocated), `evaluate` (a Dataset each stage
   * is evaluated on) and `step` (iterations per turn, default 1). Same bits as `bitlens quantize --method sos`.
   */
  quantize(opts = {}, run = undefined) {
    this._alive();
    if (opts === null || typeof opts !== 'object') throw new TypeError('quantize: the options must be an object');
    if (opts.method === 'sos') return this._sos(opts, run || {});
    const { calib, integer = false } = opts;
    if (!(calib instanceof Dataset)) throw new TypeError('quantize: `calib` must be a Dataset from loadDataset()');
    const config = quantConfig(opts, 'quantize', METHODS);
    if (run !== undefined) throw new TypeError("quantize: the second argument ({ onProgress, signal, evaluate }) applies to method 'sos'; PTQ returns at once");
    calib._alive();
    return new QuantizedModel(this._h.quantize(config, calib._h, !!integer), this.info.labels);
  }
  /** @internal model.quantize({ method: 'sos', ... }): one step per event-loop turn. */
  async _sos(opts, { onProgress, signal, evaluate, step = 1, ...rest }) {
    const unknown = Object.keys(rest);
    if (unknown.length) throw new TypeError(`quantize: unknown run option '${unknown[0]}' (expected onProgress, signal, evaluate, step)`);
    const { calib, integer = false } = opts;
    if (!(calib instanceof Dataset)) throw new TypeError('quantize: `calib` must be a Dataset from loadDataset()');
    if (evaluate !== undefined && evaluate !== null && !(evaluate instanceof Dataset)) throw new TypeError('quantize: `evaluate` must be a Dataset from loadDataset() (the images each stage is evaluated on)');
    if (!(Number.isInteger(step) && step >= 1)) throw new RangeError(`quantize: \`step\` must be a whole number ≥ 1 (iterations per event-loop turn), got ${show(step)}`);
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError('quantize: `onProgress` must be a function');
    const config = quantConfig(opts, 'quantize', METHODS);
    calib._alive();
    if (evaluate) evaluate._alive();
    if (signal && signal.aborted) throw abortError(signal, 'quantize');
    const labels = this.info.labels;
    const h = this._h.sos(config, calib._h, evaluate ? evaluate._h : null);
    try {
      // The first call does no iteration: it reports stage 0 (PTQ) when there is an evaluation set.
      let p = JSON.parse(h.run(0));
      if (onProgress) onProgress(sosProgress(p));
      while (!h.done()) {
        await new Promise((r) => setTimeout(r, 0));
        if (signal && signal.aborted) throw abortError(signal, 'quantize');
        p = JSON.parse(h.run(step));
        if (onProgress) onProgress(sosProgress(p));
      }
      return new SosModel(h.result(!!integer), labels, JSON.parse(h.summary()));
    } finally {
      h.delete();
    }
  }
  /**
   * Gradients of the mean cross-entropy over the first `limit` images of `data` (0: all) w.r.t. every
   * parameter: { loss, images, tensors: { name → Float32Array }, shapes: { name → dims }, safetensors }, in
   * the checkpoint's own names and shapes; `safetensors` holds the same bytes as `bitlens grad --out`.
   */
  gradients(data, { limit = 0 } = {}) {
    this._alive();
    if (!(data instanceof Dataset)) throw new TypeError('gradients: expected a Dataset from loadDataset()');
    const n = checkLimit(limit, 'gradients');
    data._alive();
    const r = this._h.gradients(data._h, n);
    return { loss: r.loss, images: r.images, ...readF32Safetensors(r.safetensors), safetensors: r.safetensors };
  }
  /**
   * Quantization-aware training: quantizes like quantize() (calibration drawn from `train`), then trains
   * the weights and the quantizers' steps on `train` minus a held-out `valSplit`, distilled from this FP32
   * model, and returns the best epoch (by validation top-1) as a QatModel. One step per event-loop turn:
   * `onProgress({ epoch, epochs, step, steps, loss, seconds, epochStats?, allocated? })` after the PTQ start (epoch 0)
   * and each step; `signal` (an AbortSignal) stops it. Same results as `bitlens qat` with the same options.
   * With `budget` (QBitOpt), every layer's bits (and with `abudget` every activation point's) are allocated at the
   * start and again every `reallocEvery` steps before the last epoch, under the budget; `allocated` reports each.
   */
  qat(train, opts = {}, run = {}) { return this._train('qat', train, () => qatSpec(opts), run); }
  /**
   * INQ (incremental network quantization): the weights become powers of two (`wbits`, 2–8) in growing
   * partitions — at each of `partitions` (cumulative percentages, ending at 100) that share of each layer's
   * largest weights is frozen at its level and the rest retrain `epochsPerStep` epochs on `train` minus a
   * held-out `valSplit` (distilled from this FP32 model; the training options as qat's) — while the activations
   * are quantized as PTQ fits them and learn their steps. Returns an InqModel. One step per event-loop turn:
   * `onProgress({ step, steps, iteration, iterations, loss, seconds, stepStats? })` after the PTQ start (step 0)
   * and each training step; `signal` (an AbortSignal) stops it. Same results as `bitlens inq` with the same options.
   */
  inq(train, opts = {}, run = {}) { return this._train('inq', train, () => inqSpec(opts), run); }
  /**
   * Structured pruning (Youn et al. 2023): ranks every attention head and MLP hidden unit of each block by its
   * importance on `importanceImages` training images (`importance`: 'taylor', the first-order effect of masking it,
   * one forward and backward per image; or 'mask', the loss increase when it is really removed, one forward per image,
   * head and unit), keeps the most important `keepHeads` / `keepMlp` of each block (round(fraction × count), at least
   * one) and removes the rest for real — smaller matrices, faster forwards — then recovers for `epochs` epochs on
   * `train` minus a held-out `valSplit`, keeping the best epoch. Without `distill` (the default, as `bitlens prune`)
   * the recovery is fine-tuning on the labels; with it, ½·KL to this model's logits + ½·cross-entropy
   * (`distillWeight`, `temperature`) + `featureWeight` × the MSE between the first `featureBlocks` blocks' outputs and
   * this model's. Returns a PrunedModel: an FP32 Model (evaluate, quantize, qat, … all work on it) with the run's
   * record. One step per event-loop turn: `onProgress({ epoch, epochs, step, steps, loss, seconds, epochStats? })`
   * after the pruned start (epoch 0) and each step; `signal` (an AbortSignal) stops it. Same numbers as
   * `bitlens prune` with the same options.
   */
  prune(train, opts = {}, run = {}) { return this._train('prune', train, () => pruneSpec(opts, this.info.blocks), run); }
  /**
   * This FP32 model as a model directory's files: { safetensors (F32, the checkpoint's own naming), config
   * (config.json text; a pruned model's records `pruned_heads` and `bitlens_mlp_dims`), preprocessor } — '' for a
   * file the model was loaded without. loadModel() and `bitlens --model DIR` read them back to the same model.
   */
  exportFiles() { this._alive(); return this._h.exportFp32(); }
  /** The FP32 weights as safetensors (exportFiles().safetensors). */
  exportSafetensors() { return this.exportFiles().safetensors; }
  /** config.json's text for the exported weights (exportFiles().config): a pruned model's says what was pruned. */
  exportConfig() { return this.exportFiles().config; }
  /** @internal qat(), inq() and prune(): the C++ run made, then stepped one training step per event-loop turn. */
  async _train(what, train, spec, run = {}) {
    const { onProgress, signal } = run;
    this._alive();
    if (!(train instanceof Dataset)) throw new TypeError(`${what}: the training images must be a Dataset from loadDataset()`);
    train._alive();
    const { config, options, integer } = spec();
    if (signal && signal.aborted) throw abortError(signal, what);
    const labels = this.info.labels;
    const kind = TRAIN_RUNS[what];
    const h = kind.make(this._h, config, options, train._h);
    let start = null;
    try {
      if (run[kind.keep]) start = kind.start(h, integer, labels);
      if (onProgress) onProgress(kind.progress(JSON.parse(h.start()), labels));
      while (!h.done()) {
        await new Promise((r) => setTimeout(r, 0));
        if (signal && signal.aborted) throw abortError(signal, what);
        const p = JSON.parse(h.run(1));
        if (onProgress) onProgress(kind.progress(p, labels));
      }
      const q = kind.model(h, integer, labels, JSON.parse(h.summary()), start);
      start = null;
      return q;
    } finally {
      h.delete();
      if (start) start.delete();
    }
  }
  /** Logits for one preprocessed input (Float32Array, channels × height × width, normalised). */
  forwardRaw(input) { return forwardRawOn(this, input); }
  /** One encoded image as the model sees it (decoded, resized/cropped, normalised): Float32Array, channels × height × width. */
  preprocess(image, { name = 'image' } = {}) {
    this._alive();
    return this._h.preprocess(toBytes(image, 'preprocess'), imageName(name, 'preprocess'));
  }
  /** The FP32 weight of a layer (names in `info.layers`), as a Float32Array [out × in]. */
  weight(name) { this._alive(); return this._h.weight(String(name)); }
  /** Classifies one encoded image (PNG, JPEG, BMP, GIF): the top-k labels with probabilities. */
  classify(image, { topK: k = 5, name = 'image' } = {}) { return classifyOn(this, image, k, name, this.info.labels); }
  /** The class token's attention to each patch at `block` (negative: from the end), mean over heads: grid rows × cols. */
  attention(image, { block = -1, name = 'image' } = {}) { return attentionOn(this, image, block, name); }
  /**
   * Every head's post-softmax attention at `block` (negative: from the end): `{ values, heads, tokens }`, values a
   * Float32Array [heads × tokens × tokens] (row i: token i's attention to every token; the class token first).
   */
  attentionProbs(image, { block = -1, name = 'image' } = {}) { return attentionOn(this, image, block, name, true); }
  delete() { if (this._h) { this._h.delete(); this._h = null; } }
  _alive() { if (!this._h) throw new Error('Model: used after delete()'); }
}

/**
 * What model.prune() returns: the pruned FP32 model (the best epoch of the recovery; with `epochs: 0` the pruned model
 * itself), a full Model, with the run's record. `beforeRecovery` (with `keepPruned`) is the pruned model before any
 * recovery (epoch 0); delete() frees it too.
 */
export class PrunedModel extends Model {
  /** @internal */ constructor(handle, summary, beforeRecovery = null) {
    super(handle);
    const labels = this.info.labels;
    this.history = summary.history.map((e) => epochStats(e, labels));
    this.bestEpoch = summary.best_epoch;
    const imp = summary.importance;
    this.importance = { method: imp.method, images: imp.images, heads: imp.heads, units: imp.units };
    this.keptHeads = summary.kept_heads;
    this.keptUnits = summary.kept_units;
    this.layers = summary.layers.map((l) => ({ heads: l.heads, prunedHeads: l.pruned_heads, mlpDim: l.mlp_dim, parameters: l.parameters }));
    this.parametersBefore = summary.parameters_before;
    this.parameters = summary.parameters;
    this.trainImages = summary.train_images;
    this.valImages = summary.val_images;
    this.validationFp32 = summary.validation_fp32 ? evalResult(summary.validation_fp32) : null;
    this.beforeRecovery = beforeRecovery;
  }
  delete() {
    if (this.beforeRecovery) { this.beforeRecovery.delete(); this.beforeRecovery = null; }
    super.delete();
  }
}

const SWEEP_FIELDS = ['seeds', 'firstSeed', 'calibSize', 'calibClasses', 'calibSkew', 'calibCorrupt', 'evalCorrupt', 'groups', 'limit'];
const corruptionText = (c) => (c && typeof c === 'object' ? `${c.type}:${c.severity}` : c);

// The C++ sweep JSON → the documented camelCase shape (the raw JSON stays available as `raw`).
function sweepResult(r) {
  return {
    labels: r.labels,
    classCount: r.class_count,
    evalN: r.eval_n,
    seeds: r.seeds,
    fp32: { top1: r.fp32.top1, perClass: r.fp32.per_class, worstClass: r.fp32.worst_class, confusion: r.fp32.confusion, groups: r.fp32.groups },
    fp32CleanTop1: r.fp32_clean_top1,
    calibration: r.calibration,
    configs: r.configs.map((c) => ({
      name: c.name,
      config: c.config,
      modelBytes: c.model_bytes,
      top1Mean: c.top1.mean, top1Std: c.top1.std, top1Min: c.top1.min, top1Max: c.top1.max, top1Drop: c.top1.drop,
      perClassMean: c.per_class.map((p) => p.mean),
      perClassMin: c.per_class.map((p) => p.min),
      perClassMax: c.per_class.map((p) => p.max),
      worstClass: { index: c.worst_class.index, label: c.worst_class.label, accuracy: c.worst_class.mean, drop: c.worst_class.drop },
      worstCase: { index: c.worst_case.index, label: c.worst_case.label, accuracy: c.worst_case.accuracy, drop: c.worst_case.drop, seed: c.worst_case.seed },
      largestDrop: { index: c.largest_drop.index, label: c.largest_drop.label, drop: c.largest_drop.drop },
      largestSeedDrop: { index: c.largest_seed_drop.index, label: c.largest_seed_drop.label, drop: c.largest_seed_drop.drop, seed: c.largest_seed_drop.seed },
      groups: c.groups,
      seeds: c.runs.map((run) => ({ seed: run.seed, top1: run.top1, perClass: run.per_class, confusion: run.confusion })),
    })),
    raw: r,
  };
}

// A sweep's `shard`: { index, count } (part index of count, numbered from 1 as `bitlens sweep --shard I/N`) or 'I/N'.
// The C++ side checks the range and names a part that does not exist.
function shardText(s) {
  if (typeof s === 'string') return s;
  if (s && typeof s === 'object' && Number.isInteger(s.index) && Number.isInteger(s.count)) return `${s.index}/${s.count}`;
  throw new TypeError(`sweep: \`shard\` must be { index, count } with whole numbers (part index of count, 1 ≤ index ≤ count) or 'I/N', found ${show(s)}`);
}

// A sweep's spec (sweep()'s, checkSweep()'s) checked here → its objects and the C++ spec.
function sweepSpec(spec) {
  const { model, data, calib, configs, shard, ...rest } = spec || {};
  if (!(model instanceof Model)) throw new TypeError('sweep: `model` must be a Model from loadModel()');
  if (!(data instanceof Dataset) || !(calib instanceof Dataset)) throw new TypeError('sweep: `data` and `calib` must be Datasets from loadDataset()');
  if (!Array.isArray(configs) || configs.length === 0) throw new TypeError('sweep: `configs` must be a non-empty array');
  model._alive(); data._alive(); calib._alive();
  const cpp = { configs: configs.map((c, i) => {
    if (typeof c === 'string') return c;
    if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new TypeError(`sweep: \`configs[${i}]\` must be a string like 'w4a4' or an options object (quantize()'s), got ${typeName(c)}`);
    return JSON.parse(quantConfig(c, 'sweep', METHODS, rest.calibSize ?? 32));
  }) };
  for (const [k, v] of Object.entries(rest)) {
    if (!SWEEP_FIELDS.includes(k)) throw new TypeError(`sweep: unknown option '${k}' (expected model, data, calib, configs, shard, ${SWEEP_FIELDS.join(', ')})`);
    if (v !== undefined && v !== null) cpp[k] = k.endsWith('Corrupt') ? corruptionText(v) : v;
  }
  return { model, data, calib, shard, cpp };
}

const abortError = (signal, what) => signal.reason || Object.assign(new Error(`${what} cancelled`), { name: 'AbortError' });

// Runs a stepped C++ job (total/run/finish) one step at a time, yielding to the event loop between
// steps so that `signal` can stop it; deletes the handle whatever happens. Returns finish()'s JSON.
async function runSteps(h, what, onProgress, signal) {
  try {
    const total = h.total();
    if (onProgress) onProgress({ done: 0, total });
    for (let i = 0; i < total; i++) {
      await new Promise((r) => setTimeout(r, 0));
      if (signal && signal.aborted) throw abortError(signal, what);
      h.run(i);
      if (onProgress) onProgress({ done: i + 1, total });
    }
    return h.finish();
  } finally {
    h.delete();
  }
}

// Where bitlens-core.wasm is, and how to say so when it is not there.
const WASM_FILE = 'bitlens-core.wasm';
const WASM_HELP = `Serve ${WASM_FILE} (in the package: web/lib/${WASM_FILE}, exported as 'bitlens/${WASM_FILE}'; in browsers also bitlens-relaxed.wasm beside it) at that URL, `
  + `or say where it is: createBitLens({ wasmPaths: '/assets/' }) (a folder URL ending in '/', or { '${WASM_FILE}': url }), `
  + 'or pass its bytes: createBitLens({ wasmBinary })';
// The URL beside this file, written so that Vite, webpack and Parcel see it and emit the .wasm. Undefined where
// import.meta.url is not (esbuild's default iife output): then the page's own folder, as Emscripten does.
// `file`: WASM_FILE, or SCALAR_FILE (the same module without SIMD; each URL written out for the bundlers).
function defaultWasmUrl(file = WASM_FILE) {
  try {
    if (file === SCALAR_FILE) return new URL('./lib/bitlens-core-scalar.wasm', import.meta.url).href;
    return new URL('./lib/bitlens-core.wasm', import.meta.url).href;
  } catch {
    const base = typeof document === 'object' && document.baseURI ? document.baseURI
      : typeof self === 'object' && self.location ? self.location.href : undefined;
    return base ? new URL(file, base).href : file;
  }
}
function wasmUrl(wasmPaths, file = WASM_FILE) {
  if (wasmPaths === undefined || wasmPaths === null) return defaultWasmUrl(file);
  if (typeof wasmPaths === 'string') return wasmPaths + file;
  if (typeof wasmPaths === 'object' && typeof wasmPaths[file] === 'string') return wasmPaths[file];
  throw new TypeError(`createBitLens: \`wasmPaths\` must be a folder URL ending in '/' or { '${file}': url }, got ${show(wasmPaths)}`);
}
function checkWasm(bytes, url, contentType) {
  if (bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d) return bytes;
  const head = new TextDecoder().decode(bytes.subarray(0, 40)).replace(/\s+/g, ' ');
  throw new Error(`BitLens: ${url} is not a WebAssembly module (${contentType ? `${contentType}, ` : ''}it starts with ${JSON.stringify(head)}). ${WASM_HELP}`);
}
// The .wasm's bytes: read from disk under Node (process.getBuiltinModule, Node ≥ 20.16: no `node:` import for
// bundlers to trip on), fetched elsewhere; any failure is an Error naming the URL and the options to set.
async function loadWasm(wasmPaths, file = WASM_FILE) {
  const url = wasmUrl(wasmPaths, file);
  if (isNode) {
    const fs = typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('fs') : null;
    if (!fs) throw new Error(`BitLens: this Node has no process.getBuiltinModule (Node ≥ 20.16) to read ${url}; pass createBitLens({ wasmBinary: fs.readFileSync(…/${WASM_FILE}) })`);
    const file = /^file:/.test(url) ? new URL(url) : url;
    try {
      return checkWasm(new Uint8Array(fs.readFileSync(file)), url);
    } catch (e) {
      if (e.code) throw new Error(`BitLens: could not read the WebAssembly module ${url} (${e.code}). ${WASM_HELP}`, { cause: e });
      throw e;
    }
  }
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`BitLens: could not fetch the WebAssembly module from ${url} (${e.message}). ${WASM_HELP}`, { cause: e });
  }
  if (!res.ok) throw new Error(`BitLens: fetching the WebAssembly module from ${url} failed with HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}. ${WASM_HELP}`);
  return checkWasm(new Uint8Array(await res.arrayBuffer()), url, res.headers.get('content-type'));
}

// The relaxed-SIMD kernels (bitlens-relaxed.wasm, built by clang-19: Emscripten 3.1.6 cannot emit relaxed
// opcodes) are a module of their own that imports the main module's memory; the main module imports their two
// GEMMs. Loaded only where the engine validates relaxed SIMD and not under Node (Node 20's relaxed dot gives
// wrong results); elsewhere the imports keep their stand-ins and C++ runs the SIMD128 kernels.
const RELAXED_FILE = 'bitlens-relaxed.wasm';
// Engines without SIMD128 get bitlens-core-scalar.wasm instead: the same sources without -msimd128 (the kernels
// through SIMDe's portable code), the same imports and exports, driven by the same glue.
const SCALAR_FILE = 'bitlens-core-scalar.wasm';
const RELAXED_EXPORTS = ['bl_qs8_gemm_2x4c16_wasmrelaxed', 'bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed'];
const BACKENDS = ['relaxed-simd', 'simd128', 'scalar'];
// () → v128: i32x4.relaxed_dot_i8x16_i7x16_add_s of three zero vectors (0xfd 0x113). Valid only with relaxed SIMD.
function relaxedProbe() {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0, ...zero, ...zero, ...zero, 0xfd, 0x93, 0x02, 0x0b];
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0,
    10, body.length + 2, 1, body.length, ...body]);
}
// () → v128: i32x4.add of two zero vectors. Valid with SIMD128.
function simdProbe() {
  const zero = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0, ...zero, ...zero, 0xfd, 0xae, 0x01, 0x0b];
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0,
    10, body.length + 2, 1, body.length, ...body]);
}
export function simdSupported() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(simdProbe());
  } catch {
    return false;
  }
}
export function relaxedSimdSupported() {
  if (isNode) return false;
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(relaxedProbe());
  } catch {
    return false;
  }
}
function relaxedUrl(wasmPaths) {
  if (typeof wasmPaths === 'string') return wasmPaths + RELAXED_FILE;
  if (wasmPaths && typeof wasmPaths === 'object') return wasmPaths[RELAXED_FILE];
  try {
    return new URL('./lib/bitlens-relaxed.wasm', import.meta.url).href;
  } catch {
    const base = typeof document === 'object' && document.baseURI ? document.baseURI
      : typeof self === 'object' && self.location ? self.location.href : undefined;
    return base ? new URL(RELAXED_FILE, base).href : RELAXED_FILE;
  }
}
// The relaxed module's bytes, or null (with `required`: an Error) when they cannot be had.
async function loadRelaxed(wasmPaths, relaxedBinary, required) {
  if (relaxedBinary) return toBytes(relaxedBinary, 'createBitLens: relaxedBinary');
  const url = relaxedUrl(wasmPaths);
  try {
    if (!url) throw new Error(`no URL for ${RELAXED_FILE} in wasmPaths`);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return checkWasm(new Uint8Array(await res.arrayBuffer()), url, res.headers.get('content-type'));
  } catch (e) {
    if (required) throw new Error(`BitLens: backend 'relaxed-simd' needs ${RELAXED_FILE} (${url}): ${e.message}`, { cause: e });
    return null;
  }
}

// The module's classes and functions, each call followed by the check below.
const CLASSES = ['Dataset', 'Model', 'SweepRun', 'SensitivityRun', 'QatRun', 'InqRun', 'PruneRun', 'SosRun', 'QuantizedModel'];
const FUNCTIONS = ['_quantizeTensor', '_planMixed', '_mergeSweeps', '_loadModel', '_loadIdx', '_loadEncoded',
  '_imageExtensions', '_sizeLimits', '_classIndices', '_checkSweep', '_checkTraining', '_imageInfo', '_sweepCsv', '_datasetHead',
  '_datasetImage', '_datasetShape'];
// A failed call into C++ returns an empty value and leaves its message behind (throwing a JS exception through
// the C++ frames would leak what they hold, once per rejected input): every call is followed by _takeError(),
// and a message becomes the Error thrown here. Wraps the module's own prototypes and functions, once.
function checked(M) {
  const check = (r) => {
    const err = M._takeError();
    if (err === null) return r;
    if (r && typeof r.delete === 'function') r.delete();
    throw new Error(err);
  };
  for (const cls of CLASSES) {
    const proto = M[cls].prototype;
    for (const k of Object.getOwnPropertyNames(proto)) {
      const f = proto[k];
      if (k === 'constructor' || typeof f !== 'function') continue;
      proto[k] = function (...args) { return check(f.apply(this, args)); };
    }
  }
  for (const k of FUNCTIONS) {
    const f = M[k];
    M[k] = (...args) => check(f(...args));
  }
  return M;
}

/**
 * Creates a BitLens instance. The .wasm is found by itself: beside this file (`new URL(..., import.meta.url)`,
 * which Vite and webpack follow and emit), or where `wasmPaths` says (a folder URL ending in '/', or
 * { 'bitlens-core.wasm': url }); `wasmBinary` gives its bytes instead. Node reads the file from disk.
 * Nothing process-wide is installed (no uncaughtException / unhandledRejection handlers).
 */
export async function createBitLens(options = {}) {
  const { wasmPaths, backend, relaxedBinary, ...opts } = options;
  if (backend !== undefined && !BACKENDS.includes(backend)) throw new TypeError(`createBitLens: \`backend\` must be ${BACKENDS.map((b) => `'${b}'`).join(', ')} (or left out: the fastest available), got ${show(backend)}`);
  if (backend === 'simd128' && !simdSupported()) throw new Error("BitLens: backend 'simd128': this engine does not validate WebAssembly SIMD; use 'scalar'");
  // No SIMD128 (or asked for): the scalar module, unless the caller hands over the bytes or the instantiation.
  const scalar = backend === 'scalar' || (backend === undefined && !simdSupported());
  if (backend === 'relaxed-simd' && !relaxedSimdSupported()) {
    throw new Error(isNode ? "BitLens: backend 'relaxed-simd' is not offered under Node (its relaxed SIMD gives wrong dot products); use 'simd128'"
      : "BitLens: backend 'relaxed-simd': this engine does not validate relaxed SIMD (WebAssembly.validate)");
  }
  if (backend === 'relaxed-simd' && (opts.instantiateWasm || (opts.locateFile && !opts.wasmBinary))) throw new TypeError("createBitLens: backend 'relaxed-simd' needs the module's bytes (wasmBinary or wasmPaths), not your own instantiateWasm or locateFile");
  const tryRelaxed = !scalar && backend !== 'simd128' && !opts.instantiateWasm && !(opts.locateFile && !opts.wasmBinary) && relaxedSimdSupported();
  const [coreBytes, relaxedBytes] = await Promise.all([
    !opts.wasmBinary && !opts.locateFile && !opts.instantiateWasm ? loadWasm(wasmPaths, scalar ? SCALAR_FILE : WASM_FILE) : opts.wasmBinary,
    tryRelaxed ? loadRelaxed(wasmPaths, relaxedBinary, backend === 'relaxed-simd') : null,
  ]);
  if (coreBytes) opts.wasmBinary = coreBytes;
  // The glue never fetches with wasmBinary set; a locateFile keeps it from evaluating its own
  // new URL('bitlens-core.wasm', import.meta.url), which throws where import.meta.url is empty (esbuild's iife).
  if (opts.wasmBinary && !opts.locateFile) opts.locateFile = (file) => file;
  let failed = null, kern = null;
  if (relaxedBytes) {
    try {
      kern = await WebAssembly.compile(relaxedBytes);
    } catch (e) {
      if (backend === 'relaxed-simd') throw new Error(`BitLens: backend 'relaxed-simd': ${RELAXED_FILE} does not compile (${e.message})`, { cause: e });
    }
  }
  if (kern) {
    // The glue made the memory (it is imported: -sIMPORTED_MEMORY) and hands it over in imports.env; the kernel
    // module imports the same one, so it sees the heap as it grows, and its exports become the main module's
    // imports: a direct wasm-to-wasm call.
    let fail;
    failed = new Promise((resolve, reject) => { fail = reject; });
    opts.instantiateWasm = (imports, receive) => {
      WebAssembly.instantiate(kern, { env: { memory: imports.env.memory } }).then((k) => {
        for (const name of RELAXED_EXPORTS) imports.env[name] = k.exports[name];
        return WebAssembly.instantiate(opts.wasmBinary, imports);
      }).then((r) => receive(r.instance, r.module), fail);
      return {};
    };
  }
  const M = checked(await (failed ? Promise.race([createBitLensModule(opts), failed]) : createBitLensModule(opts)));
  M._setRelaxedSimd(!!kern);
  return {
    module: M,
    /** The instruction set: 'relaxed-simd' (SIMD128, and bitlens-relaxed.wasm for the ≤ 7-bit integer GEMMs), 'simd128' or 'scalar'. */
    backend: kern ? 'relaxed-simd' : scalar ? 'scalar' : 'simd128',
    /** Loads safetensors + config.json (+ preprocessor_config.json), each bytes or text. */
    loadModel(files) {
      if (files === null || typeof files !== 'object') throw new TypeError(`loadModel: expected { safetensors, config, preprocessor } (bytes or text each), got ${typeName(files)}`);
      const { safetensors, config, preprocessor, name = 'model.safetensors', heads = 0 } = files;
      const bytes = toBytes(safetensors, 'loadModel: safetensors');
      if (typeof name !== 'string') throw new TypeError(`loadModel: \`name\` must be a string (the file name, for messages), got ${typeName(name)}`);
      checkWhole(heads, 'loadModel', 'heads', 0, 65536, ' (attention heads of a checkpoint without config.json; 0: from the config)');
      return new Model(M._loadModel(bytes, toText(config, 'loadModel: config'), toText(preprocessor, 'loadModel: preprocessor'), name, heads));
    },
    /**
     * The worst-case reliability sweep: every configuration quantized with `seeds` calibration draws and
     * evaluated on `data`. Runs one (configuration, seed) at a time, yielding to the event loop in
     * between, so `signal` (an AbortSignal) can stop it; `onProgress({done, total})` after each run.
     * With `shard: { index, count }` it runs only part `index` of `count` of the (configuration × seed) runs
     * and returns that part as plain JSON (as `bitlens sweep --shard I/N --json` writes it): see mergeSweeps.
     */
    async sweep(spec, { onProgress, signal } = {}) {
      const { model, data, calib, shard, cpp } = sweepSpec(spec);
      if (signal && signal.aborted) throw abortError(signal, 'sweep');
      const json = cppJson(cpp, 'sweep');
      if (shard != null) return JSON.parse(await runSteps(model._h.sweepPart(json, data._h, calib._h, shardText(shard)), 'sweep', onProgress, signal));
      return sweepResult(JSON.parse(await runSteps(model._h.sweep(json, data._h, calib._h), 'sweep', onProgress, signal)));
    },
    /**
     * The parts of one sweep (sweep() with `shard`, or parsed `bitlens sweep --shard I/N --json` files), in any
     * order → the unsharded sweep's result, every statistic recomputed from the parts' runs: the same numbers.
     * Throws naming the difference for parts of different sweeps, and the parts missing or given twice.
     */
    mergeSweeps(parts) {
      if (!Array.isArray(parts) || parts.length === 0) throw new TypeError('mergeSweeps: expected a non-empty array of sweep parts');
      return sweepResult(JSON.parse(M._mergeSweeps(JSON.stringify(parts))));
    },
    /**
     * Mixed precision, step 1: how much each layer's weights and each activation point hurt the output
     * (mean KL divergence from FP32) at each candidate bit-width, measured on `sensSize` images drawn
     * from `calib` with `seed`. `objective: 'worst'` weights each class by its FP32 loss, so the plan
     * protects the hard classes. Other options are quantize()'s quantizer choices. Cancellable like sweep.
     * Returns plain data (it can be posted between workers and stored as JSON).
     */
    async sensitivities(spec, { onProgress, signal } = {}) {
      const { model, calib, objective = 'mean', candidates = [2, 3, 4, 5, 6, 7, 8], sensSize = 64, ...opts } = spec || {};
      if (!(model instanceof Model)) throw new TypeError('sensitivities: `model` must be a Model from loadModel()');
      if (!(calib instanceof Dataset)) throw new TypeError('sensitivities: `calib` must be a Dataset from loadDataset()');
      if (!Array.isArray(candidates) || candidates.length === 0) throw new TypeError('sensitivities: `candidates` must be a non-empty array of bit-widths');
      if (!candidates.every((b) => Number.isInteger(b) && b >= 2 && b <= 8)) throw new RangeError(`sensitivities: \`candidates\` must be whole bit-widths from 2 to 8, got ${show(candidates)}`);
      if (objective !== 'mean' && objective !== 'worst') throw new TypeError(`sensitivities: \`objective\` must be 'mean' or 'worst', got ${show(objective)}`);
      checkWhole(sensSize, 'sensitivities', 'sensSize', 1, Number.MAX_SAFE_INTEGER, ' (images drawn from `calib`)');
      model._alive(); calib._alive();
      if (signal && signal.aborted) throw abortError(signal, 'sensitivities');
      const cpp = { config: JSON.parse(quantConfig(opts, 'sensitivities', ['ptq'])), objective, candidates, sensSize };
      const r = JSON.parse(await runSteps(model._h.sensitivities(JSON.stringify(cpp), calib._h), 'sensitivities', onProgress, signal));
      return { objective, candidates: [...candidates], sensSize, seed: opts.seed ?? 0, weights: r.weights, activations: r.activations, fixedBytes: r.fixed_bytes, weightBytes: r.weight_bytes };
    },
    /**
     * Mixed precision, step 2: the bit-width of every layer and activation point that minimises the
     * total sensitivity with the average bits per weight ≤ `budget` — or the whole model ≤ `maxBytes`
     * bytes — and per activation value ≤ `abudget` (default: budget, or 8 with maxBytes), solved exactly.
     * `layerBits` and `pointBits` go straight into quantize() or a sweep configuration.
     */
    planMixed(sens, { budget, maxBytes, abudget = maxBytes !== undefined ? 8 : budget } = {}) {
      if (!sens || !Array.isArray(sens.weights) || !Array.isArray(sens.activations)) throw new TypeError('planMixed: expected the result of sensitivities()');
      if ((budget === undefined) === (maxBytes === undefined)) throw new TypeError('planMixed: give one of `budget` (average bits per weight) or `maxBytes` (model size)');
      const positive = (v, name, meaning) => {
        if (!(isNum(v) && v > 0)) throw new (typeof v === 'number' ? RangeError : TypeError)(`planMixed: \`${name}\` (${meaning}) must be a number > 0, got ${show(v)}`);
      };
      if (budget !== undefined) positive(budget, 'budget', 'average bits per weight');
      if (maxBytes !== undefined) checkWhole(maxBytes, 'planMixed', 'maxBytes', 1, Number.MAX_SAFE_INTEGER, ' (bytes)');
      if (maxBytes !== undefined && (!Number.isInteger(sens.fixedBytes) || !Array.isArray(sens.weightBytes))) throw new TypeError('planMixed: these sensitivities carry no sizes (`fixedBytes`, `weightBytes`), so a size budget cannot be planned');
      positive(abudget, 'abudget', 'average bits per activation value');
      const p = JSON.parse(M._planMixed(JSON.stringify({ weights: sens.weights, activations: sens.activations, fixed_bytes: sens.fixedBytes, weight_bytes: sens.weightBytes }),
        JSON.stringify(maxBytes !== undefined ? { maxBytes, abudget } : { budget, abudget })));
      return {
        layers: p.layers, points: p.points,
        layerBits: Object.fromEntries(p.layers.map((l) => [l.name, l.bits])),
        pointBits: Object.fromEntries(p.points.map((l) => [l.name, l.bits])),
        weightBitsAvg: p.weight_bits_avg, actBitsAvg: p.act_bits_avg,
        weightCost: p.weight_cost, weightBudget: p.weight_budget, actCost: p.act_cost, actBudget: p.act_budget,
        modelBytes: p.model_bytes,
      };
    },
    /**
     * Quantizes a plain array of values, for teaching views: returns the dequantized values, the
     * quantizer's levels and its fitted parameters. Options: quantizer ('uniform' | 'log2' | 'sulq' |
     * 'pow2'), bits (2–8), symmetric, range ('minmax' | 'percentile' | 'mse'), roundExponent.
     */
    quantizeTensor(values, options = {}) {
      const arr = toFloats(values, 'quantizeTensor');
      if (options === null || typeof options !== 'object') throw new TypeError(`quantizeTensor: the options must be an object, got ${typeName(options)}`);
      const known = ['quantizer', 'bits', 'symmetric', 'range', 'roundExponent'];
      for (const k of Object.keys(options)) if (!known.includes(k)) throw new TypeError(`quantizeTensor: unknown option '${k}' (expected ${known.join(', ')})`);
      if (options.bits !== undefined) checkWhole(options.bits, 'quantizeTensor', 'bits', 2, 8);
      const r = M._quantizeTensor(arr, cppJson(options, 'quantizeTensor'));
      return { values: r.values, levels: r.levels, params: JSON.parse(r.params) };
    },
    /**
     * The file extensions of images in an image folder (".png", ".jpg", ".jpeg", ".bmp", ".gif"): what `bitlens` reads
     * from a folder; other files are not images to it.
     */
    imageExtensions: JSON.parse(M._imageExtensions()),
    /**
     * The size limits BitLens checks input against (src/base/size_limits.h): an image's side and pixels, a dataset's
     * images and decoded bytes, a gzip member's (and the page's zip's) decompressed bytes.
     */
    limits: Object.freeze(JSON.parse(M._sizeLimits())),
    /**
     * The model's class index for each of a dataset's class names (`data.classes`, or folder names), by the rule every
     * evaluation applies: the label's name, case-insensitive; a number k means class k; a model with generic labels
     * takes the classes in their order. A name that is no class of the model throws the evaluation's error.
     */
    classIndices(model, names) {
      if (!(model instanceof Model)) throw new TypeError('classIndices: `model` must be a Model from loadModel()');
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new TypeError(`classIndices: \`names\` must be an array of class names (strings), got ${show(names)}`);
      model._alive();
      return JSON.parse(M._classIndices(model._h, JSON.stringify(names)));
    },
    /**
     * Checks a sweep's spec (sweep()'s, shard aside) as sweep() checks it, and its calibration draw from `calib`, without
     * running anything: throws the Error sweep() would (limits, classes, calibration size against the pool). Returns
     * the spec as the sweep records it (its JSON's `spec`).
     */
    checkSweep(spec) {
      const { model, calib, cpp } = sweepSpec(spec);
      return JSON.parse(M._checkSweep(model._h, cppJson(cpp, 'sweep'), calib._h));
    },
    /**
     * Checks the options of `model.qat()`, `model.inq()`, `model.prune()` or SOS reconstruction (`kind`: 'qat', 'inq',
     * 'prune' or 'sos': `model.quantize({ method: 'sos', ... })`'s options but `calib`) as the run
     * checks them before any work — checkTrainingOptions() and then the quantization settings and options in C++ —
     * without training images: throws the Error the run would. (The calibration size against the training images is
     * checked when the run starts.)
     */
    checkTraining(model, kind, options = {}) {
      if (!(model instanceof Model)) throw new TypeError('checkTraining: `model` must be a Model from loadModel()');
      model._alive();
      const { config, options: cpp } = trainingSpec(kind, options, model.info.blocks, 'checkTraining');
      M._checkTraining(model._h, kind, config, cpp);
    },
    /**
     * What an encoded image's header says (read by the library's decoder, no pixels decoded): `{ format, width, height,
     * channels }` (format 'PNG', 'JPEG', 'BMP' or 'GIF'; channels 1 for grey, 3 for colour), or null when the bytes are
     * no image BitLens reads, whatever the file's name.
     */
    imageInfo(bytes) {
      return JSON.parse(M._imageInfo(toBytes(bytes, 'imageInfo')));
    },
    /**
     * A sweep's per-seed, per-class (and per-group) accuracies as CSV, the file `bitlens sweep --csv` writes
     * (config,seed,kind,index,name,images,accuracy,fp32,drop). `result`: sweep()'s or mergeSweeps()'s result, or the
     * parsed JSON of `bitlens sweep --json`.
     */
    sweepCsv(result) {
      if (result === null || typeof result !== 'object') throw new TypeError(`sweepCsv: expected a sweep's result, got ${typeName(result)}`);
      return M._sweepCsv(cppJson(result.raw ?? result, 'sweepCsv'));
    },
    /**
     * Loads a labeled dataset: `{ idxImages, idxLabels }` (IDX bytes, gzipped or raw) or
     * `{ files: [{ bytes, name, label }] }` (encoded images with their class names).
     */
    loadDataset(spec) {
      if (spec && spec.idxImages) {
        return new Dataset(M._loadIdx(toBytes(spec.idxImages, 'loadDataset: idxImages'),
          toBytes(spec.idxLabels, 'loadDataset: idxLabels'), spec.imagesName || 'images.idx',
          spec.labelsName || 'labels.idx'), M);
      }
      if (spec && Array.isArray(spec.files)) {
        spec.files.forEach((f, i) => {
          if (f === null || typeof f !== 'object') throw new TypeError(`loadDataset: files[${i}] must be { bytes, name, label }, got ${typeName(f)}`);
        });
        const files = spec.files.map((f, i) => toBytes(f.bytes, `loadDataset: files[${i}].bytes`));
        return new Dataset(M._loadEncoded(files, spec.files.map((f) => String(f.name)),
          spec.files.map((f) => String(f.label))), M);
      }
      throw new TypeError('loadDataset: expected { idxImages, idxLabels } or { files: [{ bytes, name, label }] }');
    },
  };
}
export default createBitLens;
