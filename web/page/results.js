// The sweep's results: the table (red marks losses of 5 points or more), class groups, box plot, per-class bars,
// confusion matrices, and the exports (JSON; CSV as `bitlens sweep --csv` writes it, by the library).
import { barChart, boxLegend, boxPlot, chartSvg, confusionMatrix, svgToPng } from '../charts.js';
import { download, esc, kb, parseWA, pct, pp } from './format.js';
import { fillSampleConfigs, showSample } from './lessons.js';
import { $, state } from './state.js';
import { sameDrawEverySeed } from './status.js';

// A loss the results mark in red (the legend under the table says so): 5 points or more below FP32.
export const LOST = 0.05;
export const lost = (drop) => drop != null && Math.round(1000 * drop) >= 1000 * LOST;  // as printed, to 0.1 pt

export function renderResults() {
  const r = state.result;
  const s = state.resultSettings;
  if (!r) return;
  $('results').hidden = false;
  const fp32Bytes = state.modelInfo.parameters * 4;
  const fpWorst = r.fp32.perClass.reduce((w, v, k) => (v < r.fp32.perClass[w] ? k : w), 0);
  let html = `<caption class="sr">Accuracy per configuration</caption><thead><tr>
    <th scope="col" data-term="wa">Configuration</th><th scope="col" data-term="top1">Top-1<br><span class="sub">mean ± std (vs FP32)</span></th>
    <th scope="col" data-term="worst-class">Worst class<br><span class="sub">mean accuracy (drop)</span></th><th scope="col" data-term="worst-case">Worst case<br><span class="sub">class, seed (drop)</span></th>
    <th scope="col" data-term="largest-drop">Largest drop<br><span class="sub">class, seed</span></th><th scope="col" data-term="size">Model size</th><th scope="col" data-term="repair">Repair<br><span class="sub">by training</span></th></tr></thead><tbody>`;
  html += `<tr class="fp32"><th scope="row"><span data-term="fp32">FP32</span></th><td>${pct(r.fp32.top1)}</td>
    <td>${esc(r.labels[fpWorst])} ${pct(r.fp32.perClass[fpWorst])}</td><td>—</td><td>—</td><td>${kb(fp32Bytes)}</td><td></td></tr>`;
  for (const c of r.configs) {
    const drop = r.fp32.top1 - c.top1Mean;
    html += `<tr data-config="${esc(c.name)}"><th scope="row">${esc(c.name)}</th>
      <td class="top1${lost(drop) ? ' bad' : ''}">${pct(c.top1Mean)} ± ${(100 * c.top1Std).toFixed(1)} <span class="sub">(${pp(drop)})</span></td>
      <td class="worst${lost(c.worstClass.drop) ? ' bad' : ''}">${esc(c.worstClass.label)} ${pct(c.worstClass.accuracy)} <span class="sub">(${pp(c.worstClass.drop)})</span></td>
      <td class="worst-case${c.worstCase && lost(c.worstCase.drop) ? ' bad' : ''}">${c.worstCase ? `${esc(c.worstCase.label)} ${pct(c.worstCase.accuracy)} <span class="sub">seed ${c.worstCase.seed} (${pp(c.worstCase.drop)})</span>` : '—'}</td>
      <td>${c.largestSeedDrop ? `${esc(c.largestSeedDrop.label)} ${pp(c.largestSeedDrop.drop)} <span class="sub">seed ${c.largestSeedDrop.seed}</span>` : '—'}</td>
      <td>${kb(c.modelBytes)}${c.modelBytes ? ` <span class="sub">(${(fp32Bytes / c.modelBytes).toFixed(1)}× smaller)</span>` : ''}</td>
      <td>${parseWA(c.name) ? `<button type="button" class="qat-btn" data-qat="${esc(c.name)}"${state.running ? ' disabled' : ''}>Fine-tune…</button>` : '—'}</td></tr>`;
  }
  $('results-table').innerHTML = `${html}</tbody>`;
  $('results-legend').hidden = !$('results-table').querySelector('td.bad');
  renderGroups(r);
  const shift = [];
  if (s.calibClasses.length) shift.push(`calibrated on ${s.calibClasses.map((k) => r.labels[k]).join(', ')}`);
  if (s.calibSkew > 0) shift.push(`class skew ρ = ${s.calibSkew}`);
  if (s.calibCorrupt) shift.push(`calibration images corrupted (${s.calibCorrupt.type}, severity ${s.calibCorrupt.severity})`);
  if (s.evalCorrupt) shift.push(`evaluation images corrupted (${s.evalCorrupt.type}, severity ${s.evalCorrupt.severity})`);
  $('results-note').textContent = `${state.modelName} on ${state.data.evalN} images; weights ${s.weights} (${s.granularity}), softmax ${s.softmax}; `
    + `${s.seeds} calibration draw${s.seeds > 1 ? 's' : ''} of ${s.calibSize} images from the ${state.data.poolN} loaded`
    + `${shift.length ? `; ${shift.join('; ')}` : ''}.${sameDrawEverySeed(s, { poolN: state.data.poolN }) ? ' Every seed drew the same images (the calibration took the whole pool), so the seeds do not differ.' : ''}`
    + ' Worst case: the lowest accuracy of any class under any seed.'
    + `${state.resultWorkers ? ` Run on ${state.resultWorkers} worker${state.resultWorkers > 1 ? 's' : ''}.` : ''}`;

  drawChart('plot-box', () => boxPlot($('plot-box'), r), 'bitlens-per-class-box');
  $('plot-box').prepend(boxLegend(r.configs[0]?.seeds.length || 0));
  drawChart('plot-bars', () => barChart($('plot-bars'), r), 'bitlens-per-class-bars');
  $('cm-config').innerHTML = `<option value="-1">FP32</option>${r.configs.map((c, i) => `<option value="${i}">${esc(c.name)}</option>`).join('')}`;
  $('cm-config').value = r.configs.length ? String(r.configs.length - 1) : '-1';
  fillCmSeeds();
  drawConfusion();
  fillSampleConfigs();
  showSample();
}

// Class groups: FP32 and, per configuration, the group's accuracy averaged over seeds and its worst seed.
export function renderGroups(r) {
  const groups = r.configs[0]?.groups || [];
  $('groups-wrap').hidden = !groups.length;
  if (!groups.length) { $('groups-table').innerHTML = ''; return; }
  let html = `<caption class="sr">Accuracy per class group</caption><thead><tr><th scope="col" data-term="groups">Group</th><th scope="col" data-term="fp32">FP32</th>${r.configs.map((c) => `<th scope="col">${esc(c.name)}<br><span class="sub">mean (worst seed)</span></th>`).join('')}</tr></thead><tbody>`;
  groups.forEach((g, k) => {
    const members = g.classes.map((i) => r.labels[i]).join(', ');
    html += `<tr data-group="${esc(g.name)}"><th scope="row">${esc(g.name)}<span class="sub">${esc(members)}</span></th><td>${pct(g.fp32)}</td>`;
    for (const c of r.configs) {
      const cg = c.groups[k];
      html += `<td${cg.drop > 0.05 ? ' class="bad"' : ''}>${pct(cg.mean)} <span class="sub">(${pp(cg.drop)}; worst ${pct(cg.min)}, seed ${cg.min_seed})</span></td>`;
    }
    html += '</tr>';
  });
  $('groups-table').innerHTML = `${html}</tbody>`;
}

export function fillCmSeeds() {
  const r = state.result;
  const i = Number($('cm-config').value);
  const c = r.configs[i];
  $('cm-seed').disabled = !c;
  $('cm-seed').innerHTML = c ? c.seeds.map((sd, k) => `<option value="${k}">${sd.seed}${c.worstCase && sd.seed === c.worstCase.seed ? ' (worst case)' : ''}</option>`).join('') : '<option>—</option>';
  if (c && c.worstCase) $('cm-seed').value = String(Math.max(0, c.seeds.findIndex((sd) => sd.seed === c.worstCase.seed)));
}

export function drawConfusion() {
  const r = state.result;
  if (!r) return;
  const i = Number($('cm-config').value);
  const c = r.configs[i];
  let confusion, title;
  if (c) {
    const sd = c.seeds[Number($('cm-seed').value) || 0];
    confusion = sd.confusion;
    title = `${c.name}, seed ${sd.seed}: top-1 ${pct(sd.top1)}`;
  } else {
    confusion = state.fp32.confusion;
    title = `FP32: top-1 ${pct(state.fp32.top1)}`;
  }
  if (!confusion) { $('plot-confusion').textContent = 'No confusion matrix in this result.'; return; }
  drawChart('plot-confusion', () => confusionMatrix($('plot-confusion'), r.labels, confusion, title), 'bitlens-confusion');
}

export function drawChart(id, make, fileBase) {
  const el = $(id);
  el.innerHTML = '';
  let node;
  try { node = make(); } catch (e) {
    el.innerHTML = `<p class="error">Could not draw this chart: ${esc(e.message)}</p>`;
    return;
  }
  el.appendChild(node);
  const bar = document.createElement('div');
  bar.className = 'chart-exports';
  bar.innerHTML = '<button type="button" data-fmt="svg">Download SVG</button><button type="button" data-fmt="png">Download PNG</button>';
  bar.addEventListener('click', async (e) => {
    const fmt = e.target.dataset?.fmt;
    if (!fmt) return;
    const svg = chartSvg(node);
    if (fmt === 'svg') download(`${fileBase}.svg`, svg, 'image/svg+xml');
    else download(`${fileBase}.png`, await svgToPng(svg), 'image/png');
  });
  el.appendChild(bar);
}

export function resultsJson() {
  return JSON.stringify({
    tool: 'BitLens demo', date: new Date().toISOString(), url: location.href,
    model: { name: state.modelName, info: state.modelInfo },
    data: state.data, settings: state.resultSettings, result: state.result,
  }, null, 1);
}

// The results as the CSV `bitlens sweep --csv` writes (the library's sweep_csv, through bl.sweepCsv in the worker).
export function resultsCsv() {
  return state.primary.lib('sweepCsv', state.result);
}
