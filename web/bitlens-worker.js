// BitLens in a Web Worker — the worker's side of createBitLensWorker() (web/bitlens-remote.js). It owns the
// WebAssembly module and every object made through it; the page holds stand-ins that name them by id.
//
// Messages in:  { id, op: 'init', options }                     createBitLens(options)
//               { id, op: 'call', target, method, args }        target: an object's id, or 0 for the instance
//               { id, op: 'abort' }                             aborts the AbortSignal given to call `id`
// Messages out: { id, ok: true, result } | { id, ok: false, error: { name, message } } | { id, callback, value }
// In `args`, { __ref: n } stands for object n, { __fn: key } for a callback (its calls come back as
// { id, callback: key, value }: `onProgress`), { __signal: true } for an AbortSignal (cancelled by 'abort'). A result
// that is a BitLens object (it has delete()) is kept here and sent as { __ref, kind, data, methods }: its data
// properties (info, history, …; nested objects as refs) and the names of its methods.
//
// Extending it (a page's own work beside the API, e.g. web/page/worker.js): a module worker imports this file and calls
// extendWorker({ name(bl, ...args) { … } }); createBitLensWorker({ worker, methods: ['name'] }) then has bl.name(...args),
// with callbacks, AbortSignals, stand-ins and errors carried as for the API's own calls.
import { createBitLens } from './bitlens.js';

let bl = null;
const extensions = new Map();  // name → function(bl, ...args): the instance methods a worker built on this one adds

/** Adds instance methods to this worker: `name(bl, ...args)` is called for createBitLensWorker()'s `bl.name(...args)`. */
export function extendWorker(methods) {
  for (const [name, f] of Object.entries(methods)) {
    if (typeof f !== 'function' || name.startsWith('_')) throw new TypeError(`extendWorker: '${name}' must be a function (and not start with _)`);
    extensions.set(name, f);
  }
}
const objects = new Map();  // id → object
let nextId = 1;
const aborts = new Map();   // call id → AbortController

const isObject = (v) => v !== null && typeof v === 'object' && typeof v.delete === 'function' && !ArrayBuffer.isView(v);

// The stand-in of `obj` sent to the page: its data, and its methods by name (own and inherited, not Object's).
function describe(obj) {
  const id = nextId++;
  objects.set(id, obj);
  const data = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k.startsWith('_') || typeof v === 'function') continue;
    data[k] = isObject(v) ? describe(v) : v;
  }
  const methods = new Set();
  for (let p = Object.getPrototypeOf(obj); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const k of Object.getOwnPropertyNames(p)) {
      if (k === 'constructor' || k.startsWith('_')) continue;
      const d = Object.getOwnPropertyDescriptor(p, k);
      if (typeof d.value === 'function') methods.add(k);
      else if (d.get && !(k in data)) data[k] = obj[k];  // getters (Dataset.size, .classes): their value now
    }
  }
  return { __ref: id, kind: obj.constructor.name, data, methods: [...methods] };
}

function object(id) {
  const o = objects.get(id);
  if (!o) throw new Error(`BitLens worker: no object #${id} (deleted, or made by another worker)`);
  return o;
}

// The page's arguments with stand-ins, callbacks and signals made real.
function revive(v, id, post, signal) {
  if (Array.isArray(v)) return v.map((x) => revive(x, id, post, signal));
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v;
  if (typeof v.__ref === 'number') return object(v.__ref);
  if (typeof v.__fn === 'string') return (value) => post({ id, callback: v.__fn, value });
  if (v.__signal === true) return signal();
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x, id, post, signal)]));
}

// Results go back as plain data, BitLens objects as stand-ins (also inside arrays and plain objects).
function pack(v) {
  if (isObject(v)) return describe(v);
  if (Array.isArray(v)) return v.map(pack);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pack(x)]));
  }
  return v;
}

async function handle({ id, op, target, method, args, options }, post) {
  if (op === 'init') {
    if (!bl) bl = await createBitLens(options || {});
    const taken = [...extensions.keys()].filter((k) => k in bl);
    if (taken.length) throw new TypeError(`BitLens worker: extendWorker() names ${taken.map((k) => `'${k}'`).join(', ')}, which the API has (choose other names)`);
    return { backend: bl.backend, imageExtensions: bl.imageExtensions, methods: [...extensions.keys()], cores: globalThis.navigator?.hardwareConcurrency || 1 };
  }
  if (!bl) throw new Error("BitLens worker: not initialised (createBitLensWorker() sends 'init' first)");
  if (op !== 'call') throw new Error(`BitLens worker: unknown operation '${op}'`);
  const self = target ? object(target) : bl;
  if (method === 'delete' && target) {
    self.delete();
    objects.delete(target);
    return null;
  }
  const ext = !target && extensions.get(method);
  const f = ext ? (...a) => ext(bl, ...a) : self[method];
  if (typeof f !== 'function' || method.startsWith('_')) {
    throw new TypeError(`BitLens worker: ${target ? self.constructor.name : 'the instance'} has no method '${method}'`);
  }
  const signal = () => {
    const ac = new AbortController();
    aborts.set(id, ac);
    return ac.signal;
  };
  try {
    return pack(await f.apply(self, revive(args || [], id, post, signal)));
  } finally {
    aborts.delete(id);
  }
}

self.onmessage = async (ev) => {
  const msg = ev.data || {};
  if (msg.op === 'abort') {
    aborts.get(msg.id)?.abort();
    return;
  }
  const post = (m) => self.postMessage({ id: msg.id, ...m });
  try {
    post({ ok: true, result: await handle(msg, post) });
  } catch (e) {
    post({ ok: false, error: { name: e?.name || 'Error', message: e?.message ?? String(e) } });
  }
};
