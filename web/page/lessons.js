// Teaching views: a layer's weights (or softmax outputs) with each quantizer's levels over them, and one image
// classified by FP32 and a quantized model with both attention maps.
import { isStopped } from './workers.js';
import { attentionMaps, quantHistogram } from '../charts.js';
import { esc, parseWA, pct } from './format.js';
import { drawChart } from './results.js';
import { $, state } from './state.js';
import { readSettings } from './url-state.js';

export function fillHistSources() {
  const info = state.modelInfo;
  const layers = info ? info.layers : [];
  const prev = $('hist-source').value;
  $('hist-source').innerHTML = layers.map((l) => `<option value="w:${esc(l)}">weights of ${esc(l)}</option>`).join('')
    + '<option value="softmax">softmax outputs (synthetic attention probabilities)</option>';
  const pick = [...$('hist-source').options].some((o) => o.value === prev) ? prev
    : (layers.find((l) => /blocks\.1\.mlp\.fc1|layer\.1\.intermediate/.test(l)) ? `w:${layers.find((l) => /blocks\.1\.mlp\.fc1|layer\.1\.intermediate/.test(l))}` : (layers[0] ? `w:${layers[0]}` : 'softmax'));
  $('hist-source').value = pick;
}

// The histogram view shows each quantizer where the sweep uses it: the weight quantizers on a layer's weights at the
// chosen granularity, the softmax quantizers on attention probabilities; the ones the settings pick are marked.
export async function drawHistogram() {
  if (!state.modelInfo || state.running) return;
  const v = $('hist-source').value;
  const bits = Number($('hist-bits').value);
  const s = readSettings();
  const req = v === 'softmax' ? { source: 'softmax', bits } : { source: 'weight', layer: v.slice(2), bits, granularity: s.granularity };
  try {
    const t = await state.primary.call('teach', req);
    const used = v === 'softmax' ? s.softmax : s.weights;
    const usedName = { uniform: 'uniform', pow2: 'power-of-two', log2: 'log2', sulq: 'SULQ' }[used];
    const term = (key, text) => `<span data-term="${key}">${esc(text)}</span>`;
    const usedTerm = term(used, usedName);
    $('hist-caption').innerHTML = v === 'softmax'
      ? `${term('softmax', 'Softmax outputs')}: synthetic attention probabilities (softmax of random logits, ${t.n.toLocaleString()} values) with each ${bits}-bit softmax quantizer's levels (red lines), one grid per tensor; the sweep uses ${usedTerm} (marked ◀).`
      : t.granularity === 'channel'
        ? `${term('per-channel', 'Per channel')}: the ${t.n.toLocaleString()} weights of output channel ${t.channel} of ${t.channels} in ${esc(v.slice(2))} (the channel with the widest range; every channel has its own grid) with each ${bits}-bit weight quantizer's levels (red lines); the sweep uses ${usedTerm} (marked ◀).`
        : `${term('per-tensor', 'Per tensor')}: the ${t.n.toLocaleString()} weights of ${esc(v.slice(2))} with each ${bits}-bit weight quantizer's levels (red lines), one grid for the whole layer; the sweep uses ${usedTerm} (marked ◀).`;
    drawChart('plot-hist', () => quantHistogram($('plot-hist'), t, bits, used), `bitlens-levels-${v.replace(/[^a-z0-9.]+/gi, '_')}-${bits}bit`);
  } catch (e) {
    if (!(isStopped(e))) $('plot-hist').innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

export function fillSampleConfigs() {
  const s = readSettings();
  const q = { softmax: s.softmax, weights: s.weights, granularity: s.granularity };
  const opts = [{ label: 'FP32 only', value: '' }];
  const r = state.result;
  if (r) {
    for (const c of r.configs) {
      const base = { wbits: c.config.wbits, abits: c.config.abits, softmax: c.config.softmax, weights: c.config.weights, granularity: c.config.granularity };
      // A mixed-precision plan carries its per-layer and per-point bits.
      if (Object.keys(c.config.layer_bits || {}).length) base.layerBits = c.config.layer_bits;
      if (Object.keys(c.config.point_bits || {}).length) base.pointBits = c.config.point_bits;
      const cs = state.resultSettings.calibSize;
      opts.push({ label: `${c.name}, seed ${c.seeds[0].seed}`, value: JSON.stringify({ config: base, seed: c.seeds[0].seed, calibSize: cs }) });
      if (c.worstCase && c.worstCase.seed !== c.seeds[0].seed) opts.push({ label: `${c.name}, seed ${c.worstCase.seed} (worst case)`, value: JSON.stringify({ config: base, seed: c.worstCase.seed, calibSize: cs }) });
    }
  } else {
    for (const name of s.configs) {
      const c = parseWA(name);
      if (c) opts.push({ label: `${c.name}, seed 0`, value: JSON.stringify({ config: { wbits: c.wbits, abits: c.abits, ...q }, seed: 0, calibSize: s.calibSize }) });
    }
  }
  const prev = $('sample-config').value;
  $('sample-config').innerHTML = opts.map((o) => `<option value="${esc(o.value)}">${esc(o.label)}</option>`).join('');
  const low = opts.find((o) => /^mixed/.test(o.label)) || opts.find((o) => /W4A4/.test(o.label)) || opts[opts.length - 1];
  $('sample-config').value = state.samplePicked && opts.some((o) => o.value === prev) ? prev : low.value;
  $('export-model').hidden = !$('sample-config').value;
  if (state.flips && state.flips.sel !== $('sample-config').value) { state.flips = null; $('flips').hidden = true; }
}

export let sampleUrl = null;
export async function showSample() {
  if (!state.modelInfo || !state.data || state.running) return;
  const idx = Math.max(0, Math.min(state.data.poolN - 1, Number($('sample-index').value) || 0));
  $('sample-index').max = String(state.data.poolN - 1);
  const sel = $('sample-config').value;
  const q = sel ? JSON.parse(sel) : {};
  const box = $('sample');
  const block = Number($('attn-block').value || -1);
  try {
    const r = await state.primary.call('sample', { index: idx, ...q, block });
    if (sampleUrl) URL.revokeObjectURL(sampleUrl);
    sampleUrl = URL.createObjectURL(new Blob([r.png], { type: 'image/png' }));
    const list = (top) => `<ol>${top.map((t) => `<li class="${t.index === r.trueIndex ? 'ok' : ''}">${esc(t.label)}${t.probability != null ? ` — ${pct(t.probability)}` : ''}</li>`).join('')}</ol>`;
    const verdict = (top) => (top[0].index === r.trueIndex ? '<span class="ok">correct</span>' : '<span class="wrong">wrong</span>');
    const qname = sel ? $('sample-config').selectedOptions[0].textContent : '';
    box.innerHTML = `<figure class="sample-img"><img src="${sampleUrl}" alt="Image ${r.index}: ${esc(r.trueLabel)}">
      <figcaption>Image ${r.index}<br>true class: <strong>${esc(r.trueLabel)}</strong></figcaption></figure>
      <div><p><strong>FP32</strong>: ${verdict(r.fp32)}</p>${list(r.fp32)}</div>
      ${r.quant ? `<div><p><strong>${esc(qname)}</strong>: ${verdict(r.quant.top)}</p>${list(r.quant.top)}</div>` : ''}`;
    const a = r.attention;
    const maps = [{ title: 'FP32', values: a.fp32 }];
    if (a.quant) maps.push({ title: qname, values: a.quant });
    let note = '';
    if (a.quant) {
      // How far the quantized map moved: total variation distance between the two distributions over patches.
      const s0 = a.fp32.reduce((x, y) => x + y, 0), s1 = a.quant.reduce((x, y) => x + y, 0);
      const tv = 0.5 * a.fp32.reduce((acc, v, i) => acc + Math.abs(v / s0 - a.quant[i] / s1), 0);
      note = ` The quantized map differs from FP32 by ${pct(tv)} of its mass (total variation).`;
    }
    $('attn-caption').textContent = `Where the class token looks at block ${a.block}: its attention to each of the ${a.grid[0]}×${a.grid[1]} patches (mean over heads; brighter = more), over the image as the model sees it.${note}`;
    drawChart('plot-attention', () => attentionMaps($('plot-attention'), maps, a.grid, a.input), `bitlens-attention-${r.index}-block${a.block}`);
  } catch (e) {
    if (!(isStopped(e))) box.innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

// ---------- flips: the images a configuration gets wrong that FP32 gets right, and the reverse (issue 18 item 4) ----------
// The worker classifies every evaluation image with FP32 and with the configuration chosen under "Quantized with" (the
// same quantized model as the view above); the lists below the image show where exactly one of the two is right, each
// image with its true class and both predictions, by class (a selector); clicking one shows it above.

let flipsReq = 0;
export async function showFlips({ cls = null, open = false } = {}) {
  const sel = $('sample-config').value;
  const wrap = $('flips');
  if (!sel || !state.modelInfo || !state.data) { wrap.hidden = true; state.flips = null; return; }
  if (state.running) return;
  const req = ++flipsReq;
  wrap.hidden = false;
  $('flips-note').textContent = 'Classifying every evaluation image with FP32 and with this configuration…';
  $('flips-broken').innerHTML = ''; $('flips-fixed').innerHTML = '';
  try {
    const f = await state.primary.call('flips', JSON.parse(sel));
    if (req !== flipsReq) return;
    state.flips = { ...f, sel, name: $('sample-config').selectedOptions[0].textContent };
    const counts = f.labels.map((_, k) => f.broken.filter((x) => x.trueIndex === k).length + f.fixed.filter((x) => x.trueIndex === k).length);
    $('flips-class').innerHTML = `<option value="">every class (${f.broken.length + f.fixed.length})</option>`
      + f.labels.map((l, k) => `<option value="${k}">${esc(l)} (${counts[k]})</option>`).join('');
    $('flips-class').value = cls == null ? '' : String(cls);
    renderFlips();
    if (open) {
      const first = $('flips-broken').querySelector('button') || $('flips-fixed').querySelector('button');
      if (first) { $('sample-index').value = first.dataset.index; await showSample(); }
    }
  } catch (e) {
    if (req === flipsReq && !isStopped(e)) $('flips-note').innerHTML = `<span class="error">${esc(e.message)}</span>`;
  }
}

export function renderFlips() {
  const f = state.flips;
  if (!f) return;
  const v = $('flips-class').value;
  const keep = (x) => v === '' || x.trueIndex === Number(v);
  const item = (x) => `<li><button type="button" class="flip" data-index="${x.index}" data-true="${x.trueIndex}" data-fp32="${x.fp32}" data-quant="${x.quant}">`
    + `Image ${x.index}: <strong>${esc(f.labels[x.trueIndex] ?? '?')}</strong> · FP32 ${esc(f.labels[x.fp32])} · ${esc(f.name.split(',')[0])} ${esc(f.labels[x.quant])}</button></li>`;
  const broken = f.broken.filter(keep), fixed = f.fixed.filter(keep);
  $('flips-broken-title').textContent = `FP32 right, ${f.name} wrong (${broken.length})`;
  $('flips-fixed-title').textContent = `${f.name} right, FP32 wrong (${fixed.length})`;
  $('flips-broken').innerHTML = broken.map(item).join('') || '<li class="none">none</li>';
  $('flips-fixed').innerHTML = fixed.map(item).join('') || '<li class="none">none</li>';
  $('flips-note').textContent = `Of ${f.n} evaluation images, ${f.broken.length} go wrong with ${f.name} that FP32 gets right, and ${f.fixed.length} the reverse`
    + `${v === '' ? '' : `; shown: true class ${f.labels[Number(v)]}`}. Click one to see it above.`;
}

// The worst case of the last sweep: the configuration whose worst class under any seed is lowest, at that seed, its
// worst class's flipped images listed, and the first image FP32 gets right and it gets wrong shown.
export async function jumpToWorstCase() {
  const r = state.result;
  if (!r || !r.configs.some((c) => c.worstCase)) return;
  const c = r.configs.filter((x) => x.worstCase).reduce((a, b) => (b.worstCase.accuracy <= a.worstCase.accuracy ? b : a));
  const label = `${c.name}, seed ${c.worstCase.seed}`;
  const opt = [...$('sample-config').options].find((o) => o.textContent === label || o.textContent === `${label} (worst case)`);
  if (!opt) return;
  $('sample-config').value = opt.value;
  state.samplePicked = true;
  $('export-model').hidden = false;
  await showFlips({ cls: c.worstCase.index, open: true });
}
