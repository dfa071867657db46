// Learn mode (issue 18 item 1): a tab beside the tool, one lesson a concept, each with a short text, one figure that
// answers its knob, and two or three "try this" prompts, all on the loaded model's real numbers. The worker computes
// every knob value's numbers once (page method `learn`, web/page/worker.js, with bl.quantizeTensor; the quantized
// evaluations of (e) with `learnClasses` and of (f) with `learnDraws`, when the lesson opens); a knob only redraws the
// figure here, in the page. The mode, lesson and knobs live in the URL: learn=a&bits=3, range=…, quantizer=…, draw=….
import { REPAIR_NAMES, learnClasses, learnDraws, learnGranularity, learnMixed, learnQuantize, learnRange, learnRepair, learnSoftmax } from '../charts.js';
import { fetchDefaultTrain, loadTrainInput } from './finetune.js';
import { esc } from './format.js';
import { $, state } from './state.js';
import { sweepWorkers } from './sweep.js';
import { readSettings } from './url-state.js';
import { PageWorker, isStopped, loadInto } from './workers.js';

const BITS = [2, 3, 4, 5, 6, 7, 8];
const RANGES = { minmax: 'min-max', percentile: 'percentile', mse: 'MSE' };
const QUANTIZERS = { uniform: 'uniform', log2: 'log2', sulq: 'SULQ' };
const fmt = (v) => (v === 0 ? '0' : Math.abs(v) < 1e-3 ? v.toExponential(1) : v.toPrecision(3));

// Each lesson: its title, text (≤ 120 words), prompts (each sets knobs), the knobs it has, and its figure and caption.
export const LESSONS = {
  a: {
    title: 'What a quantizer does',
    text: 'A quantizer replaces each number by the nearest of a few allowed values, its levels. With b bits a symmetric uniform quantizer has 2^b − 1 levels, evenly spaced from −max to +max. Here are {n} real weights of one output channel of {layer}: grey is the trained FP32 value, blue the value after rounding, red the rounding error. Every bit you remove halves the number of levels and roughly doubles the gap between them, so the red lines grow. At 8 bits they are invisible; at 2 bits each weight is −max, 0 or +max.',
    prompts: [['Go to 2 bits: how many distinct values remain?', { bits: 2 }], ['Compare 4 and 5 bits: does the error halve?', { bits: 4 }], ['Press Animate and watch the levels spread apart.', { animate: true }]],
    knobs: ['bits', 'animate'],
  },
  d: {
    title: 'Per tensor vs per channel',
    text: 'A quantizer’s grid is set by the largest value it must cover. Per tensor, one grid serves the whole weight matrix of {layer}, so its widest row sets the step for every row; rows with small weights round most of them to zero. Per channel, each output channel (row) gets a grid fitted to its own range. Each dot is one row’s mean squared rounding error: orange with one grid for the layer, blue with a grid per row. The gap is what per-channel scales buy. On this log scale it stays much the same from 8 bits down to 4 (the ranges set it, not the bits) and closes at 2, where both grids are too coarse.',
    prompts: [['At 8 bits, is the gap still there?', { bits: 8 }], ['At 3 bits, how many rows lose more than 10× per tensor?', { bits: 3 }], ['At 2 bits, why do the two clouds meet?', { bits: 2 }]],
    knobs: ['bits'],
  },
  b: {
    title: 'Range and clipping',
    text: 'Before rounding, a quantizer chooses its range: values beyond it are clipped to the edge. Min-max covers every weight, so one outlier stretches the grid for all. Percentile ignores the extreme tail. MSE searches for the range with the least total error, trading clipping error on a few weights for finer steps on the many. Top: the weights of {layer} with each method’s clipping bounds (the chosen one bold). Bottom: each method’s mean squared error as the bits change; the big dot is your choice. At few bits, clipping wins; at many, it barely matters.',
    prompts: [['At 2 bits, how much tighter is MSE’s range than min-max’s?', { bits: 2, range: 'mse' }], ['At 8 bits, which method has the least error?', { bits: 8, range: 'minmax' }], ['Try percentile at 4 bits: how many weights does it clip?', { bits: 4, range: 'percentile' }]],
    knobs: ['bits', 'range'],
  },
  c: {
    title: 'Quantizing attention probabilities',
    text: 'After softmax, attention is a probability per patch: all positive, most tiny, a few large. These are the model’s real ones: every head’s attention from every token to every token, at every block, for the first {images} images. A uniform grid spends its levels evenly from 0 to the maximum, so most small probabilities round to zero. Log2 spaces levels by powers of two, fine near zero and coarse near one. SULQ bends the grid between the two. The top shows the chosen grid’s levels (log scale); the bottom each quantizer’s error.',
    prompts: [['Uniform at 3 bits: what share of probabilities becomes 0?', { quantizer: 'uniform', bits: 3 }], ['Log2 at 3 bits: same question.', { quantizer: 'log2', bits: 3 }], ['Log2 from 4 to 8 bits: why does its error stop falling?', { quantizer: 'log2', bits: 8 }]],
    knobs: ['bits', 'quantizer'],
  },
  e: {
    title: 'The average hides the worst class',
    text: 'A quantized model is usually judged by its top-1 accuracy, the average over all images. But rounding does not hurt every class alike: classes that look like others (in Fashion-MNIST: shirt, pullover, coat) sit near a decision boundary, and a small push sends them across. Here the model is quantized at each bit-width (weights and activations alike; the library’s default quantizers, calibration seed 0) and evaluated on the loaded images. Top: each class’s accuracy (bars, the worst red) against FP32 (black ticks); the dashed line is the average. Bottom: the average and the worst class as the bits change. The worst class falls first, and further.',
    prompts: [['At 4 bits, how far below the average is the worst class?', { bits: 4 }], ['At 3 bits, which class is worst, and how much did it lose?', { bits: 3 }], ['At which bit-width does the worst class start to fall?', { bits: 6 }]],
    knobs: ['bits'],
  },
  f: {
    title: 'Calibration draws',
    text: 'A quantizer fits its activation ranges on a few calibration images drawn at random from a pool; the seed decides which. Another draw gives other ranges, and other accuracy. Here the model was quantized {seeds} times at each bit-width (seeds 0–{last}, {calib} calibration images each) and every draw evaluated on the first {n} images. Top: each class’s accuracy in every draw (grey dots, the grey bar their spread), the draw you choose blue, FP32 black, and the worst draw (the lowest class accuracy of any seed) ringed red. Bottom: each draw’s top-1 and worst class against bits. The top-1 hardly moves between draws; the hard classes swing, so a single seed can miss the worst draw.',
    prompts: [['At 3 bits, which class swings most between draws?', { bits: 3, draw: 0 }], ['At 4 bits, step through the draws: is the worst class always the same?', { bits: 4, draw: 1 }], ['At 6 bits, how wide is the spread now?', { bits: 6, draw: 0 }]],
    knobs: ['bits', 'draw'],
    bits: [3, 4, 5, 6],
    draws: 5,
  },
  g: {
    title: 'Mixed precision',
    text: 'Rounding hurts some layers more than others. Mixed precision first measures each layer’s and activation’s sensitivity: how far the model’s outputs move (KL divergence) when only it is quantized, here on {sens} calibration images at 2–8 bits. Then it allocates the bits exactly: the least total sensitivity in no more bytes than uniform takes. Top: each layer’s weight bits in the plan (bars, darker where more sensitive) against uniform’s (black ticks). Bottom: top-1 and worst class of the plan (solid) and of uniform (dashed) on the first {n} images at each budget, weights and activations alike. The plan lowers the average harm; it does not promise the worst class.',
    prompts: [['At 3 bits, which layers get more bits, and which pay for them?', { bits: 3 }], ['At 4 bits, compare the worst class of the plan and of uniform.', { bits: 4 }], ['At 6 bits, does the plan still matter?', { bits: 6 }]],
    knobs: ['bits'],
    bits: [3, 4, 5, 6],
  },
  h: {
    title: 'Repairing the worst class',
    text: 'Rounding cannot undo the harm it did to a class; changing the model can. Three repairs of this model at W3A3 (32 calibration images, seed 0): SOS reconstruction tunes each block’s quantized weights until its outputs match FP32’s on the calibration images ({iters} Adam steps per block and stage, no labels); QAT trains the whole quantized model for one epoch on {train} labelled training images, learning from FP32’s outputs; INQ makes every weight a power of two in two steps, retraining the rest in between. Top: each class after the chosen repair (PTQ’s worst class red) against PTQ (grey) and FP32 (black). Bottom: each method’s top-1 and its accuracy on PTQ’s worst class, on the first {n} images.',
    prompts: [['QAT: how many points does the worst class win back?', { repair: 'qat' }], ['SOS reconstruction sees no labels: how far does it get?', { repair: 'sos' }], ['INQ allows only powers of two: does the worst class recover?', { repair: 'inq' }]],
    knobs: ['repair'],
  },
};
export const LESSON_ORDER = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
export const LEARN_DEFAULT = { bits: 4, range: 'minmax', quantizer: 'uniform', draw: 0, repair: 'qat' };
// The lessons whose numbers are quantized evaluations, computed in the worker when the lesson opens: the worker
// method, where the result is kept in `learn`, and the progress line.
const HEAVY = {
  e: { method: 'learnClasses', key: 'classes', start: `Quantizing the model at ${BITS[0]}–${BITS[BITS.length - 1]} bits and evaluating each on the images…`,
    progress: (p) => `Quantizing at ${p.bits} bits and evaluating (${p.done + 1} of ${p.total})…` },
  f: { method: 'learnDraws', key: 'draws', start: 'Quantizing the model with 5 calibration draws at each of 3–6 bits and evaluating each…',
    progress: (p) => `Quantizing at ${p.bits} bits with seed ${p.seed} and evaluating (${p.done + 1} of ${p.total})…` },
  g: { method: 'learnMixed', key: 'mixed', start: 'Measuring each layer’s and activation’s sensitivity…',
    progress: (p) => (p.phase === 'sensitivities' ? `Measuring each layer’s and activation’s sensitivity (${p.done} of ${p.total})…`
      : `Planning ${p.bits} bits, quantizing the plan and uniform, evaluating both (${p.done + 1} of ${p.total})…`) },
  h: { method: 'learnRepair', key: 'repaired', start: 'Loading the training images, then quantizing at W3A3 and repairing…',
    progress: (p) => `${REPAIR_NAMES[p.method]} at W3A3, then evaluating (${p.done + 1} of ${p.total})…`,
    // QAT and INQ train: the shipped training subset goes into the worker first, as the Fine-tune panel does.
    before: async () => { if (!state.train) await loadTrainInput(state.trainInput || await fetchDefaultTrain()); } },
};

// The mode's state: lesson null while the tool is shown.
export const learn = { lesson: null, ...LEARN_DEFAULT, data: null, loading: null, timer: null, classes: null, draws: null, mixed: null, repaired: null, heavyLoading: new Set() };

/** The URL's Learn keys (learn, bits, range, quantizer) into `learn`; a bad value is named in `problems`. */
export function learnFromQuery(q, problems) {
  const l = q.get('learn');
  if (l == null) {
    for (const k of ['bits', 'range', 'quantizer', 'draw', 'repair']) if (q.get(k) != null) problems.push(`${k}=${q.get(k)}: only with learn=…`);
    return;
  }
  if (!LESSONS[l]) { problems.push(`learn=${l}: must be one of ${LESSON_ORDER.join(', ')}`); return; }
  learn.lesson = l;
  const bits = q.get('bits');
  const allowed = LESSONS[l].bits || BITS;
  if (bits != null) { if (allowed.includes(Number(bits)) && /^\d$/.test(bits)) learn.bits = Number(bits); else problems.push(`bits=${bits}: must be a whole number from ${allowed[0]} to ${allowed[allowed.length - 1]}`); }
  else if (!allowed.includes(learn.bits)) learn.bits = allowed[0];
  const draw = q.get('draw');
  if (draw != null) {
    const n = LESSONS[l].draws;
    if (n && /^\d+$/.test(draw) && Number(draw) < n) learn.draw = Number(draw);
    else problems.push(n ? `draw=${draw}: must be a whole number from 0 to ${n - 1}` : `draw=${draw}: not a knob of lesson ${l}`);
  }
  const repair = q.get('repair');
  if (repair != null) { if (REPAIR_NAMES[repair]) learn.repair = repair; else problems.push(`repair=${repair}: must be one of ${Object.keys(REPAIR_NAMES).join(', ')}`); }
  const range = q.get('range');
  if (range != null) { if (RANGES[range]) learn.range = range; else problems.push(`range=${range}: must be one of ${Object.keys(RANGES).join(', ')}`); }
  const qz = q.get('quantizer');
  if (qz != null) { if (QUANTIZERS[qz]) learn.quantizer = qz; else problems.push(`quantizer=${qz}: must be one of ${Object.keys(QUANTIZERS).join(', ')}`); }
}

/** The Learn keys for the URL: only the open lesson's knobs. */
export function learnToQuery(q) {
  if (!learn.lesson) return;
  q.set('learn', learn.lesson);
  const knobs = LESSONS[learn.lesson].knobs;
  if (knobs.includes('bits')) q.set('bits', learn.bits);
  if (knobs.includes('range')) q.set('range', learn.range);
  if (knobs.includes('quantizer')) q.set('quantizer', learn.quantizer);
  if (knobs.includes('draw')) q.set('draw', learn.draw);
  if (knobs.includes('repair')) q.set('repair', learn.repair);
}

let onChange = () => {};

/** Wires the mode's tabs, lesson list and knobs; `changed` is called when the URL should follow (syncUrl). */
export function setupLearn(changed) {
  onChange = changed;
  $('mode-tool').addEventListener('click', () => setMode(null));
  $('mode-learn').addEventListener('click', () => setMode(learn.lesson || LESSON_ORDER[0]));
  $('learn-list').innerHTML = LESSON_ORDER.map((k) => `<li><button type="button" data-lesson="${k}">${k}. ${esc(LESSONS[k].title)}</button></li>`).join('');
  $('learn-list').addEventListener('click', (e) => { const k = e.target.closest('button')?.dataset.lesson; if (k) setMode(k); });
  $('learn-bits').addEventListener('input', () => { stopAnimation(); learn.bits = Number($('learn-bits').value); knobChanged(); });
  $('learn-range').addEventListener('change', () => { learn.range = $('learn-range').value; knobChanged(); });
  $('learn-quantizer').addEventListener('change', () => { learn.quantizer = $('learn-quantizer').value; knobChanged(); });
  // (f)'s draw (seed): made here, beside the other knobs.
  const drawWrap = document.createElement('label');
  drawWrap.id = 'learn-draw-wrap';
  drawWrap.innerHTML = `<span data-term="seed">Draw (seed)</span> <select id="learn-draw">${Array.from({ length: LESSONS.f.draws }, (_, s) => `<option value="${s}">${s}</option>`).join('')}</select>`;
  $('learn-quantizer-wrap').after(drawWrap);
  $('learn-draw').addEventListener('change', () => { learn.draw = Number($('learn-draw').value); knobChanged(); });
  // (h)'s repair method.
  const repairWrap = document.createElement('label');
  repairWrap.id = 'learn-repair-wrap';
  repairWrap.innerHTML = `<span>Repair</span> <select id="learn-repair">${Object.entries(REPAIR_NAMES).map(([k, v]) => `<option value="${k}">${esc(v)}</option>`).join('')}</select>`;
  drawWrap.after(repairWrap);
  $('learn-repair').addEventListener('change', () => { learn.repair = $('learn-repair').value; knobChanged(); });
  $('learn-animate').addEventListener('click', () => (learn.timer ? stopAnimation() : animate()));
  $('learn-prompts').addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const set = JSON.parse(b.dataset.set);
    stopAnimation();
    if (set.animate) { animate(); return; }
    Object.assign(learn, set);
    if (!(LESSONS[learn.lesson].bits || BITS).includes(learn.bits)) learn.bits = (LESSONS[learn.lesson].bits || BITS)[0];
    showKnobs();
    knobChanged();
  });
  showMode();
}

/** Opens lesson `k` (null: back to the tool). */
export function setMode(k) {
  stopAnimation();
  learn.lesson = k;
  const allowed = (k && LESSONS[k].bits) || BITS;
  if (!allowed.includes(learn.bits)) learn.bits = allowed.includes(LEARN_DEFAULT.bits) ? LEARN_DEFAULT.bits : allowed[0];
  showMode();
  onChange();
}

function showMode() {
  const on = !!learn.lesson;
  document.body.classList.toggle('learn-mode', on);
  $('learn').hidden = !on;
  $('mode-tool').setAttribute('aria-selected', String(!on));
  $('mode-learn').setAttribute('aria-selected', String(on));
  if (!on) return;
  for (const b of $('learn-list').querySelectorAll('button')) b.setAttribute('aria-current', String(b.dataset.lesson === learn.lesson));
  const L = LESSONS[learn.lesson];
  $('learn-title').textContent = `${learn.lesson}. ${L.title}`;
  $('learn-prompts').innerHTML = L.prompts.map(([text, set]) => `<li><button type="button" data-set='${esc(JSON.stringify(set))}'>${esc(text)}</button></li>`).join('');
  showKnobs();
  fillText();
  loadLearnData();
}

function showKnobs() {
  const knobs = LESSONS[learn.lesson].knobs;
  $('learn-bits-wrap').hidden = !knobs.includes('bits');
  $('learn-animate').hidden = !knobs.includes('animate');
  $('learn-range-wrap').hidden = !knobs.includes('range');
  $('learn-quantizer-wrap').hidden = !knobs.includes('quantizer');
  $('learn-draw-wrap').hidden = !knobs.includes('draw');
  const allowed = LESSONS[learn.lesson].bits || BITS;
  $('learn-bits').min = String(allowed[0]);
  $('learn-bits').max = String(allowed[allowed.length - 1]);
  $('learn-bits').value = String(learn.bits);
  $('learn-draw').value = String(learn.draw);
  $('learn-repair-wrap').hidden = !knobs.includes('repair');
  $('learn-repair').value = learn.repair;
  $('learn-bits-out').textContent = `${learn.bits} bits`;
  $('learn-range').value = learn.range;
  $('learn-quantizer').value = learn.quantizer;
}

function fillText() {
  const d = learn.data, f = learn.draws;
  const heavy = HEAVY[learn.lesson] ? learn[HEAVY[learn.lesson].key] : null;
  const n = HEAVY[learn.lesson] ? (heavy ? heavy.n.toLocaleString() : '400') : d ? String(d.a.values.length) : 'the';
  $('learn-text').textContent = LESSONS[learn.lesson].text
    .replace('{layer}', d ? d.layer : 'a layer').replace('{n}', n).replace('{images}', d?.c ? String(d.c.images) : 'loaded')
    .replace('{seeds}', String(LESSONS.f.draws)).replace('{last}', String(LESSONS.f.draws - 1)).replace('{calib}', f ? String(f.calibSize) : '8')
    .replace('{sens}', learn.mixed ? String(learn.mixed.sensSize) : '32')
    .replace('{iters}', learn.repaired ? String(learn.repaired.iters) : '20').replace('{train}', learn.repaired ? String(learn.repaired.train) : '500');
}

/** The lessons' numbers from the worker, once per model and images (after the images load, so (c) has attention). */
export async function loadLearnData() {
  if (!learn.lesson) return;
  if (learn.data && learn.data.model === state.modelName && learn.data.c) { draw(); return; }
  if (!state.modelInfo || !state.data || !state.primary) { $('learn-caption').textContent = 'Loading the model and images…'; return; }
  if (learn.loading) return;
  $('learn-caption').textContent = 'Computing the lessons’ numbers from the model…';
  learn.loading = state.primary.call('learn', {});
  try {
    learn.data = await learn.loading;
  } catch (e) {
    if (!isStopped(e)) $('learn-caption').innerHTML = `<span class="error">${esc(e.message)}</span>`;
    return;
  } finally {
    learn.loading = null;
  }
  if (learn.lesson) { fillText(); draw(); }
}

// The heavy lessons' numbers (HEAVY): quantizations and evaluations in the workers, once per model and images.
async function loadHeavy(k) {
  const h = HEAVY[k];
  if (learn[h.key] || learn.heavyLoading.has(k) || !state.primary) return;
  learn.heavyLoading.add(k);
  $('learn-caption').textContent = h.start;
  try {
    if (h.before) await h.before();
    learn[h.key] = await spread(k, h);
  } catch (e) {
    if (!isStopped(e) && learn.lesson === k) $('learn-caption').innerHTML = `<span class="error">${esc(e.message)}</span>`;
    return;
  } finally {
    learn.heavyLoading.delete(k);
  }
  if (learn.lesson === k) { fillText(); draw(); }
}

// Lesson k's runs (independent, a function of their item alone: web/page/worker.js) spread over the primary worker and
// extra ones as a sweep is (`?workers=N`, else one per core, at most MAX_WORKERS and one per run), each holding a copy of
// the model and images, item i on worker i mod N; the parts merged in the items' order: one worker's numbers.
async function spread(k, h) {
  const { [k]: items } = await state.primary.call('learnItems');
  const show = (p) => { if (learn.lesson === k) $('learn-caption').textContent = h.progress(p); };
  const settings = readSettings();
  const n = sweepWorkers(settings, items.length);
  const clients = [state.primary];
  const done = new Array(n).fill(0);
  const t0 = performance.now();
  try {
    for (let w = 1; w < n; w++) clients.push(new PageWorker());
    const loading = Promise.all(clients.slice(1).map((c) => loadInto(c, {
      model: state.modelSrc, data: { input: state.dataInput, limit: settings.limit },
      ...(k === 'h' ? { train: { input: state.trainInput, name: state.trainInput?.name } } : {}),
    })));
    // (g): the sensitivities first, on the primary while the others load, then handed to every worker with its budgets
    let common = {};
    if (k === 'g' && n > 1) common = await Promise.all([state.primary.call(h.method, { sensOnly: true }, { onProgress: show }), loading]).then(([r]) => r);
    await loading;
    const parts = await Promise.all(clients.map((c, w) => c.call(h.method, { ...common, items: items.filter((_, i) => i % n === w), fp32: w === 0 }, {
      onProgress: (p) => { done[w] = p.done; show({ ...p, done: done.reduce((a, b) => a + b, 0), total: items.length }); },
    })));
    return mergeParts(parts, items, (performance.now() - t0) / 1000);
  } finally {
    for (const c of clients.slice(1)) c.terminate();
  }
}

// The parts of a heavy lesson as one result: the first's fields (FP32 included), byBits and byMethod in the items' order.
function mergeParts(parts, items, seconds) {
  const out = { ...parts[0], seconds };
  if (parts[0].byBits) {  // (e): one result per bit-width; (f): per bit-width a list over seeds, in seed order
    const all = {};
    for (const p of parts) for (const [b, v] of Object.entries(p.byBits)) all[b] = Array.isArray(v) ? [...(all[b] || []), ...v] : v;
    for (const v of Object.values(all)) if (Array.isArray(v)) v.sort((x, y) => x.seed - y.seed);
    out.byBits = all;
  }
  if (parts[0].byMethod) {
    const all = Object.assign({}, ...parts.map((p) => p.byMethod));
    out.byMethod = Object.fromEntries(items.filter((m) => all[m]).map((m) => [m, all[m]]));
  }
  return out;
}

function knobChanged() {
  $('learn-bits-out').textContent = `${learn.bits} bits`;
  draw();
  onChange();
}

// Draws the open lesson's figure and caption at its knobs' values, in the page (no worker call).
function draw() {
  const d = learn.data;
  if (!d || !learn.lesson) return;
  const t0 = performance.now();
  const fig = $('learn-figure');
  const { bits, range, quantizer } = learn;
  let node, caption;
  if (learn.lesson === 'a') {
    node = learnQuantize(fig, d.a, bits);
    const g = d.a.byBits[bits];
    const distinct = new Set(g.q.map((v) => v.toFixed(7))).size;
    const worst = Math.max(...d.a.values.map((v, i) => Math.abs(v - g.q[i])));
    caption = `${bits} bits: ${g.levels.length} levels, of which these ${d.a.values.length} weights use ${distinct}; mean squared error ${fmt(g.mse)}, largest error ${fmt(worst)} (output channel ${d.a.channel} of ${d.layer}).`;
  } else if (learn.lesson === 'd') {
    node = learnGranularity(fig, d.d, bits);
    const g = d.d.byBits[bits];
    const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const worse10 = g.tensor.filter((x, r) => x > 10 * g.channel[r]).length;
    caption = `${bits} bits on ${d.layer} (${d.d.rows} rows × ${d.d.cols}): mean squared error ${fmt(mean(g.tensor))} per tensor, ${fmt(mean(g.channel))} per channel (${(mean(g.tensor) / mean(g.channel)).toFixed(1)}×); ${worse10} of ${d.d.rows} rows lose more than 10× with one grid.`;
  } else if (learn.lesson === 'b') {
    node = learnRange(fig, d.b, bits, range);
    const g = d.b.byMethod[range][bits], mm = d.b.byMethod.minmax[bits];
    caption = `${RANGES[range]} at ${bits} bits: range ±${fmt(g.hi)} (min-max: ±${fmt(mm.hi)}), ${g.clipped.toLocaleString()} weights clipped, mean squared error ${fmt(g.mse)} (min-max: ${fmt(mm.mse)}).`;
  } else if (learn.lesson === 'e') {
    const e = learn.classes;
    if (!e || e.model !== state.modelName) { learn.classes = null; fig.replaceChildren(); delete fig.dataset.key; loadHeavy('e'); return; }
    node = learnClasses(fig, e, bits);
    const g = e.byBits[bits], w = g.worstClass;
    const p = (v) => `${(100 * v).toFixed(1)}%`;
    const pts = (v) => `${v < 0 ? '−' : '+'}${Math.abs(100 * v).toFixed(1)} points`;
    caption = `W${bits}A${bits} on ${e.n.toLocaleString()} images: top-1 ${p(g.top1)} (FP32 ${p(e.fp32.top1)}, ${pts(g.top1 - e.fp32.top1)})`
      + (w ? `; worst class ${w.label} ${p(w.accuracy)} (FP32 ${p(e.fp32.perClass[w.index])}, ${pts(w.accuracy - e.fp32.perClass[w.index])}), ${(100 * (g.top1 - w.accuracy)).toFixed(1)} points below the average.` : '.');
  } else if (learn.lesson === 'f') {
    const f = learn.draws;
    if (!f || f.model !== state.modelName) { learn.draws = null; fig.replaceChildren(); delete fig.dataset.key; loadHeavy('f'); return; }
    node = learnDraws(fig, f, bits, learn.draw);
    const runs = f.byBits[bits], r = runs[learn.draw];
    const p = (v) => `${(100 * v).toFixed(1)}%`;
    const tops = runs.map((x) => x.top1);
    let worst = null;
    for (const x of runs) x.perClass.forEach((acc, k) => { if (acc != null && (!worst || acc < worst.acc)) worst = { acc, k, seed: x.seed }; });
    const span = runs.map((x) => x.perClass[worst.k]);
    caption = `W${bits}A${bits} on ${f.n.toLocaleString()} images, ${f.seeds} draws of ${f.calibSize} calibration images: top-1 ${p(Math.min(...tops))}–${p(Math.max(...tops))} over the draws (FP32 ${p(f.fp32.top1)}). `
      + `Draw ${r.seed}: top-1 ${p(r.top1)}, worst class ${r.worstClass.label} ${p(r.worstClass.accuracy)}. `
      + `Worst draw: ${f.labels[worst.k]} at seed ${worst.seed}, ${p(worst.acc)} (FP32 ${p(f.fp32.perClass[worst.k])}; ${f.labels[worst.k]} over the draws ${p(Math.min(...span))}–${p(Math.max(...span))}).`;
  } else if (learn.lesson === 'g') {
    const g = learn.mixed;
    if (!g || g.model !== state.modelName) { learn.mixed = null; fig.replaceChildren(); delete fig.dataset.key; loadHeavy('g'); return; }
    node = learnMixed(fig, g, bits);
    const at = g.byBits[bits], m = at.mixed, u = at.uniform;
    const p = (v) => `${(100 * v).toFixed(1)}%`;
    const more = g.layers.filter((l) => m.layerBits[l.name] > bits).length, fewer = g.layers.filter((l) => m.layerBits[l.name] < bits).length;
    caption = `At uniform W${bits}A${bits}’s size: the plan averages ${at.weightBitsAvg.toFixed(2)} bits per weight and ${at.actBitsAvg.toFixed(2)} per activation (${more} of ${g.layers.length} layers above ${bits} bits, ${fewer} below), ${(m.bytes / 1024).toFixed(1)} KB against uniform’s ${(u.bytes / 1024).toFixed(1)} KB. `
      + `On ${g.n.toLocaleString()} images: top-1 ${p(m.top1)} (uniform ${p(u.top1)}, FP32 ${p(g.fp32.top1)}); worst class ${m.worstClass.label} ${p(m.worstClass.accuracy)} (uniform: ${u.worstClass.label} ${p(u.worstClass.accuracy)}).`;
  } else if (learn.lesson === 'h') {
    const h = learn.repaired;
    if (!h || h.model !== state.modelName) { learn.repaired = null; fig.replaceChildren(); delete fig.dataset.key; loadHeavy('h'); return; }
    const method = learn.repair, m = h.byMethod[method], ptq = h.byMethod.ptq, wk = ptq.worstClass.index;
    node = learnRepair(fig, h, method);
    const p = (v) => `${(100 * v).toFixed(1)}%`;
    const pts = (v) => `${v < 0 ? '−' : '+'}${Math.abs(100 * v).toFixed(1)} points`;
    caption = `${REPAIR_NAMES[method]} at W${h.bits}A${h.bits} on ${h.n.toLocaleString()} images: top-1 ${p(m.top1)} (PTQ ${p(ptq.top1)}, FP32 ${p(h.fp32.top1)}); `
      + `${h.labels[wk]}, PTQ’s worst class, ${p(m.perClass[wk])} (PTQ ${p(ptq.perClass[wk])}, ${pts(m.perClass[wk] - ptq.perClass[wk])}; FP32 ${p(h.fp32.perClass[wk])}); its own worst class ${m.worstClass.label} ${p(m.worstClass.accuracy)}.`;
  } else if (learn.lesson === 'c') {
    if (!d.c) { $('learn-caption').textContent = 'This lesson needs images: load some in the tool.'; return; }
    node = learnSoftmax(fig, d.c, quantizer, bits, d.c.hist);
    const g = d.c.byQuantizer[quantizer][bits];
    caption = `${QUANTIZERS[quantizer]} at ${bits} bits on ${d.c.n.toLocaleString()} attention probabilities (${d.c.heads} heads × ${d.c.tokens} × ${d.c.tokens} tokens × ${d.c.blocks} blocks × ${d.c.images} images): `
      + `${g.levels.length} levels, ${(100 * g.zeroed / d.c.n).toFixed(1)}% of the probabilities rounded to 0, mean squared error ${fmt(g.mse)}.`;
  }
  fig.replaceChildren(node);
  $('learn-caption').textContent = caption;
  const key = `${learn.lesson}:${bits}:${range}:${quantizer}` + (LESSONS[learn.lesson].knobs.includes('draw') ? `:draw${learn.draw}` : '')
    + (LESSONS[learn.lesson].knobs.includes('repair') ? `:${learn.repair}` : '');
  fig.dataset.key = key;
  fig.dataset.drawMs = (performance.now() - t0).toFixed(1);
}

// (a)'s animation: 8 bits down to 2, one step every 0.7 s.
function animate() {
  stopAnimation();
  learn.bits = 8;
  showKnobs();
  knobChanged();
  $('learn-animate').textContent = 'Stop';
  learn.timer = setInterval(() => {
    if (learn.bits <= 2) { stopAnimation(); return; }
    learn.bits--;
    $('learn-bits').value = String(learn.bits);
    knobChanged();
  }, 700);
}

function stopAnimation() {
  if (learn.timer) clearInterval(learn.timer);
  learn.timer = null;
  if ($('learn-animate')) $('learn-animate').textContent = 'Animate 8 → 2 bits';
}

/** Redraws at the current size (a window resize, projector mode). */
export function redrawLearn() { if (learn.lesson && learn.data) draw(); }
