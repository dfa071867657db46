// SOS block reconstruction of the ticked configurations: progress per stage and block, stages and blocks compared.
import { isStopped } from './workers.js';
import { sosStageChart } from '../charts.js';
import { esc, fmtTime, kb, parseWA, pct, showError } from './format.js';
import { drawChart } from './results.js';
import { $, SOS_BATCH, state } from './state.js';
import { setRunStatus, updateRunButton } from './status.js';
import { runFailed } from './sweep.js';
import { syncUrl } from './url-state.js';
import { libraryProblem, workerProblem } from './finetune.js';

// One configuration's options for model.quantize({ method: 'sos', ... }) (the worker adds `calib`).
const sosQuant = (s, c) => ({ wbits: c.wbits, abits: c.abits, softmax: s.softmax, weights: s.weights, granularity: s.granularity, calibSize: s.calibSize,
  reconIters: s.reconIters, reconBatch: Math.min(SOS_BATCH, s.calibSize) });

// The settings as the library checks them (model.quantize()'s limits and messages), then the calibration size against
// the images loaded.
export function validateSos(s) {
  const configs = s.configs.map(parseWA).filter(Boolean);
  if (!configs.length) return 'Tick at least one bit-width configuration to reconstruct.';
  const problem = libraryProblem('sos', sosQuant(s, configs[0]));
  if (problem) return problem;
  if (state.data && s.calibSize > state.data.poolN) return `The calibration size (${s.calibSize}) is larger than the ${state.data.poolN} images loaded.`;
  return null;
}

// Each ticked configuration in turn, in the primary worker: progress per stage, block and iteration; the
// table and the chart fill as stages finish.
export async function runSos(s) {
  let problem = validateSos(s);
  for (const c of s.configs.map(parseWA).filter(Boolean)) problem = problem || await workerProblem('sos', sosQuant(s, c), 'run-btn');
  if (problem) { showError('run-error', problem); return; }
  syncUrl();
  const configs = s.configs.map(parseWA).filter(Boolean);
  const run = { clients: [state.primary], cancelled: false, started: performance.now() };
  state.running = run;
  updateRunButton();
  const sos = { settings: s, runs: configs.map((c) => ({ name: c.name, stages: [], blocks: [], result: null })), done: false, cancelled: false, current: 0 };
  state.sos = sos;
  $('sos').hidden = false;
  renderSos();
  $('progress').value = 0;
  $('progress-text').textContent = '';
  let doneBefore = 0;  // iterations of the configurations already finished
  const onProgress = (i) => (p) => {
    if (state.running !== run) return;
    const r = sos.runs[i];
    if (p.stageResults) r.stages.push(...p.stageResults);
    if (p.blockResults) r.blocks.push(...p.blockResults);
    if (p.stageResults || p.blockResults) renderSos();
    const all = p.total * configs.length;
    const d = doneBefore + p.done;
    $('progress').value = all ? d / all : (i + (p.done === p.total ? 1 : 0)) / configs.length;
    const el = (performance.now() - run.started) / 1000;
    const left = d > 0 ? (el / d) * (all - d) : NaN;
    const of = configs.length > 1 ? ` (${i + 1} of ${configs.length})` : '';
    $('progress-text').textContent = p.done === 0
      ? `${r.name}${of}: PTQ and the FP32 block outputs…`
      : `${r.name}${of} · stage ${p.stage} · block ${p.block + 1}/${p.blocks} · iteration ${p.iter}/${p.iters} · MSE ${p.loss.toExponential(2)}${d < all ? ` · ${fmtTime(left)} left` : ''}`;
    $('progress').setAttribute('aria-valuetext', `SOS ${r.name}: stage ${p.stage}, block ${p.block + 1} of ${p.blocks}, iteration ${p.iter} of ${p.iters}`);
  };
  setRunStatus(`SOS reconstruction of ${configs.map((c) => c.name).join(', ')}: ${s.reconIters} iterations per block and stage on ${s.calibSize} calibration images (seed 0), every stage evaluated on ${state.data.evalN.toLocaleString()} images…`);
  try {
    for (let i = 0; i < configs.length; i++) {
      sos.current = i;
      const c = configs[i];
      const r = await state.primary.call('sos', {
        name: c.name, first: i === 0,
        quant: sosQuant(s, c),
      }, { onProgress: onProgress(i) });
      Object.assign(sos.runs[i], { stages: r.stages, blocks: r.blocks, result: r });
      doneBefore += 2 * state.modelInfo.depth * s.reconIters;
      renderSos();
    }
    sos.done = true;
    $('progress').value = 1;
    $('progress-text').textContent = `SOS: ${configs.length} configuration${configs.length > 1 ? 's' : ''} reconstructed`;
    const secs = (performance.now() - run.started) / 1000;
    const story = sos.runs.map((r) => {
      const w = sosWorst(r);
      return w ? `${r.name} ${w.label} ${pct(w.ptq)} → ${pct(w.final)}` : r.name;
    }).join('; ');
    setRunStatus(`SOS reconstruction done in ${fmtTime(secs)}: PTQ's worst class before and after, ${story}.`, 'done');
    renderSos();
    $('sos').scrollIntoView({ block: 'start' });
  } catch (e) {
    if (isStopped(e) || run.cancelled) return;
    sos.failed = true;
    renderSos();
    runFailed('run-error', `The SOS reconstruction stopped: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

// The class PTQ (stage 0) hurts most in a run, with its accuracy after PTQ and after the last stage so far.
export function sosWorst(r) {
  const ev = r.stages.filter((st) => st.perClass);
  if (!ev.length || !ev[0].worstClass) return null;
  const k = ev[0].worstClass.index;
  return { index: k, label: ev[0].worstClass.label, ptq: ev[0].perClass[k], final: ev[ev.length - 1].perClass[k], stage: ev[ev.length - 1].stage };
}

export function renderSos() {
  const q = state.sos;
  if (!q) return;
  const fp = state.fp32;
  const cell = (r, k, i) => {
    const st = r.stages.find((x) => x.stage === k);
    if (!st) return `<td>${!q.done && !q.cancelled && !q.failed && i === q.current ? '…' : '—'}</td>`;
    if (st.top1 == null) return '<td>done</td>';
    const base = r.stages.find((x) => x.stage === 0);
    const w = sosWorst(r);
    // Green or red: better or worse than PTQ, for top-1 and for PTQ's worst class separately.
    const tone = (d) => (d == null ? '' : d > 0.0005 ? ' up' : d < -0.0005 ? ' down' : '');
    const top = `<span class="top1${tone(base && k > 0 ? st.top1 - base.top1 : null)}">${pct(st.top1, 2)}</span>`;
    const worstNow = w ? `<span class="sub${tone(k > 0 ? st.perClass[w.index] - w.ptq : null)}">${esc(w.label)} ${pct(st.perClass[w.index])}${st.worstClass && st.worstClass.index !== w.index ? `; worst now ${esc(st.worstClass.label)} ${pct(st.worstClass.accuracy)}` : ''}</span>` : '';
    return `<td class="stage-${k}" data-stage="${k}">${top}${worstNow}</td>`;
  };
  let html = `<caption class="sr">SOS reconstruction: top-1 and PTQ's worst class after each stage</caption><thead><tr><th scope="col">Configuration</th>
    <th scope="col" data-term="ptq">PTQ<br><span class="sub">stage 0, same draw</span></th><th scope="col" data-term="sos">Stage 1<br><span class="sub">activations reconstructed</span></th>
    <th scope="col" data-term="sos">Stage 2<br><span class="sub">scales folded</span></th><th scope="col" data-term="sos">Stage 3<br><span class="sub">weights reconstructed</span></th>
    <th scope="col" data-term="size">Model size</th><th scope="col">Download</th></tr></thead><tbody>`;
  html += `<tr class="fp32"><th scope="row">FP32</th><td colspan="4">${fp ? `${pct(fp.top1, 2)} <span class="sub">weakest class ${esc(fp.labels[fp.worstClass.index])} ${pct(fp.worstClass.accuracy)}</span>` : '—'}</td><td>${kb(state.modelInfo.parameters * 4)}</td><td></td></tr>`;
  q.runs.forEach((r, i) => {
    html += `<tr data-config="${esc(r.name)}"><th scope="row">${esc(r.name)}</th>${[0, 1, 2, 3].map((k) => cell(r, k, i)).join('')}
      <td>${r.result ? kb(r.result.modelBytes) : '—'}</td>
      <td>${r.result && !q.lost ? `<button type="button" class="sos-export" data-sos-export="${esc(r.name)}">.safetensors</button>` : '—'}</td></tr>`;
  });
  if (q.cancelled) html += `<tr class="cancelled"><td colspan="7">Cancelled during ${esc(q.runs[q.current].name)}.</td></tr>`;
  $('sos-table').innerHTML = `${html}</tbody>`;
  const s = q.settings;
  $('sos-note').textContent = `Each configuration calibrated on ${s.calibSize} of the ${state.data.poolN.toLocaleString()} loaded images (seed 0), `
    + `${s.reconIters} Adam iterations per block and stage on batches of ${Math.min(SOS_BATCH, s.calibSize)}; weights ${s.weights} (${s.granularity}), softmax ${s.softmax}. `
    + `Evaluated on the ${state.data.evalN.toLocaleString()} evaluation images after every stage. Below each top-1: the class PTQ hurts most, and how it fares.`;
  drawSosChart();
  // Blocks: the reconstruction error before → after, per stage.
  const depth = state.modelInfo.depth;
  let bh = `<caption class="sr">Reconstruction error per block</caption><thead><tr><th scope="col">Configuration, stage</th>${Array.from({ length: depth }, (_, b) => `<th scope="col">block ${b}</th>`).join('')}</tr></thead><tbody>`;
  for (const r of q.runs) {
    for (const stg of [1, 3]) {
      const bl = r.blocks.filter((b) => b.stage === stg);
      if (!bl.length) continue;
      bh += `<tr data-config="${esc(r.name)}" data-stage="${stg}"><th scope="row">${esc(r.name)}, stage ${stg}</th>${Array.from({ length: depth }, (_, b) => {
        const x = bl.find((y) => y.block === b);
        if (!x) return '<td>—</td>';
        const change = x.mseBefore > 0 ? (x.mseAfter - x.mseBefore) / x.mseBefore : 0;
        return `<td${change < -0.0005 ? ' class="good"' : ''}>${x.mseBefore.toExponential(2)} → ${x.mseAfter.toExponential(2)} <span class="sub">${change <= 0 ? '−' : '+'}${Math.abs(100 * change).toFixed(1)}%</span></td>`;
      }).join('')}</tr>`;
    }
  }
  $('sos-blocks').innerHTML = `${bh}</tbody>`;
}

export function drawSosChart() {
  const q = state.sos;
  if (!q) return;
  const runs = q.runs.filter((r) => r.stages.some((st) => st.perClass));
  if (!runs.length) { $('plot-sos-classes').innerHTML = '<p class="hint">The chart appears once PTQ (stage 0) is evaluated.</p>'; return; }
  drawChart('plot-sos-classes', () => sosStageChart($('plot-sos-classes'), runs, state.modelInfo.labels, state.fp32 ? state.fp32.perClass : null),
    `bitlens-sos-${runs.map((r) => r.name).join('-')}-stages`);
}
