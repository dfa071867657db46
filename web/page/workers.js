// The page's workers: each is the package's worker helper (createBitLensWorker, web/bitlens-remote.js) running
// web/page/worker.js, the package's worker extended with the page's session (model, images, runs). One bootstrap for
// every worker the page starts: the first one, the extra ones a sweep spreads over, and the fresh one after Cancel.
import { createBitLensWorker } from '../bitlens-remote.js';

// The page's methods in web/page/worker.js (each registered there as 'page:' + name).
const PAGE_METHODS = ['loadModel', 'loadData', 'setLimit', 'evaluate', 'sweep', 'checkSweep', 'checkTraining', 'mixed', 'loadTrainData', 'qat', 'inq',
  'sos', 'exportSos', 'exportTuned', 'prune', 'measure', 'exportPruned', 'teach', 'sample', 'exportModel', 'flips',
  'learn', 'learnItems', 'learnClasses', 'learnDraws', 'learnMixed', 'learnRepair'];  // Learn mode's lessons (web/page/learn.js)

/** Whether an error is a run stopped on purpose (Cancel terminated its worker), not a failure to show. */
export const isStopped = (e) => e?.name === 'AbortError';

export class PageWorker {
  constructor() {
    this.worker = new Worker('/web/page/worker.js', { type: 'module' });
    this.stopped = null;
    // The API (createBitLensWorker's: loadModel, sweep, mergeSweeps, sweepCsv, …) once the worker has started.
    this.ready = Promise.race([
      createBitLensWorker({ worker: this.worker, methods: PAGE_METHODS.map((m) => `page:${m}`) }),
      new Promise((resolve, reject) => { this._stop = reject; }),
    ]).catch((e) => {
      if (isStopped(e)) throw e;
      throw new Error(`the BitLens worker failed to start: ${e.message} (is web/lib/bitlens-core.wasm built? run \`npm run build:wasm\`)`);
    });
    this.ready.then((api) => { this.api = api; }, () => {});
  }

  /** The worker's navigator.hardwareConcurrency. */
  async cores() { return (await this.ready).cores; }

  /** The page's method `type` (web/page/worker.js) with `payload`; `onProgress` gets its progress reports. */
  async call(type, payload = {}, { onProgress } = {}) {
    const api = await this.ready;
    return api[`page:${type}`](payload, onProgress ? { onProgress } : {});
  }

  /** One of the package's own methods (mergeSweeps, sweepCsv, …) in this worker. */
  async lib(method, ...args) {
    return (await this.ready)[method](...args);
  }

  /** Stops the worker at once: every call in flight rejects with an AbortError. */
  terminate() {
    if (this.api) this.api.terminate();
    else {
      this.worker.terminate();
      this._stop(Object.assign(new Error('BitLens worker: terminated'), { name: 'AbortError' }));
    }
  }
}

/**
 * Loads into `worker` what the page holds: `what.model` (the files loadModel takes), `what.data` ({ input, limit }),
 * `what.train` ({ input, name }). Returns the summaries of the images loaded: { data, train }.
 */
export async function loadInto(worker, what = {}) {
  const out = { data: null, train: null };
  if (what.model) await worker.call('loadModel', { ...what.model });
  if (what.data?.input) out.data = await worker.call('loadData', what.data);
  if (what.train?.input) out.train = await worker.call('loadTrainData', what.train);
  return out;
}
