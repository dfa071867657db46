// Mixed precision: sensitivities, the plan under a bit or size budget, and the plan against uniform over the seeds.
import { isStopped } from './workers.js';
import { allocationChart, sensitivityChart } from '../charts.js';
import { esc, fmtTime, kb, pct, pp, showError } from './format.js';
import { drawChart, lost, renderResults } from './results.js';
import { $, state } from './state.js';
import { setRunStatus, updateRunButton } from './status.js';
import { checkSweep, runFailed } from './sweep.js';
import { URL_NUMBERS, readSettings, syncUrl } from './url-state.js';

// The budget input means bits or kB; switching sets a sensible starting value.
export function setBudgetKind() {
  const byBytes = $('mx-kind').value === 'kb';
  const el = $('mx-budget');
  $('mx-budget-label').textContent = byBytes ? 'kB' : 'Bits';
  if (byBytes) {
    el.min = '1'; el.removeAttribute('max'); el.step = '1';
    const params = state.modelInfo ? state.modelInfo.parameters : 0;
    el.value = params ? String(Math.ceil(params * 4 / 5 / 1000)) : '100';  // a fifth of the FP32 size
  } else {
    el.min = '2'; el.max = '8'; el.step = '0.25'; el.value = '4';
  }
}

// The panel's own settings, in the ranges a link may carry (URL_NUMBERS), so that every run the panel starts can be
// shared and reopened: the budget in bits is an average over the candidates 2–8 (the library would call a lower one
// infeasible), the sensitivity images at most 1,024 (each costs a forward pass per layer and candidate).
function mixedProblem(s) {
  const [, bmin, bmax] = URL_NUMBERS.budget, [, , kbMax] = URL_NUMBERS.maxKB, [, smin, smax] = URL_NUMBERS.sensSize;
  if (s.mxKind !== 'kb' && !(s.mxBudget >= bmin && s.mxBudget <= bmax)) return `The budget must be an average bit-width from ${bmin} to ${bmax}, found ${s.mxBudget}.`;
  if (s.mxKind === 'kb' && !(s.mxBudget > 0 && s.mxBudget <= kbMax)) return `The model size must be a positive number of kB, found ${s.mxBudget}.`;
  if (!(s.mxSens >= smin && s.mxSens <= smax)) return `Use ${smin} to ${smax.toLocaleString('en')} sensitivity images, found ${s.mxSens}.`;
  return null;
}

export async function runMixed() {
  showError('mx-error', '');
  const s = readSettings();
  const byBytes = s.mxKind === 'kb';
  const problem = (await checkSweep({ configs: ['w4a4'], seeds: s.seeds, calibSize: s.calibSize }))
    || mixedProblem(s);
  if (problem) { showError('mx-error', problem); return; }
  syncUrl();
  const run = { clients: [state.primary], cancelled: false, started: performance.now() };
  state.running = run;
  updateRunButton();
  const phaseName = { sensitivities: 'Measuring sensitivities', comparison: 'Comparing with uniform' };
  let phaseStart = performance.now(), phase = '';
  const onProgress = ({ done, total, phase: ph }) => {
    if (ph !== phase) { phase = ph; phaseStart = performance.now(); }
    $('progress').value = total ? done / total : 0;
    const el = (performance.now() - phaseStart) / 1000;
    const eta = done > 0 ? (el / done) * (total - done) : NaN;
    const unit = ph === 'sensitivities' ? 'steps' : 'runs';
    $('progress-text').textContent = `${phaseName[ph] || ph}: ${done} / ${total} ${unit}${done > 0 && done < total ? ` · about ${fmtTime(eta)} left` : ''}`;
    $('progress').setAttribute('aria-valuetext', `${phaseName[ph] || ph}: ${done} of ${total} ${unit} done`);
  };
  setRunStatus(`Mixed precision ${byBytes ? `in ${s.mxBudget} kB` : `at ${s.mxBudget} bits`}: measuring each layer's and point's sensitivity, then comparing with uniform over ${s.seeds} seed${s.seeds > 1 ? 's' : ''}…`);
  try {
    const r = await state.primary.call('mixed', {
      quant: { softmax: s.softmax, weights: s.weights, granularity: s.granularity },
      objective: s.mxObjective, sensSize: s.mxSens, seeds: s.seeds, calibSize: s.calibSize,
      ...(byBytes ? { maxBytes: Math.floor(s.mxBudget * 1000) } : { budget: s.mxBudget }),
    }, { onProgress });
    state.mixed = { ...r, settings: s };
    const secs = (performance.now() - run.started) / 1000;
    setRunStatus(`Mixed precision done in ${fmtTime(secs)}.`, 'done');
    renderMixed();
    $('mixed').scrollIntoView({ block: 'start' });
  } catch (e) {
    if (isStopped(e) || run.cancelled) return;
    runFailed('mx-error', `Mixed precision stopped: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

// Average bits per value over items, with `bitsOf(name)` per item.
export function averageBits(items, bitsOf) {
  let v = 0, b = 0;
  for (const it of items) { v += it.values; b += it.values * bitsOf(it.name); }
  return v ? b / v : NaN;
}

export function renderMixed() {
  const m = state.mixed;
  if (!m) return;
  $('mx-results').hidden = false;
  const { plan, uniform, sweep: r } = m;
  const [u, x] = r.configs;
  const bits = {
    [u.name]: { w: averageBits(plan.layers, (n) => uniform.layerBits[n]), a: averageBits(plan.points, (n) => uniform.pointBits[n]) },
    mixed: { w: plan.weightBitsAvg, a: plan.actBitsAvg },
  };
  let html = `<caption class="sr">Uniform against mixed precision at a budget of ${m.budget} bits</caption><thead><tr><th scope="col" data-term="mixed">Configuration</th>
    <th scope="col" data-term="weights">Bits<br><span class="sub">per weight</span></th><th scope="col" data-term="activations">Bits<br><span class="sub">per activation</span></th><th scope="col" data-term="top1">Top-1<br><span class="sub">mean ± std</span></th>
    <th scope="col" data-term="worst-class">Worst class<br><span class="sub">mean over seeds (drop)</span></th><th scope="col" data-term="worst-case">Worst case<br><span class="sub">any class, any seed</span></th><th scope="col" data-term="size">Model size</th></tr></thead><tbody>`;
  for (const c of [u, x]) {
    const b = bits[c.name];
    const over = m.maxBytes ? c.modelBytes > m.maxBytes : b.w > m.budget + 1e-9;
    html += `<tr data-config="${esc(c.name)}"><th scope="row">${esc(c.name === 'mixed' ? `mixed (${m.objective === 'worst' ? 'hard classes' : 'mean'})` : c.name)}</th>
      <td class="bits-w${over && !m.maxBytes ? ' over' : ''}">${b.w.toFixed(2)}${over && !m.maxBytes ? ' <span class="sub">over budget: edges at 8 bits</span>' : ''}</td>
      <td class="bits-a">${b.a.toFixed(2)}</td>
      <td class="top1">${pct(c.top1Mean, 2)} ± ${(100 * c.top1Std).toFixed(2)}</td>
      <td class="worst${lost(c.worstClass.drop) ? ' bad' : ''}">${esc(c.worstClass.label)} ${pct(c.worstClass.accuracy)} <span class="sub">(${pp(c.worstClass.drop)})</span></td>
      <td class="worst-case${lost(c.worstCase.drop) ? ' bad' : ''}">${esc(c.worstCase.label)} ${pct(c.worstCase.accuracy)} <span class="sub">seed ${c.worstCase.seed} (${pp(c.worstCase.drop)})</span></td>
      <td class="size${over && m.maxBytes ? ' over' : ''}">${kb(c.modelBytes)}${over && m.maxBytes ? ' <span class="sub">over budget: edges at 8 bits</span>' : ''}</td></tr>`;
  }
  $('mx-table').innerHTML = `${html}</tbody>`;
  $('mx-legend').hidden = !$('mx-table').querySelector('td.bad');
  const s = m.settings;
  const budgetText = m.maxBytes ? `Budget ${kb(m.maxBytes)} for the whole model: the plan's model is ${kb(plan.modelBytes)} (${plan.weightBitsAvg.toFixed(3)} bits per weight)`
    : `Budget ${m.budget} bits: the plan uses ${plan.weightBitsAvg.toFixed(3)} bits per weight (${plan.weightCost.toLocaleString()} of ${plan.weightBudget.toLocaleString()} bits)`;
  $('mx-note').textContent = `${budgetText} `
    + `and ${plan.actBitsAvg.toFixed(3)} per activation value. Sensitivities on ${m.sensSize} calibration images (seed 0); `
    + `both configurations quantized with ${s.seeds} calibration draw${s.seeds > 1 ? 's' : ''} of ${s.calibSize} images and evaluated on ${r.evalN} images `
    + `(weights ${s.weights}, ${s.granularity}; softmax ${s.softmax}). Uniform ${u.name} keeps the patch embedding and the head at 8 bits, as everywhere on this page.`;
  drawChart('plot-mx-layers', () => allocationChart($('plot-mx-layers'), plan.layers, uniform.layerBits, u.name), 'bitlens-mixed-layers');
  drawChart('plot-mx-points', () => allocationChart($('plot-mx-points'), plan.points, uniform.pointBits, u.name), 'bitlens-mixed-points');
  drawChart('plot-mx-sens', () => sensitivityChart($('plot-mx-sens'), plan.layers), 'bitlens-mixed-sensitivity');
}

// The mixed-precision comparison in the main results view: its table, charts, confusion matrices,
// sample view and model download (the comparison used no calibration shift and no groups).
export function exploreMixed() {
  const m = state.mixed;
  if (!m) return;
  state.result = m.sweep;
  state.resultWorkers = 0;
  state.resultSettings = { ...m.settings, calibClasses: [], calibSkew: 0, calibCorrupt: null, evalCorrupt: null, groups: '' };
  state.samplePicked = false;
  renderResults();
  $('results').scrollIntoView({ block: 'start' });
}
