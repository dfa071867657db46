// Cancel: the running work's workers are terminated (a WASM call cannot be interrupted) and a fresh worker gets the
// model and images back; each panel says what was stopped.
import { PageWorker, loadInto } from './workers.js';
import { renderInqSteps, renderQatEpochs } from './finetune.js';
import { showError } from './format.js';
import { withLoading } from './intake.js';
import { renderPrune } from './prune.js';
import { renderSos } from './sos.js';
import { $, state } from './state.js';
import { setRunStatus } from './status.js';
import { readSettings } from './url-state.js';

export async function cancel() {
  const run = state.running;
  if (!run) return;
  run.cancelled = true;
  for (const c of run.clients) c.terminate();
  if (state.qat && !state.qat.result) { state.qat.cancelled = true; renderQatEpochs(); }
  if (state.inq && !state.inq.result) { state.inq.cancelled = true; renderInqSteps(); }
  // The worker restarts: reconstructed models of a finished SOS run go with it.
  if (state.sos) { state.sos.cancelled = !state.sos.done; state.sos.lost = true; renderSos(); }
  // Pruned models go with the worker: their points stay, a model not yet measured goes.
  if (state.prune) {
    const pr = state.prune;
    if (pr.run) {
      pr.cancelled = { base: 'measuring the unpruned model', remeasure: 'measuring an earlier pruned model', prune: `pruning ${pr.run.name}`, measure: `measuring ${pr.run.name}` }[pr.run.phase];
      pr.run = null;
    }
    if (pr.base && !pr.base.points) pr.base = null;
    for (const m of pr.models.filter((x) => x.points && x.quantKey !== pr.quantKey)) pr.dropped.push(m.name);
    pr.models = pr.models.filter((m) => m.points && m.quantKey === pr.quantKey);
    for (const m of pr.models) m.lost = true;
    renderPrune();
  }
  state.running = null;
  $('progress').value = 0;
  $('progress-text').textContent = '';
  setRunStatus('Cancelled. Restarting the worker…', 'cancelled');
  state.primary = new PageWorker();
  await withLoading(async () => {
    try {
      const r = await loadInto(state.primary, {
        model: state.modelSrc,
        data: { input: state.dataInput, limit: readSettings().limit },
        train: { input: state.trainInput, name: state.trainInput?.name },
      });
      if (r.data) state.data = r.data;
      if (r.train) state.train = r.train;
      setRunStatus('Cancelled. Ready to run again.', 'cancelled');
    } catch (e) {
      showError('run-error', `Could not restart after cancelling: ${e.message}`);
    }
  });
}
