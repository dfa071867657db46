// BitLens demo — charts with Observable Plot (loaded as its UMD build: globalThis.Plot, globalThis.d3),
// and SVG/PNG export of any chart.
const Plot = () => globalThis.Plot;

const pct = (v) => (v == null || Number.isNaN(v) ? '—' : `${(100 * v).toFixed(1)}%`);
const FONT = 'system-ui, "DejaVu Sans", sans-serif';
const style = { fontSize: '14px', fontFamily: FONT, background: 'white', color: '#111', overflow: 'visible' };
const SERIES_COLORS = ['#4d4d4d', '#0b57d0', '#e8710a', '#12a4af', '#a142f4', '#d01884', '#188038', '#b06000', '#5f6368'];

/** Projector mode (?projector=1): charts drawn with 16 px text (the page's style sheet holds every chart text at
 * 16 px or more and thickens the lines); off, 14 px. */
export function setProjector(on) { style.fontSize = on ? '16px' : '14px'; }

function width(el, fallback = 960) {
  return Math.max(480, Math.min(1500, (el && el.clientWidth) || fallback));
}

/** Box plot per configuration (rows) of per-class accuracy across seeds; a red tick marks FP32. */
export function boxPlot(el, result) {
  const { labels } = result;
  const rows = [];
  for (const c of result.configs) {
    for (const s of c.seeds) {
      s.perClass.forEach((acc, k) => { if (acc != null && !Number.isNaN(acc)) rows.push({ config: c.name, cls: labels[k], acc, seed: s.seed }); });
    }
  }
  const fp = labels.map((l, k) => ({ cls: l, acc: result.fp32.perClass[k] }));
  const names = result.configs.map((c) => c.name);
  // Zoom in on the range the accuracies use (in steps of 10 points), so narrow boxes stay readable.
  const lowest = Math.min(...rows.map((r) => r.acc), ...fp.map((r) => r.acc).filter((v) => v != null && !Number.isNaN(v)));
  const y0 = Math.max(0, Math.floor((lowest - 0.02) * 10) / 10);
  return Plot().plot({
    width: width(el), height: 70 + 160 * names.length, marginLeft: 56, marginRight: 70, marginBottom: 70, style,
    x: { domain: labels, label: null, tickRotate: -25 },
    y: { domain: [y0, 1], grid: true, label: `class accuracy${y0 > 0 ? ` (from ${Math.round(100 * y0)}%)` : ''}`, tickFormat: '.0%', ticks: 5 },
    fy: { domain: names, label: null },
    marks: [
      Plot().frame({ stroke: '#bbb' }),
      Plot().boxY(rows, { x: 'cls', y: 'acc', fy: 'config', fill: '#9db7e8', stroke: '#111', r: 0 }),
      Plot().tickY(fp, { x: 'cls', y: 'acc', stroke: '#c5221f', strokeWidth: 3 }),
      // Every seed as a dot, so that a few seeds (or seeds that agree, where the box is a flat line) stay visible.
      Plot().dot(rows, { x: 'cls', y: 'acc', fy: 'config', r: 3.5, fill: '#111', fillOpacity: 0.7, stroke: 'white', strokeWidth: 0.8,
        title: (d) => `${d.config} · ${d.cls} · seed ${d.seed}: ${pct(d.acc)}`, className: 'seed-dot' }),
    ],
  });
}

/** The box plot's legend (HTML, above the chart): what a box, its line, a dot and the red tick mean. */
export function boxLegend(seeds) {
  const div = document.createElement('div');
  div.className = 'chart-legend';
  div.innerHTML = '<span><svg width="26" height="18" aria-hidden="true"><rect x="3" y="3" width="20" height="12" fill="#9db7e8" stroke="#111"/><line x1="3" x2="23" y1="9" y2="9" stroke="#111" stroke-width="2"/></svg>'
    + ' box: the middle half of the seeds, line: their median, whiskers: the range</span>'
    + '<span><svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="4" fill="#111" fill-opacity="0.7"/></svg>'
    + ` one seed (${seeds} per class and configuration)</span>`
    + '<span><svg width="22" height="14" aria-hidden="true"><line x1="2" x2="20" y1="7" y2="7" stroke="#c5221f" stroke-width="3"/></svg> FP32</span>';
  return div;
}

/** Grouped bars: per class, FP32 and each configuration's mean accuracy; ▼ over each worst class. */
export function barChart(el, result) {
  const { labels } = result;
  const series = ['FP32', ...result.configs.map((c) => c.name)];
  const rows = labels.map((l, k) => ({ cls: l, series: 'FP32', acc: result.fp32.perClass[k] }));
  const worst = [];
  for (const c of result.configs) {
    labels.forEach((l, k) => rows.push({ cls: l, series: c.name, acc: c.perClassMean[k] }));
    if (c.worstClass && c.worstClass.index >= 0) {
      worst.push({ cls: labels[c.worstClass.index], series: c.name, acc: c.perClassMean[c.worstClass.index] });
    }
  }
  return Plot().plot({
    width: width(el), height: 440, marginLeft: 56, marginBottom: 60, style,
    fx: { domain: labels, label: null, padding: 0.15, tickRotate: -20 },
    x: { domain: series, axis: null, paddingInner: 0.08 },
    y: { domain: [0, 1.08], grid: true, label: 'class accuracy', tickFormat: '.0%', ticks: 5 },
    color: { domain: series, range: SERIES_COLORS, legend: true },
    marks: [
      Plot().barY(rows.filter((r) => r.acc != null && !Number.isNaN(r.acc)), { fx: 'cls', x: 'series', y: 'acc', fill: 'series', title: (d) => `${d.cls} · ${d.series}: ${pct(d.acc)}` }),
      Plot().text(worst, { fx: 'cls', x: 'series', y: 'acc', text: () => '▼', dy: -9, fill: '#c5221f', fontSize: 16 }),
      Plot().ruleY([0]),
    ],
  });
}

/** Confusion matrix (counts) with the counts written in the cells. */
export function confusionMatrix(el, labels, confusion, title) {
  const rows = [];
  let max = 0;
  confusion.forEach((row, t) => row.forEach((n, p) => { rows.push({ t: labels[t], p: labels[p], n, diag: t === p }); max = Math.max(max, n); }));
  const size = Math.min(width(el, 720), 720);
  return Plot().plot({
    width: size, height: size - 40, marginLeft: 110, marginBottom: 100, marginTop: 30, style,
    x: { domain: labels, label: 'predicted →', tickRotate: -40 },
    y: { domain: labels, label: '↑ true class' },
    color: { scheme: 'blues', domain: [0, max || 1] },
    marks: [
      Plot().cell(rows, { x: 'p', y: 't', fill: 'n', inset: 0.5, title: (d) => `true ${d.t}, predicted ${d.p}: ${d.n}` }),
      Plot().text(rows.filter((d) => d.n > 0), { x: 'p', y: 't', text: 'n', fill: (d) => (d.n > max * 0.55 ? 'white' : 'black'), fontWeight: (d) => (d.diag ? 700 : 400) }),
      Plot().text([title], { frameAnchor: 'top-left', dy: -22, fontWeight: 700 }),
    ],
  });
}

/** A histogram of values with each quantizer's levels drawn over it (one row per quantizer). */
export function quantHistogram(el, teach, bits, used) {
  const hist = teach.hist;
  const lo = hist[0].x0, hi = hist[hist.length - 1].x1;
  const pad = (hi - lo) * 0.04;
  const label = { uniform: 'uniform', pow2: 'power-of-two', log2: 'log2', sulq: 'SULQ' };
  const name = (q) => `${label[q] || q}${q === used ? ' ◀' : ''}`;
  const names = teach.grids.map((g) => name(g.quantizer));
  const softmax = teach.values === 'softmax-like';
  const levels = [];
  for (const g of teach.grids) for (const v of g.levels) if (v >= lo - pad && v <= hi + pad) levels.push({ quantizer: name(g.quantizer), v });
  const gran = softmax || teach.granularity !== 'channel' ? 'per tensor' : `per channel (channel ${teach.channel})`;
  const notes = teach.grids.map((g) => {
    const inRange = g.levels.filter((v) => v >= lo - pad && v <= hi + pad).length;
    return { quantizer: name(g.quantizer), text: `${g.levels.length} levels${inRange < g.levels.length ? ` (${inRange} shown)` : ''} · ${gran} · MSE ${Number(g.params.mse).toExponential(2)}${g.quantizer === used ? ' · used by the sweep' : ''}` };
  });
  return Plot().plot({
    width: width(el), height: 60 + 120 * names.length, marginLeft: 60, marginRight: style.fontSize === '16px' ? 130 : 110, marginBottom: 46, style,
    x: { domain: [lo - pad, hi + pad], label: softmax ? 'probability' : 'weight value' },
    y: { label: 'count', type: softmax ? 'sqrt' : 'linear', ticks: 3 },
    fy: { domain: names, label: null },
    marks: [
      Plot().rectY(hist, { x1: 'x0', x2: 'x1', y: 'count', fill: '#9aa0a6' }),
      Plot().ruleX(levels, { x: 'v', fy: 'quantizer', stroke: '#c5221f', strokeWidth: bits <= 4 ? 2 : 1, strokeOpacity: 0.8 }),
      Plot().text(notes, { fy: 'quantizer', text: 'text', frameAnchor: 'top-right', dx: -6, dy: 6, fontWeight: 600 }),
      Plot().ruleY([0]),
    ],
  });
}

/**
 * Bits per item (layers or activation points): grouped bars, uniform beside the mixed plan.
 * items: [{ name, bits, values, sensitivity, candidates }]; uniformBits: { name → bits }.
 */
export function allocationChart(el, items, uniformBits, uniformName) {
  const series = [uniformName, 'mixed'];
  const rows = items.flatMap((it) => [
    { name: it.name, series: uniformName, bits: uniformBits[it.name], values: it.values },
    { name: it.name, series: 'mixed', bits: it.bits, values: it.values },
  ]).filter((r) => r.bits != null);
  const names = items.map((it) => it.name);
  const longest = Math.max(...names.map((n) => n.length));
  return Plot().plot({
    width: Math.max(width(el), 28 * names.length + 80), height: 300 + 5.5 * longest, marginLeft: 50, marginBottom: 20 + 6.2 * longest, style,
    fx: { domain: names, label: null, tickRotate: -60, padding: 0.2 },
    x: { domain: series, axis: null, paddingInner: 0.05 },
    y: { domain: [0, 8], grid: true, label: 'bits', ticks: 8 },
    color: { domain: series, range: ['#9aa0a6', '#0b57d0'], legend: true },
    marks: [
      Plot().barY(rows, { fx: 'name', x: 'series', y: 'bits', fill: 'series', title: (d) => `${d.name} · ${d.series}: ${d.bits} bits (${d.values.toLocaleString()} values)` }),
      Plot().ruleY([0]),
    ],
  });
}

/** Heatmap: rows = layers, columns = candidate bit-widths, fill = sensitivity (log scale); a dot on each chosen bit-width. */
export function sensitivityChart(el, items) {
  const rows = [];
  let min = Infinity;
  for (const it of items) {
    it.candidates.forEach((b, k) => {
      const v = Math.max(it.sensitivity[k], 0);
      rows.push({ name: it.name, bits: String(b), v, chosen: b === it.bits });
      if (v > 0) min = Math.min(min, v);
    });
  }
  const floor = Number.isFinite(min) ? min : 1e-9;
  const longest = Math.max(...items.map((it) => it.name.length));
  const bitsDomain = items[0].candidates.map(String);
  return Plot().plot({
    width: Math.min(width(el), 160 + 7.5 * longest + 70 * bitsDomain.length), height: 60 + 22 * items.length, marginLeft: 20 + 7.5 * longest, marginTop: 30, style,
    x: { domain: bitsDomain, label: 'bits', axis: 'top' },
    y: { domain: items.map((it) => it.name), label: null },
    color: { type: 'log', scheme: 'oranges', domain: [floor, Math.max(...rows.map((r) => r.v), floor * 10)], legend: true, label: 'mean KL divergence' },
    marks: [
      Plot().cell(rows, { x: 'bits', y: 'name', fill: (d) => Math.max(d.v, floor), inset: 0.5, title: (d) => `${d.name} at ${d.bits} bits: KL ${d.v.toExponential(2)}` }),
      Plot().dot(rows.filter((r) => r.chosen), { x: 'bits', y: 'name', fill: '#0b57d0', stroke: 'white', r: 6 }),
    ],
  });
}

/**
 * Attention maps side by side, each over the image as the model sees it: `maps` [{ title, values }],
 * each the class token's attention to every patch as a row-major grid[0] × grid[1] array, drawn as
 * translucent cells on one colour scale; `input` { values (CHW, normalised), channels, height, width }
 * is shown in grey or colour, stretched to its own range.
 */
export function attentionMaps(el, maps, grid, input) {
  const [R, C] = grid;
  const rows = [];
  let max = 0;
  for (const m of maps) {
    m.values.forEach((v, i) => { rows.push({ title: m.title, r: Math.floor(i / C), c: i % C, v }); max = Math.max(max, v); });
  }
  const cell = Math.max(12, Math.min(34, Math.floor(260 / C)));
  const marks = [];
  if (input) {
    const { values, channels, height: h, width: w } = input;
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const grey = (v) => Math.round(255 * (v - lo) / ((hi - lo) || 1));
    const plane = h * w;
    const fill = (d, i) => (channels >= 3 ? `rgb(${grey(values[i])},${grey(values[plane + i])},${grey(values[2 * plane + i])})`
      : `rgb(${grey(values[i])},${grey(values[i])},${grey(values[i])})`);
    for (const m of maps) {
      marks.push(Plot().raster({ length: plane }, { fx: () => m.title, width: w, height: h, x1: 0, y1: 0, x2: C, y2: R, fill, imageRendering: 'pixelated' }));
    }
  }
  marks.push(Plot().rect(rows, { fx: 'title', x1: 'c', x2: (d) => d.c + 1, y1: 'r', y2: (d) => d.r + 1, fill: 'v', fillOpacity: input ? 0.6 : 1,
    title: (d) => `${d.title}: patch (${d.r}, ${d.c}) ${(100 * d.v).toFixed(2)}%` }));
  return Plot().plot({
    width: 40 + maps.length * (cell * C + 30), height: 60 + cell * R, marginLeft: 10, marginRight: 10, marginTop: 34, marginBottom: 20, style,
    fx: { domain: maps.map((m) => m.title), label: null, axis: 'top', padding: 0.08 },
    x: { domain: [0, C], axis: null },
    y: { domain: [0, R], axis: null, reverse: true },
    color: { scheme: 'inferno', domain: [0, max || 1] },
    marks,
  });
}

const TOP = 'validation top-1', WORST = 'worst class';  // the series of learningCurve and inqStepChart

// The FP32 reference lines (top-1, worst class) of a learning-style chart and its accuracy axis's range over
// them and `rows` (rounded to 5%, with a little room above 100% so points there stay clear of the axis
// label; ticks stop at 100%).
function accuracyScale(rows, fp32) {
  const rules = fp32 ? [
    { series: TOP, acc: fp32.top1, text: `FP32 top-1\n${pct(fp32.top1)}` },
    { series: WORST, acc: fp32.worstClass.accuracy, text: `FP32 worst class\n${fp32.worstClass.label} ${pct(fp32.worstClass.accuracy)}` },
  ] : [];
  const all = [...rows, ...rules].map((r) => r.acc);
  return {
    rules,
    lo: Math.max(0, Math.floor((Math.min(...all) - 0.03) * 20) / 20),
    hi: Math.min(1.01, Math.ceil((Math.max(...all) + 0.02) * 20) / 20),
  };
}

/**
 * A QAT run's learning curve: validation top-1 and worst-class accuracy per epoch (epoch 0: the PTQ start;
 * each worst point labelled with its class), FP32's on the same images as dashed lines, the best epoch ringed.
 * history: [{ epoch, valTop1, valWorstClass: { label, accuracy } }]; fp32: { top1, worstClass } | null.
 */
export function learningCurve(el, history, { epochs, fp32 = null, best = null } = {}) {
  const pts = history.filter((e) => e.valTop1 != null);
  const rows = pts.flatMap((e) => [
    { epoch: e.epoch, series: TOP, acc: e.valTop1, label: '' },
    { epoch: e.epoch, series: WORST, acc: e.valWorstClass.accuracy, label: e.valWorstClass.label },
  ]);
  const { rules, lo, hi } = accuracyScale(rows, fp32);
  const ticks = globalThis.d3.ticks(lo, Math.min(1, hi), 6);
  const last = Math.max(epochs || 0, ...pts.map((e) => e.epoch), 1);
  const colors = { [TOP]: '#0b57d0', [WORST]: '#e8710a' };
  const bestRow = best == null ? [] : rows.filter((r) => r.epoch === best && r.series === TOP);
  return Plot().plot({
    width: Math.min(width(el), 960), height: 380, marginLeft: 56, marginRight: fp32 ? 150 : 20, marginBottom: 46, style,
    x: { domain: [0, last], label: 'epoch (0 = PTQ start)', ticks: Math.min(last, 10), tickFormat: 'd' },
    y: { domain: [lo, hi], grid: true, label: 'accuracy on the held-out images', tickFormat: hi - lo <= 0.1 ? '.1%' : '.0%', ticks },
    color: { domain: [TOP, WORST], range: [colors[TOP], colors[WORST]], legend: true },
    marks: [
      Plot().ruleY(rules, { y: 'acc', stroke: (d) => colors[d.series], strokeDasharray: '6,4', strokeWidth: 1.5 }),
      // The two labels beside the chart, the worst class's moved down when the lines are close.
      ...rules.map((r, i) => Plot().text([r], { x: last, y: 'acc', text: 'text', textAnchor: 'start', dx: 14, fill: colors[r.series], fontSize: 13, fontWeight: 600,
        dy: i === 1 && rules[0].acc - r.acc < 0.12 * (hi - lo) ? 34 : 0 })),
      Plot().line(rows, { x: 'epoch', y: 'acc', stroke: 'series', strokeWidth: 2.5, marker: 'circle' }),
      Plot().dot(bestRow, { x: 'epoch', y: 'acc', r: 9, stroke: colors[TOP], strokeWidth: 2 }),
      Plot().text(rows.filter((r) => r.series === WORST), { x: 'epoch', y: 'acc', text: 'label', dy: 14, fill: colors[WORST], fontSize: 12 }),
      Plot().tip(rows, Plot().pointer({ x: 'epoch', y: 'acc', title: (d) => `epoch ${d.epoch}${d.epoch === 0 ? ' (PTQ)' : ''} · ${d.series}${d.label ? ` (${d.label})` : ''}: ${pct(d.acc)}` })),
    ],
  });
}

/**
 * INQ, partition step by partition step: top-1 and the worst class's accuracy on the held-out images as a sawtooth —
 * PTQ, then per partition right after freezing (hollow) and after retraining (filled); the last (100%) only
 * freezes. The x axis holds every planned step from the start (`partitions`). Dashed: FP32 on the same images.
 * history: InqStep[] (step 0 = PTQ) as far as the run got.
 */
export function inqStepChart(el, history, { partitions, fp32 = null } = {}) {
  const keys = ['PTQ'];
  const tick = { PTQ: 'PTQ' };
  for (const p of partitions) {
    keys.push(`${p}f`);
    tick[`${p}f`] = `${p}%\nfrozen`;
    if (p < 100) { keys.push(`${p}t`); tick[`${p}t`] = 'retrained'; }
  }
  const rows = [];
  const at = (key, kind, top1, worst, label) => {
    if (top1 == null) return;
    rows.push({ key, kind, series: TOP, acc: top1, label: '' }, { key, kind, series: WORST, acc: worst, label });
  };
  for (const s of history) {
    if (s.step === 0) { at('PTQ', 'retrained', s.valTop1, s.valWorstClass?.accuracy, s.valWorstClass?.label || ''); continue; }
    at(`${s.partition}f`, 'frozen', s.frozenTop1, s.frozenWorst, '');
    if (s.partition < 100) at(`${s.partition}t`, 'retrained', s.valTop1, s.valWorstClass?.accuracy, s.valWorstClass?.label || '');
  }
  const { rules, lo, hi } = accuracyScale(rows, fp32);
  const colors = { [TOP]: '#0b57d0', [WORST]: '#e8710a' };
  const last = keys[keys.length - 1];
  return Plot().plot({
    width: Math.min(width(el), 960), height: 400, marginLeft: 56, marginRight: fp32 ? 150 : 20, marginBottom: 56, style,
    x: { type: 'point', domain: keys, label: null, padding: 0.4, tickFormat: (k) => tick[k] },
    y: { domain: [lo, hi], grid: true, label: 'accuracy on the held-out images', tickFormat: hi - lo <= 0.1 ? '.1%' : '.0%', ticks: globalThis.d3.ticks(lo, Math.min(1, hi), 6) },
    color: { domain: [TOP, WORST], range: [colors[TOP], colors[WORST]], legend: true },
    marks: [
      Plot().ruleY(rules, { y: 'acc', stroke: (d) => colors[d.series], strokeDasharray: '6,4', strokeWidth: 1.5 }),
      ...rules.map((r, i) => Plot().text([r], { x: () => last, y: 'acc', text: 'text', textAnchor: 'start', dx: 24, fill: colors[r.series], fontSize: 13, fontWeight: 600,
        dy: i === 1 && rules[0].acc - r.acc < 0.12 * (hi - lo) ? 34 : 0 })),
      Plot().line(rows, { x: 'key', y: 'acc', stroke: 'series', strokeWidth: 2.5 }),
      Plot().dot(rows, { x: 'key', y: 'acc', stroke: 'series', strokeWidth: 2, r: 5, fill: (d) => (d.kind === 'frozen' ? 'white' : colors[d.series]) }),
      Plot().text(rows.filter((r) => r.label), { x: 'key', y: 'acc', text: 'label', dy: 15, fill: colors[WORST], fontSize: 12 }),
      Plot().tip(rows, Plot().pointer({ x: 'key', y: 'acc', title: (d) => `${tick[d.key].replace('\n', ' ')}${d.kind === 'frozen' && d.key !== 'PTQ' ? ' (before retraining)' : ''} · ${d.series}${d.label ? ` (${d.label})` : ''}: ${pct(d.acc)}` })),
    ],
  });
}

/**
 * QBitOpt: the bits of every layer (and, with an activation budget, every activation point) at each allocation of a
 * QAT run, as a heatmap — one column per allocation (labelled with the training step it took effect at), one row per
 * layer in model order, then per point; colour and number: bits; outlined with ↑/↓ where the bits moved since the
 * allocation before; the kept model's column framed. The top rows give each allocation's average against the budget.
 * allocations: Allocation[] as far as the run got; layers, points: names in model order; kept: index | null;
 * budget: { weights, activations | null }; candidates: the bit-widths allowed.
 */
export function bitAllocationChart(el, allocations, { layers, points = [], kept = null, budget, candidates = [2, 3, 4, 5, 6, 7, 8] } = {}) {
  const AVG_W = `avg per weight (budget ${budget.weights})`;
  const AVG_A = budget.activations != null ? `avg per activation (budget ${budget.activations})` : null;
  const acts = AVG_A ? points.filter((p) => allocations.some((a) => a.pointBits[p] != null)) : [];
  const HEAD_W = 'weights, per layer:', HEAD_A = 'activations, per point:';
  const rowsDomain = [AVG_W, ...(AVG_A ? [AVG_A] : []), HEAD_W, ...layers, ...(acts.length ? [HEAD_A, ...acts] : [])];
  const cols = allocations.map((_, i) => i);
  const cells = [];
  allocations.forEach((a, i) => {
    const prev = allocations[i - 1];
    const add = (name, bits, before) => {
      if (bits == null) return;
      const moved = before != null && before !== bits;
      cells.push({ col: i, step: a.step, name, bits, before, moved, text: moved ? `${bits}${bits > before ? '↑' : '↓'}` : `${bits}` });
    };
    for (const l of layers) add(l, a.layerBits[l], prev?.layerBits[l]);
    for (const p of acts) add(p, a.pointBits[p], prev?.pointBits[p]);
  });
  const avgs = allocations.flatMap((a, i) => [
    { col: i, name: AVG_W, text: a.avgWbits.toFixed(2), title: `step ${a.step}: ${a.avgWbits.toFixed(3)} bits per weight (budget ${budget.weights}); ${a.changed} changed` },
    ...(AVG_A ? [{ col: i, name: AVG_A, text: a.avgAbits.toFixed(2), title: `step ${a.step}: ${a.avgAbits.toFixed(3)} bits per activation value (budget ${budget.activations})` }] : []),
  ]);
  const lo = Math.min(...candidates), hi = Math.max(...candidates);
  const longest = Math.max(...rowsDomain.map((r) => r.length));
  const marginLeft = 16 + 7.2 * longest;
  const colW = 58;
  return Plot().plot({
    width: Math.max(480, marginLeft + colW * Math.max(cols.length, 3) + 30), height: 70 + 19 * rowsDomain.length, marginLeft, marginTop: 40, marginBottom: 24, style,
    x: { domain: cols, axis: 'top', label: null, tickFormat: (i) => `step ${allocations[i].step}`, padding: 0.06 },
    y: { domain: rowsDomain, label: null, padding: 0.06, tickFormat: (r) => r },
    // Blues from a visible light blue (the fewest bits) to dark.
    color: { type: 'ordinal', domain: Array.from({ length: hi - lo + 1 }, (_, k) => lo + k), legend: true, label: 'bits',
      range: globalThis.d3.quantize((t) => globalThis.d3.interpolateBlues(0.18 + 0.82 * t), hi - lo + 1) },
    marks: [
      Plot().cell(cells, { x: 'col', y: 'name', fill: 'bits', title: (d) => `${d.name} · step ${d.step}: ${d.bits} bits${d.moved ? ` (was ${d.before})` : ''}` }),
      Plot().cell(cells.filter((d) => d.moved), { x: 'col', y: 'name', stroke: '#e8710a', strokeWidth: 2.5, fill: 'none', inset: 1.5 }),
      Plot().text(cells, { x: 'col', y: 'name', text: 'text', fill: (d) => (d.bits - lo > (hi - lo) / 2 ? 'white' : 'black'), fontWeight: (d) => (d.moved ? 700 : 400), fontSize: 12 }),
      Plot().text(avgs, { x: 'col', y: 'name', text: 'text', fontWeight: 700, fontSize: 12, title: 'title' }),
      ...(kept != null && kept < allocations.length ? [
        Plot().cell([kept], { x: (d) => d, stroke: '#c5221f', strokeWidth: 3, fill: 'none' }),
        Plot().text([kept], { x: (d) => d, text: () => 'kept', frameAnchor: 'bottom', dy: 14, fill: '#c5221f', fontWeight: 700 }),
      ] : []),
    ],
  });
}

/**
 * Per-class accuracy of a fine-tuned model against its PTQ start (an arrow per class from PTQ to the result) and
 * FP32 (a grey tick). models: { fp32, ptq, tuned } per-class arrays; names: { ptq, tuned } for the legend.
 */
export function classShiftChart(el, labels, { fp32, ptq, tuned }, names) {
  const rows = labels.map((cls, k) => ({ cls, fp32: fp32[k], ptq: ptq[k], tuned: tuned[k] })).filter((r) => r.ptq != null && r.tuned != null);
  const all = rows.flatMap((r) => [r.fp32, r.ptq, r.tuned]).filter((v) => v != null);
  const lo = Math.max(0, Math.floor((Math.min(...all) - 0.03) * 10) / 10);
  const series = ['FP32', names.ptq, names.tuned];
  const colors = ['#5f6368', '#e8710a', '#0b57d0'];
  return Plot().plot({
    width: width(el), height: 400, marginLeft: 56, marginBottom: 60, style,
    x: { domain: labels, label: null, tickRotate: -20, padding: 0.3 },
    y: { domain: [lo, 1.01], grid: true, label: `class accuracy${lo > 0 ? ` (from ${Math.round(100 * lo)}%)` : ''}`, tickFormat: '.0%', ticks: globalThis.d3.ticks(lo, 1, 6) },
    color: { domain: series, range: colors, legend: true },
    marks: [
      Plot().tickY(rows.filter((r) => r.fp32 != null), { x: 'cls', y: 'fp32', stroke: colors[0], strokeWidth: 3, title: (d) => `${d.cls} · FP32: ${pct(d.fp32)}` }),
      Plot().arrow(rows.filter((r) => Math.abs(r.tuned - r.ptq) > 1e-9), { x1: 'cls', x2: 'cls', y1: 'ptq', y2: 'tuned', stroke: (d) => (d.tuned > d.ptq ? '#188038' : '#c5221f'), strokeWidth: 2, headLength: 7, insetEnd: 5 }),
      Plot().dot(rows, { x: 'cls', y: 'ptq', fill: colors[1], r: 4.5, title: (d) => `${d.cls} · ${names.ptq}: ${pct(d.ptq)}` }),
      Plot().dot(rows, { x: 'cls', y: 'tuned', fill: colors[2], r: 5, title: (d) => `${d.cls} · ${names.tuned}: ${pct(d.tuned)}` }),
      Plot().text(rows, { x: 'cls', y: (d) => Math.max(d.ptq, d.tuned), text: (d) => `${d.tuned >= d.ptq ? '+' : '−'}${Math.abs(100 * (d.tuned - d.ptq)).toFixed(1)}`, dy: -14, fontSize: 12,
        fill: (d) => (Math.abs(d.tuned - d.ptq) < 1e-9 ? '#5f6368' : d.tuned > d.ptq ? '#188038' : '#c5221f') }),
    ],
  });
}

/**
 * SOS, stage by stage: per-class accuracy after PTQ and each stage, one panel per configuration. Every class
 * is a thin grey line; the class PTQ hurts most is red (its FP32 accuracy dashed), top-1 is blue.
 * runs: [{ name, stages: [{ stage, top1, perClass }] }] (stages as they finish); fp32PerClass: FP32's per class.
 */
export function sosStageChart(el, runs, labels, fp32PerClass) {
  const STAGE = ['PTQ', 'stage 1', 'stage 2', 'stage 3'];
  const names = runs.map((r) => r.name);
  const rows = [], worst = [], top = [], fpRule = [];
  for (const r of runs) {
    const ev = r.stages.filter((s) => s.perClass);
    if (!ev.length) continue;
    // The class the first evaluated stage (PTQ) hurts most.
    const first = ev[0].perClass;
    let w = -1;
    first.forEach((a, k) => { if (a != null && (w < 0 || a < first[w])) w = k; });
    for (const s of ev) {
      s.perClass.forEach((acc, k) => { if (acc != null) rows.push({ config: r.name, stage: STAGE[s.stage], cls: labels[k], acc }); });
      if (w >= 0) worst.push({ config: r.name, stage: STAGE[s.stage], cls: labels[w], acc: s.perClass[w] });
      top.push({ config: r.name, stage: STAGE[s.stage], acc: s.top1 });
    }
    if (w >= 0 && fp32PerClass && fp32PerClass[w] != null) fpRule.push({ config: r.name, acc: fp32PerClass[w], text: `FP32 ${labels[w]} ${pct(fp32PerClass[w])}` });
  }
  const all = [...rows, ...fpRule].map((d) => d.acc);
  const lo = all.length ? Math.max(0, Math.floor((Math.min(...all) - 0.03) * 10) / 10) : 0;
  const last = (d, i, data) => i === data.length - 1 || data[i + 1].config !== d.config;
  return Plot().plot({
    width: Math.max(width(el), 300 * names.length), height: 440, marginLeft: 56, marginRight: 120, marginBottom: 46, marginTop: 30, style,
    fx: { domain: names, label: null, padding: 0.25 },
    x: { domain: STAGE, label: null, padding: 0.2 },
    y: { domain: [lo, 1.01], grid: true, label: `class accuracy${lo > 0 ? ` (from ${Math.round(100 * lo)}%)` : ''}`, tickFormat: '.0%', ticks: globalThis.d3.ticks(lo, 1, 6) },
    marks: [
      Plot().frame({ stroke: '#ddd' }),
      Plot().line(rows, { fx: 'config', x: 'stage', y: 'acc', z: 'cls', stroke: '#9aa0a6', strokeWidth: 1.3 }),
      Plot().dot(rows, { fx: 'config', x: 'stage', y: 'acc', fill: '#9aa0a6', r: 2.5, title: (d) => `${d.cls} after ${d.stage}: ${pct(d.acc)}` }),
      Plot().ruleY(fpRule, { fx: 'config', y: 'acc', stroke: '#c5221f', strokeDasharray: '6,4', strokeWidth: 1.5 }),
      Plot().text(fpRule, { fx: 'config', y: 'acc', text: 'text', frameAnchor: 'left', dy: -9, dx: 4, fill: '#c5221f', fontSize: 12 }),
      Plot().line(top, { fx: 'config', x: 'stage', y: 'acc', stroke: '#0b57d0', strokeWidth: 3, marker: 'circle' }),
      Plot().text(top.filter(last), { fx: 'config', x: 'stage', y: 'acc', text: (d) => `top-1 ${pct(d.acc)}`, textAnchor: 'start', dx: 10, fill: '#0b57d0', fontWeight: 600, fontSize: 13 }),
      Plot().line(worst, { fx: 'config', x: 'stage', y: 'acc', stroke: '#c5221f', strokeWidth: 3, marker: 'circle' }),
      Plot().text(worst, { fx: 'config', x: 'stage', y: 'acc', text: (d) => pct(d.acc), dy: 16, fill: '#c5221f', fontSize: 12, fontWeight: 600 }),
      Plot().text(worst.filter(last), { fx: 'config', x: 'stage', y: 'acc', text: 'cls', textAnchor: 'start', dx: 10, fill: '#c5221f', fontWeight: 600, fontSize: 13 }),
    ],
  });
}

/**
 * The compression trade-off: every model (FP32 and each pruned one) at FP32 and at each quantized precision, as a
 * point — x: size in bytes (log scale) or forward latency in ms, y: top-1 or worst-class accuracy; colour: the model,
 * symbol: the precision; each point labelled. The Pareto frontier (no other point both smaller or faster and at
 * least as accurate) is drawn as a staircase through its points, which are ringed.
 * points: [{ label, model, precision, bytes, ms, top1, worst, worstLabel, frontier }]; x: 'bytes' | 'ms'; y: 'top1' | 'worst'.
 */
export function paretoChart(el, points, { x = 'bytes', y = 'top1', models, precisions } = {}) {
  const X = { bytes: 'model size (bytes, log scale) →', ms: 'forward latency (ms per image, WASM) →' }[x];
  const Y = { top1: '↑ top-1 on the evaluation images', worst: '↑ worst-class accuracy on the evaluation images' }[y];
  const frontier = points.filter((p) => p.frontier).sort((a, b) => a[x] - b[x]);
  const ys = points.map((p) => p[y]);
  const lo = Math.max(0, Math.floor((Math.min(...ys) - 0.03) * 20) / 20);
  const hi = Math.min(1.01, Math.ceil((Math.max(...ys) + 0.02) * 20) / 20);
  const fmtX = (v) => (x === 'bytes' ? `${(v / 1e3).toFixed(1)} kB (${Math.round(v).toLocaleString()} bytes)` : `${v.toFixed(3)} ms`);
  const symbols = ['circle', 'square', 'diamond', 'triangle', 'star', 'cross', 'wye', 'times'];
  return Plot().plot({
    width: Math.min(width(el), 1100), height: 500, marginLeft: 60, marginRight: 40, marginBottom: 48, marginTop: 24, style,
    x: x === 'bytes'
      ? { type: 'log', label: X, grid: true, tickFormat: (v) => (v >= 1e6 ? `${v / 1e6} MB` : `${v / 1e3} kB`), ticks: 6, inset: 24 }
      : { type: 'linear', label: X, grid: true, inset: 24, zero: false },
    y: { domain: [lo, hi], grid: true, label: Y, tickFormat: hi - lo <= 0.1 ? '.1%' : '.0%', ticks: globalThis.d3.ticks(lo, Math.min(1, hi), 6) },
    color: { domain: models, range: SERIES_COLORS, legend: true, label: 'model' },
    symbol: { domain: precisions, range: symbols.slice(0, precisions.length), legend: true, label: 'precision' },
    marks: [
      Plot().line(frontier, { x, y, curve: 'step-after', stroke: '#c5221f', strokeWidth: 2, strokeDasharray: '6,3', ariaDescription: 'pareto frontier' }),
      Plot().dot(frontier, { x, y, r: 11, stroke: '#c5221f', strokeWidth: 1.5, fill: 'none', ariaDescription: 'pareto frontier point' }),
      Plot().dot(points, { x, y, stroke: 'model', fill: 'model', symbol: 'precision', r: 5.5, strokeWidth: 1.5, ariaDescription: 'pareto point',
        title: (d) => `${d.label}: ${fmtX(d[x])} · top-1 ${pct(d.top1)} · worst class ${d.worstLabel} ${pct(d.worst)}${d.frontier ? ' · on the Pareto frontier' : ''}` }),
      Plot().text(points, { x, y, text: 'label', dy: -12, fontSize: 11, fill: (d) => (d.frontier ? '#111' : '#5f6368'), fontWeight: (d) => (d.frontier ? 700 : 400), ariaDescription: 'pareto label' }),
    ],
  });
}

// ---------- export ------------------------------------------------------------------------------

/** The chart's SVG as a standalone string (with its colour legend, when it has one). */
export function chartSvg(node) {
  const svgs = node.tagName.toLowerCase() === 'svg' ? [node] : [...node.querySelectorAll('svg')];
  const main = svgs.reduce((a, b) => ((b.clientWidth * b.clientHeight) > (a.clientWidth * a.clientHeight) ? b : a));
  const clone = main.cloneNode(true);
  const w = Number(main.getAttribute('width')) || main.clientWidth;
  const h = Number(main.getAttribute('height')) || main.clientHeight;
  // Plot's swatch legend is HTML: redraw it as SVG above the chart.
  const swatches = node.querySelectorAll ? [...node.querySelectorAll('[class$="-swatch"]')] : [];
  let legendH = 0;
  const legend = document.createElementNS('http://www.w3.org/2000/svg', 'g');
  if (swatches.length) {
    legendH = 28;
    let x = 10;
    for (const s of swatches) {
      const sw = s.querySelector('svg');
      const fill = sw?.getAttribute('fill') || sw?.querySelector('[fill]')?.getAttribute('fill') || '#888';
      const label = s.textContent.trim();
      legend.insertAdjacentHTML('beforeend', `<rect x="${x}" y="6" width="15" height="15" fill="${fill}"/><text x="${x + 20}" y="19" font-size="14" font-family="${FONT}">${label.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`);
      x += 30 + label.length * 8.5;
    }
  }
  const out = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  out.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  out.setAttribute('width', w);
  out.setAttribute('height', h + legendH);
  out.setAttribute('viewBox', `0 0 ${w} ${h + legendH}`);
  out.setAttribute('font-family', FONT);
  out.insertAdjacentHTML('afterbegin', `<rect width="100%" height="100%" fill="white"/>`);
  out.appendChild(legend);
  clone.setAttribute('y', legendH);
  out.appendChild(clone);
  return new XMLSerializer().serializeToString(out);
}

/** PNG bytes (a Blob) of an SVG string, at `scale`× resolution. */
export async function svgToPng(svgText, scale = 2) {
  const url = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(img.naturalWidth * scale);
    canvas.height = Math.ceil(img.naturalHeight * scale);
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = 'white';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG export failed'))), 'image/png'));
  } finally {
    URL.revokeObjectURL(url);
  }
}

// ---------- Learn mode's figures (web/page/learn.js): each drawn from numbers the worker computed once ----------
const LEARN_COLORS = { minmax: '#0b57d0', percentile: '#e8710a', mse: '#188038', uniform: '#0b57d0', log2: '#e8710a', sulq: '#a142f4', tensor: '#e8710a', channel: '#0b57d0' };

/** (a) One channel's weights (grey) and their quantized values (blue), the rounding error as a red line between them, the levels as rules. */
export function learnQuantize(el, a, bits) {
  const g = a.byBits[bits];
  const pts = a.values.map((v, i) => ({ i, v, q: g.q[i] }));
  return Plot().plot({
    width: width(el), height: 320, marginLeft: 64, style,
    x: { label: 'weight (index in the channel) →' }, y: { label: '↑ value', grid: false },
    color: { legend: true, domain: ['FP32 weight', `${bits}-bit value`, 'rounding error'], range: ['#9aa0a6', '#0b57d0', '#c5221f'] },
    marks: [
      Plot().ruleY(g.levels, { stroke: '#0b57d0', strokeOpacity: 0.25 }),
      Plot().link(pts, { x1: 'i', x2: 'i', y1: 'v', y2: 'q', stroke: '#c5221f', strokeWidth: 2 }),
      Plot().dot(pts, { x: 'i', y: 'v', r: 3, fill: '#9aa0a6' }),
      Plot().dot(pts, { x: 'i', y: 'q', r: 3, fill: '#0b57d0', symbol: 'diamond' }),
    ],
  });
}

/** (b) The layer's histogram with each range method's clipping bounds (the chosen one bold), and its error against bits. */
export function learnRange(el, b, bits, range) {
  const methods = Object.keys(b.byMethod);
  const bounds = methods.flatMap((m) => [b.byMethod[m][bits].lo, b.byMethod[m][bits].hi].map((x) => ({ m, x })));
  const w = width(el);
  const hist = Plot().plot({
    width: w, height: 220, marginLeft: 64, style,
    x: { label: 'weight value →' }, y: { label: '↑ weights', type: 'sqrt' },
    color: { legend: true, domain: methods, range: methods.map((m) => LEARN_COLORS[m]) },
    marks: [
      Plot().rectY(b.hist, { x1: 'x0', x2: 'x1', y: 'count', fill: '#9aa0a6' }),
      Plot().ruleX(bounds, { x: 'x', stroke: 'm', strokeWidth: (d) => (d.m === range ? 3 : 1), strokeDasharray: (d) => (d.m === range ? null : '4,3') }),
    ],
  });
  const curve = methods.flatMap((m) => Object.entries(b.byMethod[m]).map(([k, v]) => ({ m, bits: Number(k), mse: v.mse })));
  const err = Plot().plot({
    width: w, height: 220, marginLeft: 64, style,
    x: { label: 'bits →', ticks: 7 }, y: { label: '↑ mean squared error (log)', type: 'log', grid: true },
    color: { domain: methods, range: methods.map((m) => LEARN_COLORS[m]) },
    marks: [
      Plot().line(curve, { x: 'bits', y: 'mse', stroke: 'm' }),
      Plot().dot(curve, { x: 'bits', y: 'mse', fill: 'm', r: (d) => (d.m === range && d.bits === bits ? 7 : 2.5) }),
    ],
  });
  const box = document.createElement('div');
  box.append(hist, err);
  return box;
}

/** (c) Attention probabilities on a log axis with the chosen quantizer's levels over them, and each quantizer's error against bits. */
export function learnSoftmax(el, c, quantizer, bits, hist) {
  const g = c.byQuantizer[quantizer][bits];
  const w = width(el);
  const names = Object.keys(c.byQuantizer);
  const top = Plot().plot({
    width: w, height: 220, marginLeft: 64, style,
    x: { label: 'attention probability (log) →', type: 'log', tickFormat: '~e' }, y: { label: '↑ probabilities', type: 'sqrt' },
    marks: [
      Plot().rectY(hist, { x1: 'x0', x2: 'x1', y: 'count', fill: '#9aa0a6' }),
      Plot().ruleX(g.levels.filter((v) => v >= hist[0].x0), { stroke: LEARN_COLORS[quantizer], strokeWidth: 2 }),
    ],
  });
  const curve = names.flatMap((m) => Object.entries(c.byQuantizer[m]).map(([k, v]) => ({ m, bits: Number(k), mse: v.mse })));
  const err = Plot().plot({
    width: w, height: 220, marginLeft: 64, style,
    x: { label: 'bits →', ticks: 7 }, y: { label: '↑ mean squared error (log)', type: 'log', grid: true },
    color: { legend: true, domain: names, range: names.map((m) => LEARN_COLORS[m]) },
    marks: [
      Plot().line(curve, { x: 'bits', y: 'mse', stroke: 'm' }),
      Plot().dot(curve, { x: 'bits', y: 'mse', fill: 'm', r: (d) => (d.m === quantizer && d.bits === bits ? 7 : 2.5) }),
    ],
  });
  const box = document.createElement('div');
  box.append(top, err);
  return box;
}

/** (d) Each output channel's rounding error with one grid for the layer (per tensor) and a grid per channel. */
export function learnGranularity(el, d, bits) {
  const g = d.byBits[bits];
  const rows = ['tensor', 'channel'].flatMap((k) => g[k].map((mse, r) => ({ k: k === 'tensor' ? 'per tensor' : 'per channel', r, mse: Math.max(mse, 1e-12) })));
  return Plot().plot({
    width: width(el), height: 320, marginLeft: 64, style,
    x: { label: 'output channel (row of the weight matrix) →' }, y: { label: '↑ mean squared error (log)', type: 'log', grid: true },
    color: { legend: true, domain: ['per tensor', 'per channel'], range: [LEARN_COLORS.tensor, LEARN_COLORS.channel] },
    marks: [Plot().dot(rows, { x: 'r', y: 'mse', fill: 'k', r: 2.5 })],
  });
}

/** (e) Per-class accuracy at W b A b (bars; the worst class red) against FP32 (ticks) and the mean (a rule); below, the mean and the worst class against bits. */
export function learnClasses(el, e, bits) {
  const g = e.byBits[bits];
  const worst = g.worstClass?.index;
  const rows = e.labels.map((label, k) => ({ label, k, acc: g.perClass[k], fp32: e.fp32.perClass[k] })).filter((r) => r.acc != null);
  const w = width(el);
  const bars = Plot().plot({
    width: w, height: 260, marginLeft: 56, marginBottom: 70, style,
    x: { label: null, domain: e.labels, tickRotate: -30 }, y: { label: '↑ accuracy', domain: [0, 1], tickFormat: '.0%', grid: true },
    marks: [
      Plot().barY(rows, { x: 'label', y: 'acc', fill: (d) => (d.k === worst ? '#c5221f' : '#0b57d0') }),
      Plot().tickY(rows, { x: 'label', y: 'fp32', stroke: '#111', strokeWidth: 2 }),
      Plot().ruleY([g.top1], { stroke: '#e8710a', strokeWidth: 2, strokeDasharray: '6,3' }),
    ],
  });
  const curve = Object.entries(e.byBits).flatMap(([b, v]) => [{ s: 'mean (top-1)', bits: Number(b), acc: v.top1 }, { s: 'worst class', bits: Number(b), acc: v.worstClass?.accuracy ?? null }]).filter((d) => d.acc != null);
  const lines = Plot().plot({
    width: w, height: 200, marginLeft: 56, style,
    x: { label: 'bits (W = A) →', ticks: 7 }, y: { label: '↑ accuracy', domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: ['mean (top-1)', 'worst class'], range: ['#e8710a', '#c5221f'] },
    marks: [
      Plot().line(curve, { x: 'bits', y: 'acc', stroke: 's' }),
      Plot().dot(curve, { x: 'bits', y: 'acc', fill: 's', r: (d) => (d.bits === bits ? 7 : 2.5) }),
    ],
  });
  const box = document.createElement('div');
  box.append(bars, lines);
  return box;
}

/** (f) Per-class accuracy of every calibration draw (seed) at W b A b: grey dots, the chosen draw blue, the worst
 * (class × seed) red, FP32 as black ticks; below, each draw's top-1 and worst class against bits. */
export function learnDraws(el, f, bits, draw) {
  const runs = f.byBits[bits];
  const pts = runs.flatMap((r) => r.perClass.map((acc, k) => ({ label: f.labels[k], k, seed: r.seed, acc }))).filter((d) => d.acc != null);
  const worst = pts.reduce((a, d) => (d.acc < a.acc ? d : a), pts[0]);
  const fp = f.labels.map((label, k) => ({ label, acc: f.fp32.perClass[k] })).filter((d) => d.acc != null);
  const chosen = pts.filter((d) => d.seed === draw);
  const spans = f.labels.map((label, k) => { const a = pts.filter((d) => d.k === k).map((d) => d.acc); return { label, lo: Math.min(...a), hi: Math.max(...a) }; });
  const w = width(el);
  const top = Plot().plot({
    width: w, height: 270, marginLeft: 56, marginBottom: 70, style,
    x: { label: null, domain: f.labels, tickRotate: -30 }, y: { label: '↑ class accuracy', domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: ['each draw', `draw ${draw}`, 'worst draw', 'FP32'], range: ['#9aa0a6', '#0b57d0', '#c5221f', '#111'] },
    marks: [
      Plot().ruleX(spans, { x: 'label', y1: 'lo', y2: 'hi', stroke: '#9aa0a6', strokeWidth: 6, strokeOpacity: 0.35 }),
      Plot().tickY(fp, { x: 'label', y: 'acc', stroke: '#111', strokeWidth: 2 }),
      Plot().dot(pts, { x: 'label', y: 'acc', r: 3, fill: '#9aa0a6' }),
      Plot().line(chosen, { x: 'label', y: 'acc', stroke: '#0b57d0', strokeOpacity: 0.5 }),
      Plot().dot(chosen, { x: 'label', y: 'acc', r: 4.5, fill: '#0b57d0' }),
      Plot().dot([worst], { x: 'label', y: 'acc', r: 8, stroke: '#c5221f', strokeWidth: 3 }),
    ],
  });
  const curve = Object.entries(f.byBits).flatMap(([b, rs]) => rs.flatMap((r) => [
    { s: 'top-1', bits: Number(b), seed: r.seed, acc: r.top1 }, { s: 'worst class', bits: Number(b), seed: r.seed, acc: r.worstClass?.accuracy ?? null }]))
    .filter((d) => d.acc != null);
  const lines = Plot().plot({
    width: w, height: 200, marginLeft: 56, style,
    x: { label: 'bits (W = A) →', ticks: Object.keys(f.byBits).length }, y: { label: '↑ accuracy, each draw', domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: ['top-1', 'worst class'], range: ['#e8710a', '#c5221f'] },
    marks: [
      Plot().dot(curve, { x: 'bits', y: 'acc', stroke: 's', r: (d) => (d.bits === bits ? 4 : 2.5) }),
      Plot().dot(curve.filter((d) => d.bits === bits && d.seed === draw), { x: 'bits', y: 'acc', fill: 's', r: 7 }),
    ],
  });
  const box = document.createElement('div');
  box.append(top, lines);
  return box;
}

/** (g) Each layer's weight bits under the mixed plan in uniform W b A b's bytes (bars, shaded by the layer's sensitivity
 * at b bits) against uniform W b (black ticks); below, top-1 and worst class against b, plan vs uniform. */
export function learnMixed(el, g, bits) {
  const at = g.byBits[bits];
  const k = g.candidates.indexOf(bits);
  const short = (n) => n.replace(/^blocks\.(\d+)\./, 'b$1.').replace(/^layer\.(\d+)\./, 'l$1.');
  const rows = g.layers.map((l) => ({ layer: short(l.name), mixed: at.mixed.layerBits[l.name], uniform: at.uniform.layerBits[l.name], sens: Math.max(l.sensitivity[k], 1e-9) }));
  const w = width(el);
  const bars = Plot().plot({
    width: w, height: 270, marginLeft: 56, marginBottom: 90, style,
    x: { label: null, domain: rows.map((r) => r.layer), tickRotate: -45 }, y: { label: '↑ weight bits', domain: [0, 8], ticks: 8, grid: true },
    color: { type: 'log', scheme: 'blues', label: `sensitivity at ${bits} bits (KL, log)`, legend: true },
    marks: [
      Plot().barY(rows, { x: 'layer', y: 'mixed', fill: 'sens', stroke: '#0b57d0' }),
      Plot().tickY(rows, { x: 'layer', y: 'uniform', stroke: '#111', strokeWidth: 3 }),
    ],
  });
  const curve = Object.entries(g.byBits).flatMap(([b, v]) => ['mixed', 'uniform'].flatMap((m) => [
    { s: 'top-1', m, bits: Number(b), acc: v[m].top1 }, { s: 'worst class', m, bits: Number(b), acc: v[m].worstClass?.accuracy ?? null }]))
    .filter((d) => d.acc != null);

  const lines = Plot().plot({
    width: w, height: 220, marginLeft: 56, style,
    x: { label: 'bits b (W = A): uniform, and the plan in its bytes; solid: plan, dashed: uniform →', ticks: Object.keys(g.byBits).length }, y: { label: '↑ accuracy', domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: ['top-1', 'worst class'], range: ['#e8710a', '#c5221f'] },
    marks: [
      Plot().line(curve.filter((d) => d.m === 'mixed'), { x: 'bits', y: 'acc', stroke: 's', strokeWidth: 2 }),
      Plot().line(curve.filter((d) => d.m === 'uniform'), { x: 'bits', y: 'acc', stroke: 's', strokeDasharray: '5,4' }),
      Plot().dot(curve.filter((d) => d.m === 'uniform'), { x: 'bits', y: 'acc', stroke: 's', fill: 'white', r: (d) => (d.bits === bits ? 7 : 3) }),
      Plot().dot(curve.filter((d) => d.m === 'mixed'), { x: 'bits', y: 'acc', fill: 's', r: (d) => (d.bits === bits ? 7 : 3) }),
    ],
  });
  const box = document.createElement('div');
  box.append(bars, lines);
  return box;
}

/** (h) Per-class accuracy after the chosen repair (bars; PTQ's worst class red) against PTQ (grey ticks) and FP32
 * (black ticks); below, each method's top-1 and its accuracy on PTQ's worst class. */
export const REPAIR_NAMES = { ptq: 'PTQ', sos: 'SOS reconstruction', qat: 'QAT', inq: 'INQ' };
export function learnRepair(el, h, method) {
  const m = h.byMethod[method], ptq = h.byMethod.ptq;
  const worst = ptq.worstClass.index;
  const rows = h.labels.map((label, k) => ({ label, k, acc: m.perClass[k], ptq: ptq.perClass[k], fp32: h.fp32.perClass[k] })).filter((r) => r.acc != null);
  const w = width(el);
  const bars = Plot().plot({
    width: w, height: 260, marginLeft: 56, marginBottom: 70, style,
    x: { label: null, domain: h.labels, tickRotate: -30 }, y: { label: `↑ accuracy, ${REPAIR_NAMES[method]}`, domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: [REPAIR_NAMES[method], 'PTQ’s worst class', 'PTQ', 'FP32'], range: ['#0b57d0', '#c5221f', '#9aa0a6', '#111'] },
    marks: [
      Plot().barY(rows, { x: 'label', y: 'acc', fill: (d) => (d.k === worst ? '#c5221f' : '#0b57d0') }),
      Plot().tickY(rows, { x: 'label', y: 'ptq', stroke: '#9aa0a6', strokeWidth: 3 }),
      Plot().tickY(rows, { x: 'label', y: 'fp32', stroke: '#111', strokeWidth: 2 }),
    ],
  });
  const names = Object.keys(h.byMethod);
  const pts = names.flatMap((k) => [{ method: REPAIR_NAMES[k], k, s: 'top-1', acc: h.byMethod[k].top1 }, { method: REPAIR_NAMES[k], k, s: `${h.labels[worst]} (PTQ’s worst)`, acc: h.byMethod[k].perClass[worst] }]);
  const dots = Plot().plot({
    width: w, height: 200, marginLeft: 56, style,
    x: { label: null, domain: names.map((k) => REPAIR_NAMES[k]) }, y: { label: '↑ accuracy', domain: [0, 1], tickFormat: '.0%', grid: true },
    color: { legend: true, domain: ['top-1', `${h.labels[worst]} (PTQ’s worst)`], range: ['#e8710a', '#c5221f'] },
    marks: [
      Plot().ruleY([h.fp32.perClass[worst]], { stroke: '#c5221f', strokeDasharray: '4,3' }),
      Plot().ruleY([h.fp32.top1], { stroke: '#e8710a', strokeDasharray: '4,3' }),
      Plot().dot(pts, { x: 'method', y: 'acc', fill: 's', r: (d) => (d.k === method ? 8 : 4) }),
    ],
  });
  const box = document.createElement('div');
  box.append(bars, dots);
  return box;
}
