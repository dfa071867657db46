// Types of createBitLensWorker() (web/bitlens-remote.js): the BitLens API in a Web Worker, every call a Promise,
// the worker's objects as stand-ins.
import type {
  CreateOptions, Model, Dataset, QuantizedModel, SosModel, ModelFiles, DatasetSpec, QuantizeOptions, SosQuantizeOptions,
  SosRunOptions, SweepSpec, SweepResult, SweepPart, SensitivitySpec, Sensitivities, MixedPlan, QuantizeTensorOptions,
  QuantizeTensorResult, Backend,
} from './bitlens.js';

/** The objects that stay in the worker. */
type Held = Model | Dataset | QuantizedModel;

/** A value as it comes back from the worker: held objects as stand-ins, the rest copied. */
export type FromWorker<T> = T extends Model ? RemoteModel : T extends Held ? Remote<T> : T extends (infer U)[] ? FromWorker<U>[] : T;

/** An argument as it goes to the worker: a stand-in where a held object is expected (also inside options). */
export type ToWorker<T> = T extends Held ? Remote<T> | RemoteModel
  : T extends ArrayBuffer | ArrayBufferView | AbortSignal | ((...a: never[]) => unknown) ? T
  : T extends (infer U)[] ? ToWorker<U>[]
  : T extends object ? { [K in keyof T]: ToWorker<T[K]> }
  : T;

type Method<F> = F extends (...a: infer A) => infer R ? (...a: { [I in keyof A]: ToWorker<A[I]> }) => Promise<FromWorker<Awaited<R>>> : never;

/**
 * A stand-in for a worker's object: its data (info, labels, history, …) copied when it was made, its methods
 * forwarded (each a Promise), delete() freeing the worker's object. `kind` is its class's name.
 */
export type Remote<T> = {
  readonly kind: string;
  delete(): Promise<void>;
} & {
  readonly [K in keyof T as K extends 'delete' ? never : K]: T[K] extends (...a: never[]) => unknown ? Method<T[K]> : FromWorker<T[K]>;
};

/** A Model's stand-in: quantize() keeps both of its forms. */
export type RemoteModel = Omit<Remote<Model>, 'quantize'> & {
  quantize(options: ToWorker<QuantizeOptions>): Promise<Remote<QuantizedModel>>;
  quantize(options: ToWorker<SosQuantizeOptions>, run?: SosRunOptions): Promise<Remote<SosModel>>;
};

type RunOptions = { onProgress?: (p: { done: number; total: number }) => void; signal?: AbortSignal };

/** createBitLens()'s API, in a worker. */
export interface BitLensWorker {
  loadModel(files: ModelFiles): Promise<RemoteModel>;
  loadDataset(spec: DatasetSpec): Promise<Remote<Dataset>>;
  sweep(spec: ToWorker<SweepSpec> & { shard?: undefined }, options?: RunOptions): Promise<SweepResult>;
  sweep(spec: ToWorker<SweepSpec> & { shard: { index: number; count: number } | string }, options?: RunOptions): Promise<SweepPart>;
  mergeSweeps(parts: SweepPart[]): Promise<SweepResult>;
  sensitivities(spec: ToWorker<SensitivitySpec>, options?: RunOptions): Promise<Sensitivities>;
  planMixed(sens: Sensitivities, budgets: { budget: number; maxBytes?: never; abudget?: number } | { maxBytes: number; budget?: never; abudget?: number }): Promise<MixedPlan>;
  quantizeTensor(values: Float32Array | number[], options?: QuantizeTensorOptions): Promise<QuantizeTensorResult>;
  /** The instruction set in the worker: 'relaxed-simd', 'simd128' or 'scalar' (CreateOptions.backend). */
  readonly backend: Backend;
  classIndices(model: RemoteModel, names: string[]): Promise<number[]>;
  checkSweep(spec: ToWorker<SweepSpec>): Promise<Record<string, unknown>>;
  sweepCsv(result: SweepResult | Record<string, unknown>): Promise<string>;
  /** BitLens.imageExtensions, as the worker's instance has them. */
  readonly imageExtensions: string[];
  /** The worker's navigator.hardwareConcurrency. */
  readonly cores: number;
  /** The methods a worker added with extendWorker() (web/bitlens-worker.js) and `methods` named: `name(...args)`. */
  readonly [method: string]: unknown;
  /** The Worker running BitLens. */
  readonly worker: Worker;
  /** Stops the worker: every call in flight rejects (an Error named AbortError, "BitLens worker: terminated"). */
  terminate(): void;
}

/** createBitLens()'s options that can be posted to a worker (not `locateFile` / `instantiateWasm`), and `worker`. */
export interface WorkerOptions extends Omit<CreateOptions, 'locateFile' | 'instantiateWasm'> {
  /** A Worker running bitlens/bitlens-worker.js (e.g. one a bundler made); default: a module worker from this package. */
  worker?: Worker;
  /**
   * Instance methods the worker added with extendWorker() (a module worker that imports bitlens/bitlens-worker.js and
   * calls extendWorker({ name(bl, ...args) {…} })): each becomes `name(...args)`, a Promise, with callbacks, signals,
   * stand-ins and errors carried as for the API's own calls. Rejects when the worker lacks one.
   */
  methods?: string[];
}

export function createBitLensWorker(options?: WorkerOptions): Promise<BitLensWorker>;
export default createBitLensWorker;
