// Fine-tuning a configuration: QAT, QBitOpt (bits reallocated under a budget) and INQ (power-of-two weights), with
// their checks, time estimates, progress, epochs tables, learning curves and downloads.
import { checkTrainingOptions } from '../bitlens.js';
import { isStopped } from './workers.js';
import { bitAllocationChart, classShiftChart, inqStepChart, learningCurve } from '../charts.js';
import { esc, fmtTime, kb, pct, showError } from './format.js';
import { fetchBytes } from './intake.js';
import { renderPruneEstimate } from './prune.js';
import { drawChart } from './results.js';
import { $, DEFAULT_TRAIN, INQ_DEFAULT, QAT_SECONDS_PER_IMAGE, state } from './state.js';
import { setRunStatus, updateRunButton } from './status.js';
import { runFailed } from './sweep.js';
import { readSettings, syncUrl } from './url-state.js';

export async function fetchDefaultTrain() {
  const [images, labels] = await Promise.all([fetchBytes(DEFAULT_TRAIN.images), fetchBytes(DEFAULT_TRAIN.labels)]);
  return { kind: 'idx', name: DEFAULT_TRAIN.name, files: [{ name: 'fmnist-train-5k-images-idx3-ubyte.gz', bytes: images }, { name: 'fmnist-train-5k-labels-idx1-ubyte.gz', bytes: labels }] };
}

// Training images into the worker (kept to restart it after a cancel).
export async function loadTrainInput(input) {
  state.train = await state.primary.call('loadTrainData', { input, name: input.name });
  state.trainInput = input;
  renderTrainSummary();
}

export function renderTrainSummary() {
  const t = state.train;
  $('qat-data-summary').innerHTML = t
    ? `Training images: <strong>${esc(t.name)}</strong>, ${t.n.toLocaleString()} images in ${t.classes.length} classes${t.name === DEFAULT_TRAIN.name ? ' (500 per class)' : ''}.`
      + (t.skipped && t.skipped.length ? ` Skipped ${t.skipped.length.toLocaleString()} file${t.skipped.length > 1 ? 's' : ''} that could not be used: ${esc(t.skipped.slice(0, 3).map((x) => `${x.path} (${x.reason})`).join('; '))}${t.skipped.length > 3 ? '; …' : ''}.` : '')
    : 'Training images: the shipped Fashion-MNIST training subset (5,000 images, 500 per class; loaded when you start).';
  renderQatEstimate();
  renderPruneEstimate();
}

// The images a run would train on (after its limit: 0 = all), and those it holds out (a tenth).
export function trainingImages(limit) {
  const pool = state.train ? state.train.n : DEFAULT_TRAIN.n;
  const n = limit > 0 ? Math.min(limit, pool) : pool;
  const held = Math.max(1, Math.floor(0.1 * n));
  return { n, held, train: n - held };
}
export function qatImages(s) { return trainingImages(s.qatLimit); }

// INQ's partitions as typed ("50, 75, 87.5, 100") → numbers, or a sentence saying what is wrong: the text is read
// here, the numbers are checked by the library (checkTrainingOptions: `bitlens inq`'s and model.inq()'s rule).
export function parsePartitions(text) {
  const parts = text.split(',').map((t) => t.trim());
  if (!text.trim() || parts.some((t) => !/^\d+(\.\d+)?$/.test(t))) return { error: `Partitions must be percentages separated by commas, e.g. ${INQ_DEFAULT.partitions} (found “${text}”).` };
  const partitions = parts.map(Number);
  try {
    checkTrainingOptions('inq', { wbits: 2, partitions });
  } catch (e) {
    return { error: e.message };
  }
  return { partitions };
}

export function renderQatEstimate() {
  const s = readSettings();
  const inq = s.ftMethod === 'inq', qb = s.ftMethod === 'qbitopt';
  const epochs = inq ? s.inqEpochs : qb ? s.qbEpochs : s.qatEpochs;
  if (!(epochs >= 1)) { $('qat-estimate').textContent = ''; return; }
  const { train, held } = qatImages(s);
  const rate = state.qatRate || QAT_SECONDS_PER_IMAGE;
  // Training, plus quantizing and the FP32 model's outputs once (~1.5 ms an image) and each evaluation on the held-out images.
  let secs, what;
  if (inq) {
    const { partitions } = parsePartitions(s.inqPartitions);
    if (!partitions) { $('qat-estimate').textContent = ''; return; }
    const retrained = partitions.filter((p) => p < 100).length;
    secs = rate * train * epochs * retrained + 0.0015 * (train + held) + 0.001 * held * (2 * partitions.length + 1);
    what = `${partitions.length} partition step${partitions.length > 1 ? 's' : ''} (${epochs} epoch${epochs > 1 ? 's' : ''} of retraining after each but the last)`;
  } else if (qb) {
    // Each allocation's sensitivity passes: up to 8 batches of 64 forward and backward, as many as training them.
    const allocations = 1 + 4 * (epochs - 1);
    secs = rate * (train * epochs + allocations * Math.min(8 * 64, train)) + 0.0015 * (train + held) + 0.001 * held * (epochs + 1);
    what = `${epochs} epochs (bits allocated ${allocations} times)`;
  } else {
    secs = rate * train * epochs + 0.0015 * (train + held) + 0.001 * held * (epochs + 1);
    what = `${epochs} epoch${epochs > 1 ? 's' : ''}`;
  }
  $('qat-estimate').textContent = `Expected time: about ${fmtTime(Math.max(1, secs))} for ${what} on `
    + `${train.toLocaleString()} training images (${held.toLocaleString()} held out)${state.qatRate ? ', at the speed of the last run here' : ' on a typical laptop'}. `
    + 'The page stays usable meanwhile, and Cancel stops it at once.';
}

// What QAT and INQ need of the training images and the calibration size.
export function validateTrainImages(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!whole(s.qatLimit, 0, 1e9)) return 'The number of training images must be a whole number (0 = all).';
  const { n, train } = qatImages(s);
  if (n < 2) return 'Use at least 2 training images (one is held out for validation).';
  if (!(s.calibSize >= 1)) return 'The calibration size must be at least 1 image.';
  if (s.calibSize > train) return `The calibration size (${s.calibSize}) is larger than the ${train} training images left after the held-out tenth: use fewer calibration images or more training images.`;
  return null;
}

// A run's options checked by the library: its Error's message, led by the field's name on this page when the message
// names an option; or null. `libraryProblem` at once, in the page (checkTrainingOptions: the package's checks, for the
// estimates and links); `workerProblem` before a run starts, in the worker (bl.checkTraining: everything model.qat() /
// inq() / prune() check before any work, the quantization settings in C++ too).
const FIELD_NAMES = {
  qat: { wbits: 'W', abits: 'A', epochs: 'Epochs', budget: 'Bit budget per weight', abudget: 'Bit budget per activation', limit: 'Training images' },
  inq: { wbits: 'W', abits: 'A', epochsPerStep: 'Epochs per step', partitions: 'Partitions', limit: 'Training images' },
  prune: { keepHeads: 'Keep attention heads', keepMlp: 'Keep MLP units', epochs: 'Recovery epochs', importanceImages: 'Importance images', limit: 'Training images' },
  sos: { reconIters: 'Reconstruction iterations', calibSize: 'Calibration size' },
};
function labelled(kind, e) {
  const key = /^\w+: `(\w+)`/.exec(e.message)?.[1];
  const field = FIELD_NAMES[kind][key];
  const message = e.message.replace(/, got NaN$/, ', got an empty field or one that is not a number');
  return field ? `${field}: ${message}` : message;
}
export function libraryProblem(kind, options) {
  try {
    checkTrainingOptions(kind, options, { blocks: state.modelInfo?.blocks ?? [] });
    return null;
  } catch (e) {
    return labelled(kind, e);
  }
}
// The status says so at once (the last run's "done" goes: a run has been asked for) and the button waits.
export async function workerProblem(kind, options, button) {
  setRunStatus('Checking the settings…');
  if (button) $(button).disabled = true;
  try {
    await state.primary.call('checkTraining', { kind, options });
    return null;
  } catch (e) {
    setRunStatus('');
    return labelled(kind, e);
  } finally {
    if (button) updateRunButton();
  }
}

// What the worker's qat and inq take (model.qat() / model.inq() options, split as the worker merges them back).
export function qatPayload(s) {
  const limit = s.qatLimit ? { limit: s.qatLimit } : {};
  return s.ftMethod === 'qbitopt' ? {
    quant: { weights: s.weights, ...ptqSettings(s) },
    options: { epochs: s.qbEpochs, budget: s.qbW, ...(s.qbA != null ? { abudget: s.qbA } : {}), objective: s.qbObjective, ...limit },
  } : {
    quant: { wbits: s.qatW, abits: s.qatA, weights: s.weights, ...ptqSettings(s) },
    options: { epochs: s.qatEpochs, ...limit },
  };
}
export function inqPayload(s, partitions) {
  return {
    quant: { wbits: s.inqW, abits: s.inqA, ...ptqSettings(s) },
    options: { partitions, epochsPerStep: s.inqEpochs, ...(s.qatLimit ? { limit: s.qatLimit } : {}) },
  };
}
export const merged = ({ quant, options }) => ({ ...quant, ...options });

// QAT and QBitOpt (qatPayload tells them apart).
export function validateQat(s) {
  return libraryProblem('qat', merged(qatPayload(s))) || validateTrainImages(s);
}

export function validateInq(s) {
  const { partitions, error } = parsePartitions(s.inqPartitions);
  if (error) return error;
  return libraryProblem('inq', merged(inqPayload(s, partitions))) || validateTrainImages(s);
}

// What QAT, INQ and pruning runs share: the run registered (Cancel terminates its worker), `setup()` (the section's
// first view), the shipped training images loaded when none are, `body(run)`, and failures shown in the section
// (`errorId`, the message starting with `stopped`).
export async function fineTuneRun(setup, body, { errorId = 'qat-error', stopped = 'Fine-tuning stopped' } = {}) {
  syncUrl();
  const run = { clients: [state.primary], cancelled: false, started: performance.now() };
  state.running = run;
  updateRunButton();
  $('progress').value = 0;
  $('progress-text').textContent = '';
  setup();
  try {
    if (!state.trainInput) {
      setRunStatus('Loading the shipped training images…');
      await loadTrainInput(await fetchDefaultTrain());
    }
    await body(run);
  } catch (e) {
    if (isStopped(e) || run.cancelled) return;
    runFailed(errorId, `${stopped}: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

export async function runFineTune() {
  showError('qat-error', '');
  const s = readSettings();
  const inq = s.ftMethod === 'inq';
  const problem = (inq ? validateInq : validateQat)(s)
    || await workerProblem(inq ? 'inq' : 'qat', merged(inq ? inqPayload(s, parsePartitions(s.inqPartitions).partitions) : qatPayload(s)), 'qat-run');
  if (problem) { showError('qat-error', problem); return; }
  return s.ftMethod === 'inq' ? runInq(s) : runQat(s);
}

// The activation and calibration settings above, for QAT's and INQ's PTQ start.
export const ptqSettings = (s) => ({ softmax: s.softmax, granularity: s.granularity, calibSize: s.calibSize });

// QBitOpt's name for a run: its budgets ("W4A5 budget"; "W4 budget" with the activations at 8 bits).
export const qbName = (s) => `W${s.qbW}${s.qbA != null ? `A${s.qbA}` : ''} budget`;

// QAT, or QBitOpt (QAT whose bits are reallocated under a budget): the same run, epochs table and learning curve;
// QBitOpt adds the allocation chart and the per-class comparison.
export function runQat(s) {
  const qb = s.ftMethod === 'qbitopt';
  const name = qb ? qbName(s) : `W${s.qatW}A${s.qatA}`;
  const epochs = qb ? s.qbEpochs : s.qatEpochs;
  let t0 = null;  // the run's clock when training began (after PTQ and the teacher's outputs)
  let intro = `Fine-tuning ${name}`;
  return fineTuneRun(() => {
    state.qat = { name, method: s.ftMethod, epochs, settings: s, history: [], allocations: [], result: null };
    state.inq = null;
    $('inq-results').hidden = true;
    $('qat-results').hidden = false;
    $('qat-compare-wrap').hidden = true;
    $('fig-qb-alloc').hidden = !qb;
    $('qb-bits').hidden = true;
    $('fig-qat-classes').hidden = !qb;
    $('qat-compare-title').textContent = `PTQ against ${qb ? 'QBitOpt' : 'QAT'} on the evaluation images`;
    renderQatEpochs();
    drawQatCurve();
    drawQbChart();
  }, async (run) => {
    const onProgress = (p) => {
      if (state.running !== run) return;
      if (p.allocated) {
        state.qat.allocations.push(p.allocated);
        drawQbChart();
      }
      if (p.epochStats) {
        state.qat.history.push(p.epochStats);
        renderQatEpochs();
        drawQatCurve();
      }
      if (t0 === null) {
        t0 = p.seconds;
        const e0 = p.epochStats;
        const a0 = p.allocated;
        setRunStatus(`${intro}: the PTQ start${a0 ? ` (bits allocated: ${a0.avgWbits.toFixed(2)} per weight${s.qbA != null ? `, ${a0.avgAbits.toFixed(2)} per activation` : ''})` : ''} scores ${e0 && e0.valTop1 != null ? pct(e0.valTop1) : '—'} on the held-out images; training…`);
      }
      $('progress').value = p.steps ? p.step / p.steps : 0;
      const rate = p.step > 0 ? (p.seconds - t0) / p.step : NaN;
      const left = rate * (p.steps - p.step);
      const loss = p.loss != null ? ` · loss ${p.loss.toFixed(4)}` : '';
      const moved = p.allocated && p.step > 0 ? ` · bits allocated again at step ${p.allocated.step} (${p.allocated.changed} changed)` : '';
      $('progress-text').textContent = p.step === 0 ? `Fine-tuning ${name}: training…`
        : `Fine-tuning ${name}: epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}${loss}${moved}${p.step < p.steps ? ` · ${fmtTime(left)} left` : ' · evaluating'}`;
      $('progress').setAttribute('aria-valuetext', `Fine-tuning: step ${p.step} of ${p.steps}, epoch ${p.epoch} of ${p.epochs}`);
    };
    const { train, held } = qatImages(s);
    intro = `Fine-tuning ${name} for ${epochs} epoch${epochs > 1 ? 's' : ''} on ${train.toLocaleString()} training images (${held.toLocaleString()} held out)`;
    setRunStatus(`${intro}: quantizing and computing the FP32 model’s outputs first${qb ? ', then the first allocation of bits' : ''}…`);
    const r = await state.primary.call('qat', qatPayload(s), { onProgress });
    state.qat.result = r;
    state.qat.history = r.history;
    state.qat.allocations = r.allocations;
    const lastE = r.history[r.history.length - 1];
    if (t0 !== null && r.trainImages) state.qatRate = Math.max(1e-5, (lastE.seconds - t0) / (r.trainImages * epochs));
    $('progress').value = 1;
    $('progress-text').textContent = `Fine-tuning ${name}: ${r.history.length - 1} epoch${r.history.length > 2 ? 's' : ''} done`;
    const secs = (performance.now() - run.started) / 1000;
    setRunStatus(qb
      ? `Fine-tuning done in ${fmtTime(secs)}: ${name} after QBitOpt (epoch ${r.bestEpoch}, ${r.avgWbits.toFixed(2)} bits per weight, ${r.avgAbits.toFixed(2)} per activation) against PTQ below.`
      : `Fine-tuning done in ${fmtTime(secs)}: ${name} after QAT (epoch ${r.bestEpoch}) against PTQ below.`, 'done');
    renderQat();
    renderQatEstimate();
    $('qat').scrollIntoView({ block: 'start' });
  });
}

// One row per evaluated epoch so far.
export function renderQatEpochs() {
  const q = state.qat;
  if (!q) return;
  const best = q.result ? q.result.bestEpoch : null;
  let html = `<caption class="sr">Fine-tuning ${esc(q.name)}: one row per epoch</caption><thead><tr><th scope="col" data-term="epoch">Epoch</th>
    <th scope="col" data-term="loss">Training loss<br><span class="sub">mean over the epoch</span></th><th scope="col" data-term="held-out">Validation top-1<br><span class="sub">held-out images</span></th>
    <th scope="col" data-term="worst-class">Worst class<br><span class="sub">held-out images</span></th><th scope="col" data-term="lr">Learning rate<br><span class="sub">at the epoch's end</span></th>
    <th scope="col">Time<br><span class="sub">since the start</span></th></tr></thead><tbody>`;
  if (!q.history.length && !q.cancelled) html += `<tr><td colspan="6">Quantizing (PTQ) and computing the FP32 model’s outputs on the training images${q.method === 'qbitopt' ? ', then allocating the bits' : ''}…</td></tr>`;
  for (const e of q.history) {
    const w = e.valWorstClass;
    html += `<tr data-epoch="${e.epoch}"${e.epoch === best ? ' class="best"' : ''}><th scope="row">${e.epoch === 0 ? '0 (PTQ)' : e.epoch}${e.epoch === best ? ' <span class="sub">kept (best)</span>' : ''}</th>
      <td>${e.trainLoss == null ? '—' : e.trainLoss.toFixed(4)}</td><td class="top1">${pct(e.valTop1, 2)}</td>
      <td class="worst">${w ? `${esc(w.label)} ${pct(w.accuracy, 1)}` : '—'}</td><td>${e.epoch === 0 ? '—' : e.lr.toExponential(1)}</td><td>${fmtTime(e.seconds)}</td></tr>`;
  }
  if (q.cancelled) html += `<tr class="cancelled"><td colspan="6">Cancelled${q.history.length ? ` during epoch ${q.history.length} of ${q.epochs}` : ' before training began'}.</td></tr>`;
  $('qat-epochs-table').innerHTML = `${html}</tbody>`;
}

export function drawQatCurve() {
  const q = state.qat;
  if (!q) return;
  const fp32 = q.result ? q.result.validationFp32 : null;
  if (!q.history.some((e) => e.valTop1 != null)) { $('plot-qat-curve').innerHTML = '<p class="hint">The curve appears once the PTQ start is evaluated.</p>'; return; }
  drawChart('plot-qat-curve', () => learningCurve($('plot-qat-curve'), q.history, { epochs: q.epochs, fp32, best: q.result ? q.result.bestEpoch : null }),
    `bitlens-qat-${q.name.replace(/\s+/g, '-')}-curve`);
}

// QBitOpt: the bits of every layer (and point) at each allocation so far, the kept one framed once the run is done.
export function drawQbChart() {
  const q = state.qat;
  if (!q || q.method !== 'qbitopt') return;
  if (!q.allocations.length) { $('plot-qb-alloc').innerHTML = '<p class="hint">The chart appears once the first allocation is made (after PTQ and a few sensitivity batches).</p>'; return; }
  const s = q.settings;
  const r = q.result;
  drawChart('plot-qb-alloc', () => bitAllocationChart($('plot-qb-alloc'), q.allocations, {
    layers: state.modelInfo.layers, points: state.modelInfo.points, kept: r ? r.keptAllocation : null,
    budget: { weights: s.qbW, activations: s.qbA },
  }), `bitlens-qbitopt-${q.name.replace(/\s+/g, '-')}-allocations`);
}

// A row of the comparison on the evaluation images (FP32, PTQ, the fine-tuned model), with the change against `base`.
export function compareRow(key, label, e, sizeBytes, base) {
  const w = e.worstClass;
  const dTop = base ? e.top1 - base.top1 : null;
  const dWorst = base && w && base.worstClass ? w.accuracy - base.worstClass.accuracy : null;
  const delta = (d) => (d == null ? '' : ` <span class="sub">${d >= 0 ? '+' : '−'}${Math.abs(100 * d).toFixed(1)} pt vs PTQ</span>`);
  const cls = (d) => (d == null ? '' : d > 0.0005 ? ' good' : d < -0.0005 ? ' bad' : '');
  return `<tr data-model="${key}"${key === 'fp32' ? ' class="fp32"' : ''}><th scope="row">${label}</th>
    <td class="top1${cls(dTop)}">${pct(e.top1, 2)}${delta(dTop)}</td>
    <td class="worst${cls(dWorst)}">${w ? `${esc(w.label)} ${pct(w.accuracy, 1)}` : '—'}${delta(dWorst)}</td><td>${kb(sizeBytes)}</td></tr>`;
}
export const compareHead = (caption) => `<caption class="sr">${caption}</caption><thead><tr><th scope="col">Model</th>
    <th scope="col" data-term="top1">Top-1</th><th scope="col" data-term="worst-class">Worst class</th><th scope="col" data-term="size">Model size</th></tr></thead><tbody>`;

// After the run: the epochs with the kept one marked, the curve with FP32's lines, and PTQ against QAT on the evaluation
// images (QBitOpt: also the allocations with the kept one framed, the bits it uses, and per class).
export function renderQat() {
  const q = state.qat;
  if (!q || !q.result) return;
  const r = q.result;
  const qb = q.method === 'qbitopt';
  const tuned = qb ? 'QBitOpt' : 'QAT';
  renderQatEpochs();
  drawQatCurve();
  drawQbChart();
  $('qat-compare').innerHTML = `${compareHead(`PTQ against ${tuned} on the evaluation images`)}
    ${compareRow('fp32', 'FP32', state.fp32, state.modelInfo.parameters * 4, null)}
    ${compareRow('ptq', `${esc(q.name)} PTQ <span class="sub">epoch 0${qb ? ', the first allocation' : ''}</span>`, r.ptq, r.ptqBytes, null)}
    ${compareRow('qat', `${esc(q.name)} ${tuned} <span class="sub">epoch ${r.bestEpoch} of ${q.epochs}</span>`, r.tuned, r.modelBytes, r.ptq)}</tbody>`;
  const s = q.settings;
  const kept = r.bestEpoch === 0
    ? 'No epoch beat the PTQ start on the held-out images, so the PTQ model is kept (more epochs or more training images may help).'
    : `Epoch ${r.bestEpoch} had the best top-1 on the ${r.valImages.toLocaleString()} held-out images and is kept.`;
  $('qat-note').textContent = `${kept} Trained on ${r.trainImages.toLocaleString()} images from ${state.train ? state.train.name : 'the training set'} `
    + `(AdamW, peak learning rate 1e-4 with warm-up and cosine decay, batches of 64, distilled from FP32); `
    + `PTQ calibrated on ${s.calibSize} of them (seed 0); weights ${s.weights} (${s.granularity}), softmax ${s.softmax}. `
    + `Evaluated on the ${r.tuned.n.toLocaleString()} evaluation images, as the sweep above.`;
  if (qb) {
    const a = r.allocations[r.keptAllocation];
    const moved = r.allocations.slice(1).reduce((n, x) => n + x.changed, 0);
    $('qb-bits').textContent = `The kept model uses the allocation from step ${a.step} (${r.keptAllocation + 1} of ${r.allocations.length}): `
      + `${r.avgWbits.toFixed(3)} bits per weight on average (budget ${s.qbW}), `
      + `${r.avgAbits.toFixed(3)} per activation value${s.qbA != null ? ` (budget ${s.qbA})` : ' (all at 8 bits)'}; `
      + `${moved} change${moved === 1 ? '' : 's'} of a layer's${s.qbA != null ? ' or point\'s' : ''} bits after the first allocation; `
      + `sensitivities weighted for ${s.qbObjective === 'worst' ? 'the hard classes' : 'the average'}.`;
    $('qb-bits').hidden = false;
    drawChart('plot-qat-classes', () => classShiftChart($('plot-qat-classes'), state.fp32.labels, { fp32: state.fp32.perClass, ptq: r.ptq.perClass, tuned: r.tuned.perClass },
      { ptq: `${q.name} PTQ`, tuned: `${q.name} QBitOpt` }), `bitlens-qbitopt-${q.name.replace(/\s+/g, '-')}-classes`);
  }
  $('qat-compare-wrap').hidden = false;
}

// ---------- INQ (power-of-two weights, incrementally) ---------------------------------------------

export function runInq(s) {
  const name = `W${s.inqW}A${s.inqA}`;
  const { partitions } = parsePartitions(s.inqPartitions);
  let t0 = null;  // the run's clock when training began (after PTQ and the teacher's outputs)
  let intro = `INQ ${name}`;
  return fineTuneRun(() => {
    state.inq = { name, settings: s, partitions, history: [], result: null };
    state.qat = null;
    $('qat-results').hidden = true;
    $('inq-results').hidden = false;
    $('inq-compare-wrap').hidden = true;
    renderInqSteps();
    drawInqChart();
  }, async (run) => {
    const onProgress = (p) => {
      if (state.running !== run) return;
      if (p.stepStats) {
        state.inq.history.push(p.stepStats);
        renderInqSteps();
        drawInqChart();
      }
      if (t0 === null) {
        t0 = p.seconds;
        const s0 = p.stepStats;
        setRunStatus(`${intro}: PTQ with power-of-two weights scores ${s0 && s0.valTop1 != null ? pct(s0.valTop1) : '—'} on the held-out images; freezing and retraining…`);
      }
      $('progress').value = p.iterations ? p.iteration / p.iterations : p.step / p.steps;
      const rate = p.iteration > 0 ? (p.seconds - t0) / p.iteration : NaN;
      const left = rate * (p.iterations - p.iteration);
      const cur = Math.min(p.step + 1, p.steps);  // the partition step in progress (or next)
      const loss = p.loss != null ? ` · loss ${p.loss.toFixed(4)}` : '';
      $('progress-text').textContent = p.step === p.steps ? `INQ ${name}: every weight frozen · evaluating`
        : partitions[cur - 1] >= 100 ? `INQ ${name}: step ${cur}/${p.steps}: freezing every weight…`
          : `INQ ${name}: step ${cur}/${p.steps} (${partitions[cur - 1]}% frozen), training step ${p.iteration}/${p.iterations}${loss}${p.iteration < p.iterations ? ` · ${fmtTime(left)} left` : ''}`;
      $('progress').setAttribute('aria-valuetext', `INQ: partition step ${cur} of ${p.steps}, training step ${p.iteration} of ${p.iterations}`);
    };
    const { train, held } = qatImages(s);
    intro = `INQ ${name} in ${partitions.length} step${partitions.length > 1 ? 's' : ''} on ${train.toLocaleString()} training images (${held.toLocaleString()} held out)`;
    setRunStatus(`${intro}: quantizing and computing the FP32 model’s outputs first…`);
    const r = await state.primary.call('inq', inqPayload(s, partitions), { onProgress });
    state.inq.result = r;
    state.inq.history = r.history;
    const retrained = partitions.filter((p) => p < 100).length;
    const lastS = r.history[r.history.length - 1];
    if (t0 !== null && r.trainImages && retrained) state.qatRate = Math.max(1e-5, (lastS.seconds - t0) / (r.trainImages * s.inqEpochs * retrained));
    $('progress').value = 1;
    $('progress-text').textContent = `INQ ${name}: ${partitions.length} step${partitions.length > 1 ? 's' : ''} done`;
    const secs = (performance.now() - run.started) / 1000;
    const w = r.ptq.worstClass;
    setRunStatus(`INQ done in ${fmtTime(secs)}: ${name} with every weight a power of two; PTQ's worst class ${w ? `${w.label} ${pct(w.accuracy)} → ${pct(r.tuned.perClass[w.index])}` : '—'}, top-1 ${pct(r.ptq.top1)} → ${pct(r.tuned.top1)}.`, 'done');
    renderInq();
    renderQatEstimate();
    $('qat').scrollIntoView({ block: 'start' });
  });
}

// One row per partition step so far (0 = PTQ).
export function renderInqSteps() {
  const q = state.inq;
  if (!q) return;
  const worst = (w) => (w ? `${esc(w.label)} ${pct(w.accuracy, 1)}` : '—');
  let html = `<caption class="sr">INQ ${esc(q.name)}: one row per partition step</caption><thead><tr><th scope="col" rowspan="2">Step</th>
    <th scope="col" rowspan="2">Weights frozen<br><span class="sub">powers of two</span></th>
    <th scope="colgroup" colspan="2">Right after freezing<br><span class="sub">held-out images</span></th>
    <th scope="colgroup" colspan="2">After retraining<br><span class="sub">held-out images</span></th>
    <th scope="col" rowspan="2">Training loss<br><span class="sub">mean over the step</span></th><th scope="col" rowspan="2">Time<br><span class="sub">since the start</span></th></tr>
    <tr><th scope="col" data-term="top1">Top-1</th><th scope="col" data-term="worst-class">Worst class</th><th scope="col" data-term="top1">Top-1</th><th scope="col" data-term="worst-class">Worst class</th></tr></thead><tbody>`;
  if (!q.history.length && !q.cancelled) html += '<tr><td colspan="8">Quantizing (PTQ with power-of-two weights) and computing the FP32 model’s outputs on the training images…</td></tr>';
  for (const st of q.history) {
    const retrains = st.step > 0 && st.partition < 100;
    html += `<tr data-step="${st.step}"><th scope="row">${st.step === 0 ? '0 (PTQ)' : st.step}</th>
      <td>${st.step === 0 ? 'all at once' : `${st.partition}%`}</td>
      <td class="frozen-top1">${pct(st.frozenTop1, 2)}</td><td class="frozen-worst">${st.step === 0 ? worst(st.valWorstClass) : pct(st.frozenWorst, 1)}</td>
      <td class="top1">${retrains ? pct(st.valTop1, 2) : '—'}</td><td class="worst">${retrains ? worst(st.valWorstClass) : '—'}</td>
      <td>${st.trainLoss == null ? '—' : st.trainLoss.toFixed(4)}</td><td>${fmtTime(st.seconds)}</td></tr>`;
  }
  if (q.cancelled) html += `<tr class="cancelled"><td colspan="8">Cancelled${q.history.length ? ` during step ${q.history.length} of ${q.partitions.length}` : ' before training began'}.</td></tr>`;
  $('inq-steps-table').innerHTML = `${html}</tbody>`;
}

export function drawInqChart() {
  const q = state.inq;
  if (!q) return;
  if (!q.history.some((st) => st.valTop1 != null)) { $('plot-inq-steps').innerHTML = '<p class="hint">The chart appears once the PTQ start is evaluated.</p>'; return; }
  drawChart('plot-inq-steps', () => inqStepChart($('plot-inq-steps'), q.history, { partitions: q.partitions, fp32: q.result ? q.result.validationFp32 : null }),
    `bitlens-inq-${q.name}-steps`);
}

// After the run: the steps with FP32's lines, PTQ against INQ on the evaluation images, per class.
export function renderInq() {
  const q = state.inq;
  if (!q || !q.result) return;
  const r = q.result;
  renderInqSteps();
  drawInqChart();
  $('inq-compare').innerHTML = `${compareHead('PTQ against INQ on the evaluation images')}
    ${compareRow('fp32', 'FP32', state.fp32, state.modelInfo.parameters * 4, null)}
    ${compareRow('ptq', `${esc(q.name)} PTQ <span class="sub">power-of-two weights at once</span>`, r.ptq, r.modelBytes, null)}
    ${compareRow('inq', `${esc(q.name)} INQ <span class="sub">${q.partitions.join(' → ')}%</span>`, r.tuned, r.modelBytes, r.ptq)}</tbody>`;
  drawChart('plot-inq-classes', () => classShiftChart($('plot-inq-classes'), state.fp32.labels, { fp32: state.fp32.perClass, ptq: r.ptq.perClass, tuned: r.tuned.perClass },
    { ptq: `${q.name} PTQ`, tuned: `${q.name} INQ` }), `bitlens-inq-${q.name}-classes`);
  const s = q.settings;
  $('inq-note').textContent = `Every weight is a power of two (${s.inqW} bits: 0 or ±2^n, per ${s.granularity === 'channel' ? 'output channel' : 'layer'}). `
    + `Retrained ${s.inqEpochs} epoch${s.inqEpochs > 1 ? 's' : ''} after each partition but the last, on ${r.trainImages.toLocaleString()} images from ${state.train ? state.train.name : 'the training set'} `
    + `(AdamW, peak learning rate 1e-4 with warm-up and cosine decay in each step, batches of 64, distilled from FP32; ${r.valImages.toLocaleString()} held out); `
    + `activations at ${s.inqA} bits, calibrated on ${s.calibSize} of them (seed 0), softmax ${s.softmax}. `
    + `Evaluated on the ${r.tuned.n.toLocaleString()} evaluation images, as the sweep above.`;
  $('inq-compare-wrap').hidden = false;
}
