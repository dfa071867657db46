// createBitLensWorker(): the BitLens API in a Web Worker, so that a page never blocks while a model is quantized,
// swept or trained. The same calls as createBitLens(), each returning a Promise; the objects they make (Model,
// Dataset, QuantizedModel, …) live in the worker and are stand-ins here, with their data (info, labels, history, …)
// copied and their methods forwarded. `onProgress` callbacks are called here as the worker reports; an AbortSignal
// cancels the worker's run between two steps (a signal cannot cross to a worker: an 'abort' message does).
// web/bitlens-worker.js is the worker's side; this module loads no WebAssembly itself.

class Client {
  constructor(worker) {
    this.worker = worker;
    this.seq = 0;
    this.pending = new Map();  // id → { resolve, reject, callbacks }
    this.failed = null;
    worker.onmessage = (ev) => {
      const m = ev.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.callback !== undefined) {
        p.callbacks[m.callback]?.(m.value);
        return;
      }
      this.pending.delete(m.id);
      p.cleanup();
      if (m.ok) p.resolve(this.unpack(m.result));
      else p.reject(Object.assign(new (ERRORS[m.error.name] || Error)(m.error.message), m.error.name === 'AbortError' ? { name: 'AbortError' } : {}));
    };
    worker.onerror = (ev) => {
      ev.preventDefault?.();
      this.fail(new Error(`BitLens worker: failed to start or crashed${ev.message ? `: ${ev.message}` : ''} (a module worker running bitlens/bitlens-worker.js)`));
    };
  }
  fail(err) {
    this.failed = err;
    for (const p of this.pending.values()) { p.cleanup(); p.reject(err); }
    this.pending.clear();
  }
  // args: callbacks become { __fn }, AbortSignals { __signal }, stand-ins { __ref }; the rest is copied.
  call(target, method, args, { init } = {}) {
    if (this.failed) return Promise.reject(this.failed);
    const id = ++this.seq;
    const callbacks = {};
    const signals = [];
    const pack = (v, key) => {
      if (v instanceof Remote) return { __ref: v._ref() };
      if (typeof v === 'function') { callbacks[key] = v; return { __fn: key }; }
      if (typeof AbortSignal !== 'undefined' && v instanceof AbortSignal) { signals.push(v); return { __signal: true }; }
      if (Array.isArray(v)) return v.map((x) => pack(x, key));
      if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pack(x, k)]));
      }
      return v;
    };
    let packed;
    try {
      packed = init ? undefined : pack(args, 'args');
    } catch (e) {
      return Promise.reject(e);
    }
    const signal = signals[0];
    if (signal?.aborted) return Promise.reject(signal.reason ?? Object.assign(new Error(`${method} cancelled`), { name: 'AbortError' }));
    return new Promise((resolve, reject) => {
      const onAbort = () => this.worker.postMessage({ id, op: 'abort' });
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, { resolve, reject, callbacks, cleanup });
      this.worker.postMessage(init ? { id, op: 'init', options: init } : { id, op: 'call', target, method, args: packed });
    });
  }
  // { __ref, kind, data, methods } → a stand-in (also inside arrays and plain objects).
  unpack(v) {
    if (Array.isArray(v)) return v.map((x) => this.unpack(x));
    if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      if (typeof v.__ref === 'number') return new Remote(this, v);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.unpack(x)]));
    }
    return v;
  }
}
const ERRORS = { TypeError, RangeError, Error };

// A stand-in for an object in the worker: its data copied, each method a Promise of the worker's answer. delete()
// frees the worker's object; calls after it reject with "<kind>: used after delete()", as the object itself would.
class Remote {
  constructor(client, { __ref, kind, data, methods }) {
    Object.defineProperty(this, '_client', { value: client });
    Object.defineProperty(this, '_id', { value: __ref, writable: true });
    Object.defineProperty(this, 'kind', { value: kind, enumerable: true });
    Object.assign(this, client.unpack(data));
    for (const m of methods) {
      if (m === 'delete') continue;
      Object.defineProperty(this, m, { value: async (...args) => client.call(this._ref(), m, args), enumerable: false });
    }
  }
  _ref() {
    if (!this._id) throw new Error(`${this.kind}: used after delete()`);
    return this._id;
  }
  /** Frees the object in the worker (and what it owns, as delete() there does). */
  delete() {
    if (!this._id) return Promise.resolve();
    const id = this._id;
    this._id = 0;
    return this._client.call(id, 'delete', []);
  }
}

/**
 * Starts a Web Worker running BitLens and resolves to the API of createBitLens(), every call returning a Promise.
 * Options: `worker` (a Worker to use, e.g. one your bundler made from 'bitlens/bitlens-worker.js'; default: a module
 * worker from this package's bitlens-worker.js), `methods` (names of instance methods that worker added with
 * extendWorker(), e.g. the demo page's web/page/worker.js) and createBitLens()'s own (`wasmPaths`, …, sent to the worker).
 * `terminate()` stops the worker: every call in flight rejects.
 */
export async function createBitLensWorker(options = {}) {
  const { worker: given, methods = [], ...init } = options;
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) throw new TypeError('createBitLensWorker: `methods` must be an array of method names');
  // Written as bundlers look for it (Vite, webpack): they then bundle the worker, its import of bitlens.js and its .wasm.
  const worker = given || new Worker(new URL('./bitlens-worker.js', import.meta.url), { type: 'module' });
  const client = new Client(worker);
  const ready = await client.call(0, 'init', undefined, { init });
  const missing = methods.filter((m) => !ready.methods.includes(m));
  if (missing.length) {
    worker.terminate();
    throw new TypeError(`createBitLensWorker: the worker has no method ${missing.map((m) => `'${m}'`).join(', ')} (a worker adds methods with extendWorker())`);
  }
  const api = { backend: ready.backend };  // the worker's instruction set: 'relaxed-simd', 'simd128' or 'scalar'
  for (const m of [...API_METHODS, ...methods]) {
    api[m] = (...args) => client.call(0, m, args);
  }
  api.imageExtensions = ready.imageExtensions;
  /** The worker's navigator.hardwareConcurrency. */
  api.cores = ready.cores;
  api.worker = worker;
  api.terminate = () => {
    worker.terminate();
    client.fail(Object.assign(new Error('BitLens worker: terminated'), { name: 'AbortError' }));
  };
  return api;
}
const API_METHODS = ['loadModel', 'loadDataset', 'sweep', 'mergeSweeps', 'sensitivities', 'planMixed', 'quantizeTensor',
  'classIndices', 'checkSweep', 'sweepCsv'];
export default createBitLensWorker;
