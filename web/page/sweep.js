// The sweep: its settings checked by the library (bl.checkSweep), its (configuration × seed) runs spread over one worker
// per core (part k of N each, as `bitlens sweep --shard k/N`), the parts merged by the library (bl.mergeSweeps).
import { PageWorker, isStopped, loadInto } from './workers.js';
import { fmtTime, parseWA, showError } from './format.js';
import { jumpToWorstCase } from './lessons.js';
import { renderResults } from './results.js';
import { runSos } from './sos.js';
import { $, MAX_WORKERS, state } from './state.js';
import { setRunStatus, updateRunButton } from './status.js';
import { readSettings, syncUrl } from './url-state.js';

export function buildSpec(s) {
  const configs = s.configs.map(parseWA).filter(Boolean).map((c) => ({ wbits: c.wbits, abits: c.abits, softmax: s.softmax, weights: s.weights, granularity: s.granularity }));
  const spec = { configs, seeds: s.seeds, calibSize: s.calibSize };
  if (s.calibClasses.length) spec.calibClasses = s.calibClasses;
  if (s.calibSkew > 0) spec.calibSkew = s.calibSkew;
  if (s.calibCorrupt) spec.calibCorrupt = s.calibCorrupt;
  if (s.evalCorrupt) spec.evalCorrupt = s.evalCorrupt;
  if (s.groups) spec.groups = s.groups;
  return spec;
}

// A sweep's settings checked by the library (bl.checkSweep in the worker, against the loaded model and images): the
// sweep's own error (seeds, calibration size against the pool, classes, skew), or null.
export async function checkSweep(spec) {
  try {
    await state.primary.call('checkSweep', { spec });
    return null;
  } catch (e) {
    return e.message;
  }
}

// A run that failed (not cancelled): the message where the user looks, the progress cleared.
export function runFailed(errorId, message) {
  showError(errorId, message);
  setRunStatus('');
  $('progress').value = 0;
  $('progress-text').textContent = '';
}

// The workers a sweep runs on: `?workers=N` from the URL, else one per core; at most MAX_WORKERS (each holds its
// own copy of the module, model and images) and at most one per run.
export function sweepWorkers(s, runs) {
  const cores = Math.max(1, state.caps?.cores || navigator.hardwareConcurrency || 1);
  return Math.max(1, Math.min(s.workers || cores, MAX_WORKERS, runs));
}

export async function run() {
  showError('run-error', '');
  const s = readSettings();
  if (s.method === 'sos') return runSos(s);
  if (!s.configs.length) { showError('run-error', 'Tick at least one bit-width configuration.'); return; }
  const spec = buildSpec(s);
  const problem = await checkSweep(spec);
  if (problem) { showError('run-error', problem); return; }
  syncUrl();
  const total = spec.configs.length * spec.seeds;
  const nWorkers = sweepWorkers(s, total);
  const run = { clients: [state.primary], cancelled: false, started: performance.now() };
  state.running = run;
  updateRunButton();
  const done = new Array(nWorkers).fill(0);
  const progress = () => {
    const d = done.reduce((a, b) => a + b, 0);
    $('progress').value = total ? d / total : 0;
    const el = (performance.now() - run.started) / 1000;
    const eta = d > 0 ? (el / d) * (total - d) : NaN;
    $('progress-text').textContent = `${d} / ${total} runs${d > 0 && d < total ? ` · about ${fmtTime(eta)} left` : ''}`;
    $('progress').setAttribute('aria-valuetext', `${d} of ${total} runs done`);
  };
  progress();
  setRunStatus(`Running ${spec.configs.length} configuration${spec.configs.length > 1 ? 's' : ''} × ${spec.seeds} seed${spec.seeds > 1 ? 's' : ''} on ${nWorkers} worker${nWorkers > 1 ? 's' : ''}…`);
  let finished = false;
  try {
    // Extra workers get a copy of the model and images; worker k then runs part k + 1 of nWorkers of the
    // (configuration × seed) runs, and the primary merges the parts into the numbers of one worker's sweep.
    for (let k = 1; k < nWorkers; k++) run.clients.push(new PageWorker());
    await Promise.all(run.clients.slice(1).map((c) => loadInto(c, { model: state.modelSrc, data: { input: state.dataInput, limit: s.limit } })));
    const onProgress = (k) => (p) => { done[k] = p.done; progress(); };
    if (nWorkers === 1) {
      state.result = await state.primary.call('sweep', { spec }, { onProgress: onProgress(0) });
    } else {
      const parts = await Promise.all(run.clients.map((c, k) => c.call('sweep', { spec: { ...spec, shard: { index: k + 1, count: nWorkers } } },
        { onProgress: onProgress(k) })));
      state.result = await state.primary.lib('mergeSweeps', parts);
    }
    state.resultSettings = s;
    state.resultWorkers = nWorkers;
    done.fill(0); done[0] = total; progress();
    const secs = (performance.now() - run.started) / 1000;
    setRunStatus(`Done: ${total} quantize-and-evaluate runs in ${fmtTime(secs)} on ${nWorkers} worker${nWorkers > 1 ? 's' : ''}.`, 'done');
    renderResults();
    $('results').scrollIntoView({ block: 'start' });
    finished = true;
  } catch (e) {
    if (isStopped(e) || run.cancelled) return;
    runFailed('run-error', `The sweep stopped: ${e.message}`);
  } finally {
    for (const c of run.clients.slice(1)) c.terminate();
    if (state.running === run) state.running = null;
    updateRunButton();
  }
  // The one-image view goes to the worst case: its configuration and seed, its class's flipped images, the first shown.
  if (finished) await jumpToWorstCase();
}
