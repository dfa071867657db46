// Structured pruning and the compression trade-off: prune runs, every model measured at each precision, the Pareto
// chart, the per-layer views and the downloads.
import { isStopped } from './workers.js';
import { paretoChart } from '../charts.js';
import { fineTuneRun, libraryProblem, trainingImages, workerProblem } from './finetune.js';
import { esc, fmtTime, kb, parseWA, pct, showError } from './format.js';
import { drawChart } from './results.js';
import { $, PARETO_CONFIGS, QAT_SECONDS_PER_IMAGE, state } from './state.js';
import { setRunStatus } from './status.js';
import { run } from './sweep.js';
import { readSettings } from './url-state.js';

// Forward latency is the median over this many images (web/page/worker.js LATENCY_IMAGES), for the notes.
export const LATENCY_IMAGES = 32;
// Seconds of one forward pass of the shipped ViT in WASM in a busy tab, for the estimate of mask importance and measuring.
export const FORWARD_SECONDS = 0.0008;

export const fraction = (v) => String(Number(v.toFixed(4)));
// A pruned model's name: its keep fractions, "h0.5/m0.5" (another run with the same fractions gets " (run 2)").
export function pruneName(s) {
  const base = `h${fraction(s.prHeads)}/m${fraction(s.prMlp)}`;
  const taken = new Set((state.prune?.models || []).map((m) => m.name));
  if (!taken.has(base)) return base;
  let k = 2;
  while (taken.has(`${base} (run ${k})`)) k++;
  return `${base} (run ${k})`;
}

export function pruneImages(s) { return trainingImages(s.prLimit); }

// model.prune()'s options from the settings (what the worker's prune passes on).
export const pruneOptions = (s) => ({ keepHeads: s.prHeads, keepMlp: s.prMlp, importance: s.prImportance, importanceImages: s.prImpImages,
  epochs: s.prEpochs, distill: s.prDistill, ...(s.prLimit !== 0 ? { limit: s.prLimit } : {}) });

// The options as the library checks them (model.prune()'s limits and messages), then what only the page knows: the
// training images left and the calibration size against the images loaded.
export function validatePrune(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  const problem = libraryProblem('prune', pruneOptions(s));
  if (problem) return problem;
  if (pruneImages(s).n < 2) return 'Use at least 2 training images (a tenth is held out to pick the best recovery epoch).';
  if (!whole(s.calibSize, 1, 1e9)) return 'The calibration size (Settings) must be a whole number of at least 1 image.';
  if (state.data && s.calibSize > state.data.poolN) return `The calibration size (${s.calibSize}) is larger than the ${state.data.poolN} images loaded.`;
  return null;
}

export function renderPruneEstimate() {
  const s = readSettings();
  if (validatePrune(s)) { $('pr-estimate').textContent = ''; return; }
  const { train, held } = pruneImages(s);
  const rate = state.qatRate || QAT_SECONDS_PER_IMAGE;
  const k = s.prImpImages ? Math.min(s.prImpImages, train) : train;
  const blocks = state.modelInfo ? state.modelInfo.depth : 4;
  const width = state.modelInfo ? state.modelInfo.heads + (state.modelInfo.blocks?.[0]?.mlpDim ?? 4 * state.modelInfo.hiddenSize) : 132;
  const ranking = s.prImportance === 'mask' ? k * blocks * width * FORWARD_SECONDS : k * rate;
  const evalN = state.data ? state.data.evalN : 1000;
  const measures = (state.prune?.base && state.prune.quantKey === pruneQuantKey(s) ? 1 : 2) * (1 + PARETO_CONFIGS.length);
  const secs = ranking + rate * train * s.prEpochs + 0.001 * held * (s.prEpochs + 2) + measures * (evalN + 200) * FORWARD_SECONDS;
  $('pr-estimate').textContent = `Expected time: about ${fmtTime(Math.max(1, secs))} — ranking by ${s.prImportance === 'mask' ? 'masking each head and unit' : 'Taylor importance'} on `
    + `${k.toLocaleString()} training images, ${s.prEpochs} recovery epoch${s.prEpochs === 1 ? '' : 's'} on ${train.toLocaleString()} (${held.toLocaleString()} held out), `
    + `then FP32, ${PARETO_CONFIGS.join(', ')} each quantized, evaluated on ${evalN.toLocaleString()} images and timed. Cancel stops it at once.`;
}

// The quantizer settings above that every trade-off point is measured with (seed 0).
export const pruneQuant = (s) => ({ weights: s.weights, softmax: s.softmax, granularity: s.granularity, calibSize: s.calibSize });
export const pruneQuantKey = (s) => JSON.stringify(pruneQuant(s));

export async function runPrune() {
  showError('pr-error', '');
  const s = readSettings();
  const problem = validatePrune(s) || await workerProblem('prune', pruneOptions(s), 'pr-run');
  if (problem) { showError('pr-error', problem); return; }
  const quant = pruneQuant(s);
  const quantKey = JSON.stringify(quant);
  const configs = PARETO_CONFIGS.map(parseWA);
  const name = pruneName(s);
  const settings = { heads: s.prHeads, mlp: s.prMlp, importance: s.prImportance, impImages: s.prImpImages, distill: s.prDistill, epochs: s.prEpochs, limit: s.prLimit };
  return fineTuneRun(() => {
    if (!state.prune) state.prune = { quant, quantKey, base: null, models: [], seq: 0, dropped: [] };
    state.prune.cancelled = null;
    state.prune.run = { name, phase: 'prune' };
    renderPrune();
  }, async (run) => {
    const pr = state.prune;
    const measure = async (m) => {
      m.points = (await state.primary.call('measure', { modelId: m.id, quant, configs }, {
        onProgress: (p) => {
          if (state.running !== run) return;
          $('progress').value = p.total ? p.done / p.total : 0;
          $('progress-text').textContent = `Measuring ${m.name}: ${p.what}… (${p.done + 1} of ${p.total})`;
          $('progress').setAttribute('aria-valuetext', `Measuring ${m.name}: ${p.what}, step ${p.done + 1} of ${p.total}`);
        },
      })).points;
      m.quantKey = quantKey;
      renderPrune();
    };
    try {
      const id = `p${++pr.seq}`;
      const { train, held } = pruneImages(s);
      const k = s.prImpImages ? Math.min(s.prImpImages, train) : train;
      const intro = `Pruning ${name} (each layer keeps ${pct(s.prHeads, 0)} of its heads and ${pct(s.prMlp, 0)} of its MLP units)`;
      setRunStatus(`${intro}: ranking them by ${s.prImportance === 'mask' ? 'masking each one' : 'Taylor importance'} on ${k.toLocaleString()} training images, removing the rest and evaluating the pruned model…`);
      $('progress').value = 0;
      $('progress-text').textContent = `Pruning ${name}: ranking heads and units…`;
      let t0 = null;
      const onProgress = (p) => {
        if (state.running !== run) return;
        if (t0 === null) {
          t0 = p.seconds;
          const e0 = p.epochStats;
          setRunStatus(`${intro}: right after pruning it scores ${e0 && e0.valTop1 != null ? pct(e0.valTop1) : '—'} on the ${held.toLocaleString()} held-out images`
            + `${s.prEpochs ? `; recovering for ${s.prEpochs} epoch${s.prEpochs > 1 ? 's' : ''} on ${train.toLocaleString()} images${s.prDistill ? ', distilled from FP32' : ''}…` : '.'}`);
        }
        $('progress').value = p.steps ? p.step / p.steps : 1;
        const rate = p.step > 0 ? (p.seconds - t0) / p.step : NaN;
        const loss = p.step > 0 && Number.isFinite(p.loss) ? ` · loss ${p.loss.toFixed(4)}` : '';
        $('progress-text').textContent = !p.steps ? `Pruning ${name}: no recovery epochs`
          : p.step === 0 ? `Pruning ${name}: recovering…`
            : `Pruning ${name}: epoch ${p.epoch}/${p.epochs}, step ${p.step}/${p.steps}${loss}${p.step < p.steps ? ` · ${fmtTime(rate * (p.steps - p.step))} left` : ' · evaluating'}`;
        $('progress').setAttribute('aria-valuetext', `Pruning ${name}: step ${p.step} of ${p.steps}`);
      };
      const result = await state.primary.call('prune', { modelId: id, options: pruneOptions(s) }, { onProgress });
      const m = { id, name, settings, result, points: null, lost: false };
      pr.models.push(m);
      if (t0 !== null && s.prEpochs && result.trainImages) {
        const last = result.history[result.history.length - 1];
        state.qatRate = Math.max(1e-5, (last.seconds - t0) / (result.trainImages * s.prEpochs));
      }
      renderPrune();
      // The unpruned model, and earlier pruned models not measured with these quantizer settings (those lost when the
      // worker restarted cannot be: they go), measured with them.
      if (!pr.base || pr.base.quantKey !== quantKey) {
        pr.quant = quant;
        pr.quantKey = quantKey;
        for (const x of pr.models.filter((y) => y.quantKey !== quantKey && y.lost)) pr.dropped.push(x.name);
        pr.models = pr.models.filter((x) => x.quantKey === quantKey || !x.lost);
        pr.base = { id: 'fp32', name: 'FP32', points: null };
        pr.run.phase = 'base';
        setRunStatus(`Measuring the unpruned model at FP32, ${PARETO_CONFIGS.join(', ')} (quantized, evaluated on ${state.data.evalN.toLocaleString()} images, timed)…`);
        await measure(pr.base);
      }
      for (const x of pr.models.filter((y) => y !== m && y.quantKey !== quantKey)) {
        pr.run.phase = 'remeasure';
        setRunStatus(`Measuring ${x.name} with the quantizer settings above…`);
        await measure(x);
      }
      pr.run.phase = 'measure';
      setRunStatus(`Pruned ${name}: ${result.parameters.toLocaleString()} of ${result.parametersBefore.toLocaleString()} parameters left; quantizing, evaluating and timing it…`);
      await measure(m);
      pr.run = null;
      $('progress').value = 1;
      $('progress-text').textContent = `${name}: pruned and measured`;
      const secs = (performance.now() - run.started) / 1000;
      const pts = prunePoints(pr);
      markFrontier(pts, 'bytes', 'top1');
      const fp = m.points[0];
      const w4 = m.points.find((p) => p.precision === 'W4A4');
      setRunStatus(`Pruning done in ${fmtTime(secs)}: ${name} keeps ${pct(result.parameters / result.parametersBefore, 0)} of the parameters; `
        + `FP32 top-1 ${pct(fp.top1)} (unpruned ${pct(pr.base.points[0].top1)})${w4 ? `, with W4A4 ${pct(w4.top1)}` : ''}. `
        + `${pts.filter((p) => p.frontier).length} of the ${pts.length} points are on the frontier of size against top-1.`, 'done');
      renderPrune();
      renderPruneEstimate();
      $('prune').scrollIntoView({ block: 'start' });
    } catch (e) {
      if (!(isStopped(e) || run.cancelled)) { pr.run = null; renderPrune(); }
      throw e;
    }
  }, { errorId: 'pr-error', stopped: `Could not prune ${name}` });
}

// Every measured point of the trade-off: { label, model, precision, bytes, ms, top1, worst, worstLabel, n }.
export function prunePoints(pr) {
  const pts = [];
  const add = (m, isBase) => {
    for (const p of m.points || []) {
      pts.push({
        label: isBase ? p.precision : p.precision === 'FP32' ? m.name : `${m.name} + ${p.precision}`,
        model: isBase ? 'unpruned' : m.name, precision: p.precision, bytes: p.bytes, ms: p.ms, top1: p.top1, n: p.n, integerLayers: p.integerLayers,
        worst: p.worstClass ? p.worstClass.accuracy : NaN, worstLabel: p.worstClass ? p.worstClass.label : '—',
      });
    }
  };
  if (pr.base) add(pr.base, true);
  for (const m of pr.models) add(m, false);
  return pts;
}

// Pareto-optimal: no other point is at most as large (or slow) and at least as accurate, and better in one.
export function markFrontier(pts, x, y) {
  for (const p of pts) p.frontier = !pts.some((q) => q !== p && q[x] <= p[x] && q[y] >= p[y] && (q[x] < p[x] || q[y] > p[y]));
}

export const AXIS_NAMES = { bytes: 'size', ms: 'latency', top1: 'top-1', worst: 'worst-class accuracy' };

export function renderPrune() {
  const pr = state.prune;
  if (!pr) return;
  const x = $('pr-x').value, y = $('pr-y').value;
  const pts = prunePoints(pr);
  $('pr-results').hidden = !(pts.length || pr.models.length || pr.run || pr.cancelled);
  markFrontier(pts, x, y);
  $('pareto-caption').textContent = `${AXIS_NAMES[x][0].toUpperCase()}${AXIS_NAMES[x].slice(1)} against ${AXIS_NAMES[y]}: every model at every precision; `
    + `red staircase: the Pareto frontier (nothing else is both ${x === 'bytes' ? 'smaller' : 'faster'} and ${y === 'top1' ? 'more accurate' : 'better on its worst class'})`;
  if (pts.length) {
    drawChart('plot-pareto', () => paretoChart($('plot-pareto'), pts, { x, y, models: [...new Set(pts.map((p) => p.model))], precisions: ['FP32', ...PARETO_CONFIGS] }),
      `bitlens-pareto-${x}-${y}`);
  } else {
    $('plot-pareto').innerHTML = '<p class="hint">The chart appears once the FP32 model is measured.</p>';
  }
  const fp32Bytes = pr.base?.points ? pr.base.points[0].bytes : null;
  let html = `<caption class="sr">Every point of the trade-off: size, latency, top-1 and worst class</caption><thead><tr>
    <th scope="col">Point</th><th scope="col" data-term="size">Size<br><span class="sub">bytes</span></th><th scope="col" data-term="latency">Latency<br><span class="sub">ms per image, WASM</span></th>
    <th scope="col" data-term="top1">Top-1</th><th scope="col" data-term="worst-class">Worst class</th><th scope="col" data-term="pareto">Pareto frontier<br><span class="sub">${AXIS_NAMES[x]} against ${AXIS_NAMES[y]}</span></th></tr></thead><tbody>`;
  for (const p of pts) {
    html += `<tr data-point="${esc(p.label)}" data-model="${esc(p.model)}" data-precision="${p.precision}"${p.frontier ? ' class="frontier"' : ''}>
      <th scope="row">${esc(p.label)}</th>
      <td class="bytes" data-value="${p.bytes}">${p.bytes.toLocaleString()}<span class="sub">${kb(p.bytes)}${fp32Bytes && p.bytes < fp32Bytes ? `, ${(fp32Bytes / p.bytes).toFixed(1)}× smaller` : ''}</span></td>
      <td class="ms" data-value="${p.ms}">${p.ms.toFixed(3)}</td>
      <td class="top1" data-value="${p.top1}">${pct(p.top1, 2)}</td>
      <td class="worst" data-value="${p.worst}">${esc(p.worstLabel)} ${pct(p.worst)}</td>
      <td class="on-frontier">${p.frontier ? '✓ on the frontier' : ''}</td></tr>`;
  }
  const run = pr.run;
  if (run) {
    const what = { base: 'measuring the unpruned model', remeasure: 'measuring the earlier pruned models with the quantizer settings above', prune: `pruning ${run.name}`, measure: `measuring ${run.name}` }[run.phase];
    html += `<tr class="pending"><td colspan="6">In progress: ${esc(what)}…</td></tr>`;
  }
  if (pr.cancelled) html += `<tr class="cancelled"><td colspan="6">Cancelled while ${esc(pr.cancelled)}.</td></tr>`;
  $('pr-points').innerHTML = `${html}</tbody>`;
  const q = pr.quant;
  const n = pts[0]?.n;
  $('pr-note').textContent = `Quantized with weights ${q.weights} (${q.granularity}), softmax ${q.softmax}, calibrated on ${q.calibSize} of the loaded images (seed 0), `
    + `patch embedding and head at 8 bits, every Linear that can on the int8 path; evaluated on ${n ? n.toLocaleString() : 'the'} evaluation images. `
    + `Size: FP32 is 4 bytes a parameter; quantized, the exported model's bytes (packed codes, scales, the FP32 rest). `
    + `Latency: the median over ${LATENCY_IMAGES} images of one forward pass in this tab's worker (one thread, after warm-up); other work on the machine moves it, so compare within this table.`
    + `${pr.dropped.length ? ` Not shown: ${pr.dropped.join(', ')} (measured with other quantizer settings and lost when the worker restarted).` : ''}`;
  renderPruneModels(pr);
}

// A block's heads as bars (their importance, on one scale for the model), the removed ones grey and crossed.
export function headBars(scores, kept, max, block) {
  const W = 18, GAP = 5, H = 30;
  const removed = scores.map((_, i) => i).filter((i) => !kept.includes(i));
  const bars = scores.map((v, i) => {
    const h = Math.max(1.5, H * (max > 0 ? v / max : 0));
    const k = kept.includes(i);
    const x = i * (W + GAP);
    return `<g class="${k ? 'kept' : 'removed'}"><title>head ${i}: importance ${v.toExponential(2)}${k ? ', kept' : ', removed'}</title>`
      + `<rect x="${x}" y="${H - h}" width="${W}" height="${h}"></rect>`
      + `<text x="${x + W / 2}" y="${H + 12}">${k ? i : `✕${i}`}</text></g>`;
  }).join('');
  return `<svg class="imp heads" width="${scores.length * (W + GAP)}" height="${H + 15}" role="img" aria-label="Importance of the ${scores.length} heads of block ${block}; removed: ${removed.join(', ') || 'none'}">${bars}</svg>`;
}

// A block's MLP units by importance, largest first: kept (blue) then removed (grey).
export function unitStrip(scores, kept, max, block) {
  const W = 2, H = 30;
  const keep = new Set(kept);
  const order = scores.map((v, i) => ({ v, i, k: keep.has(i) })).sort((a, b) => (b.k - a.k) || (b.v - a.v));
  const bars = order.map((u, j) => {
    const h = Math.max(1, H * (max > 0 ? u.v / max : 0));
    return `<rect class="${u.k ? 'kept' : 'removed'}" x="${j * W}" y="${H - h}" width="${W}" height="${h}"></rect>`;
  }).join('');
  return `<svg class="imp units" width="${scores.length * W}" height="${H}" role="img" aria-label="Importance of the ${scores.length} MLP units of block ${block}, largest first: ${kept.length} kept, ${scores.length - kept.length} removed">`
    + `<title>${kept.length} of ${scores.length} units kept; importance from ${Math.max(...scores).toExponential(2)} to ${Math.min(...scores).toExponential(2)}</title>${bars}</svg>`;
}

// Per pruned model: what it kept per layer, the importance that decided it, its recovery, and the download.
export function renderPruneModels(pr) {
  const imp = { taylor: 'Taylor importance', mask: 'masking' };
  $('pr-models').innerHTML = pr.models.map((m) => {
    const r = m.result, st = m.settings;
    const hMax = Math.max(...r.importance.heads.flat()), uMax = Math.max(...r.importance.units.flat());
    const before = state.modelInfo.blocks || [];
    const rows = r.layers.map((l, b) => {
      const of = r.importance.heads[b].length, units = r.importance.units[b].length;
      const removed = r.importance.heads[b].map((_, i) => i).filter((i) => !r.keptHeads[b].includes(i));
      return `<tr data-layer="${b}"><th scope="row">block ${b}</th>
        <td class="heads">${l.heads} / ${of}<span class="sub">${removed.length ? `removed: ${removed.join(', ')}` : 'none removed'}</span></td>
        <td class="imp-cell">${headBars(r.importance.heads[b], r.keptHeads[b], hMax, b)}</td>
        <td class="mlp">${l.mlpDim} / ${units}</td>
        <td class="imp-cell">${unitStrip(r.importance.units[b], r.keptUnits[b], uMax, b)}</td>
        <td class="params">${l.parameters.toLocaleString()}${before[b] ? `<span class="sub">of ${before[b].parameters.toLocaleString()}</span>` : ''}</td></tr>`;
    }).join('');
    const h = r.history, e0 = h[0], best = h.find((e) => e.epoch === r.bestEpoch) || e0;
    const fp = r.validationFp32;
    const worst = (e) => (e && e.valWorstClass ? ` (worst class ${esc(e.valWorstClass.label)} ${pct(e.valWorstClass.accuracy)})` : '');
    const recovery = st.epochs === 0
      ? `No recovery (0 epochs): held-out top-1 ${pct(e0?.valTop1)}${worst(e0)}`
      : `Held-out top-1 right after pruning ${pct(e0?.valTop1)}${worst(e0)} → ${pct(best?.valTop1)}${worst(best)} after recovery (epoch ${r.bestEpoch} of ${st.epochs} kept)`;
    return `<article class="pr-model" data-model="${esc(m.name)}">
      <h3>${esc(m.name)} <span class="sub">keeps ${pct(st.heads, 0)} of each layer's heads and ${pct(st.mlp, 0)} of its MLP units</span></h3>
      <p class="hint">${r.parameters.toLocaleString()} of ${r.parametersBefore.toLocaleString()} parameters (${pct(1 - r.parameters / r.parametersBefore, 0)} fewer).
        Ranked by ${imp[r.importance.method] || r.importance.method} on ${r.importance.images.toLocaleString()} training images. ${recovery}${fp ? `; FP32 ${pct(fp.top1)} on the same images` : ''}.
        ${st.epochs === 0 ? `Importance measured on the training part of ${(r.trainImages + r.valImages).toLocaleString()} images (${r.valImages.toLocaleString()} held out).`
    : `Recovery ${st.distill ? 'distilled from the FP32 model (logits and the first blocks\' outputs)' : 'on the labels alone'}, on ${r.trainImages.toLocaleString()} training images (${r.valImages.toLocaleString()} held out).`}</p>
      <div class="table-wrap"><table class="pr-layers"><caption class="sr">${esc(m.name)}: what each layer kept</caption><thead><tr>
        <th scope="col">Layer</th><th scope="col">Heads<br><span class="sub">kept / of</span></th><th scope="col" data-term="importance">Head importance<br><span class="sub">✕ removed</span></th>
        <th scope="col">MLP width<br><span class="sub">kept / of</span></th><th scope="col" data-term="importance">MLP unit importance<br><span class="sub">largest first; grey removed</span></th>
        <th scope="col" data-term="parameters">Parameters</th></tr></thead><tbody>${rows}</tbody></table></div>
      ${m.lost ? '<p class="hint">The worker restarted since (Cancel): this model can no longer be downloaded; its points stay above.</p>'
        : `<button type="button" class="pr-export" data-prune-export="${m.id}"${state.running ? ' disabled' : ''}>Download ${esc(m.name)} (FP32, model folder as .zip)</button>`}
    </article>`;
  }).join('');
}
