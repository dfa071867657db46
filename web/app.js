// BitLens demo — the page. All BitLens work happens in module workers (web/worker.js); this file
// handles the controls, the files the user brings, the URL settings, progress, and the results.
import { glossaryList, setupTooltips } from './glossary.js';
import { allocationChart, attentionMaps, barChart, bitAllocationChart, boxLegend, boxPlot, chartSvg, classShiftChart, confusionMatrix, inqStepChart, learningCurve, paretoChart, quantHistogram, sensitivityChart, sosStageChart, svgToPng } from './charts.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_MODEL = '/models/vit-fmnist-hf/';
const DEFAULT_DATA = {
  images: '/models/data/fmnist-test-1k-images-idx3-ubyte.gz',
  labels: '/models/data/fmnist-test-1k-labels-idx1-ubyte.gz',
};
// The training images the fine-tuning (QAT) uses unless the user brings their own: 500 of each class.
const DEFAULT_TRAIN = {
  images: '/models/data/fmnist-train-5k-images-idx3-ubyte.gz',
  labels: '/models/data/fmnist-train-5k-labels-idx1-ubyte.gz',
  n: 5000,
  name: 'the shipped Fashion-MNIST training subset',
};
const QAT_DEFAULT = { w: 3, a: 3, epochs: 1 };
// QBitOpt: the average-bit budget per weight, per activation value (null: the activations stay at 8 bits), the
// objective of the sensitivity passes, epochs (the last trains with the bits fixed, so at least 2).
const QB_DEFAULT = { w: 4, a: null, objective: 'mean', epochs: 2 };
// INQ: power-of-two weight bits, activation bits, partitions (cumulative % frozen), epochs of retraining per partition.
const INQ_DEFAULT = { w: 4, a: 8, partitions: '50,75,87.5,100', epochs: 1 };
// Seconds per training image and epoch in WASM (one worker), for the estimate before the first run:
// measured at W3A3 with the shipped ViT in headless Chromium on a busy 2-core VM (6.4 ms; 4.5 ms in Node);
// a run replaces it with its own speed.
const QAT_SECONDS_PER_IMAGE = 0.006;
const PRESET_CONFIGS = ['W8A8', 'W6A6', 'W4A4', 'W3A3'];
// SOS reconstruction: iterations per block and stage (the library's default), images per iteration (at most).
const SOS_DEFAULT_ITERS = 100;
const SOS_BATCH = 16;
const STAGE_NAMES = ['PTQ', 'stage 1', 'stage 2', 'stage 3'];
const MAX_WORKERS = 4;
// Structured pruning: the fraction of each block's heads and MLP units kept, how they are ranked and on how many
// training images, distillation from FP32 (the page's default; the API's is off), recovery epochs, training images.
const PRUNE_DEFAULT = { heads: 0.5, mlp: 0.5, importance: 'taylor', impImages: 2048, distill: true, epochs: 2, limit: 0 };
// The precisions every model of the trade-off is measured at (besides FP32).
const PARETO_CONFIGS = ['W8A8', 'W6A6', 'W4A4', 'W3A3'];

// ---------- state ------------------------------------------------------------------------------

const state = {
  caps: null,          // { cores }
  primary: null,       // WorkerClient holding the model and images
  modelSrc: null,      // { safetensors, config, preprocessor, name } (kept to restart workers)
  modelInfo: null,
  modelName: '',
  dataInput: null,     // what the worker's loadData got (kept to restart workers)
  data: null,          // { name, kind, poolN, evalN, classes }
  fp32: null,          // FP32 evaluation on the evaluation images
  result: null,        // the last sweep
  resultSettings: null,
  resultWorkers: 0,    // the workers the last sweep ran on
  workers: 0,          // ?workers=N: the workers a sweep runs on (0: one per core, at most MAX_WORKERS)
  running: null,       // { clients, cancelled }
  customConfigs: [],   // e.g. ['W5A6']
  trainInput: null,    // what the worker's loadTrainData got (kept to restart workers); null: the shipped subset, not loaded yet
  train: null,         // { name, kind, n, classes }
  qat: null,           // the QAT or QBitOpt run in progress or done: { name, method, epochs, settings, history, allocations, result }
  qatRate: null,       // measured seconds per training image and epoch (QAT or INQ)
  inq: null,           // the INQ run in progress or done: { name, settings, partitions, history, result }
  sos: null,           // the SOS reconstruction in progress or done: { settings, runs: [{ name, stages, blocks, result }], cancelled }
  prune: null,         // the compression trade-off: { quant, base, models: [{ id, name, settings, result, points, lost }], run }
};

// ---------- workers -----------------------------------------------------------------------------

class Cancelled extends Error { constructor() { super('cancelled'); this.name = 'Cancelled'; } }

class WorkerClient {
  constructor() {
    this.worker = new Worker('/web/worker.js', { type: 'module' });
    this.seq = 0;
    this.pending = new Map();
    this.ready = new Promise((resolve, reject) => {
      this._ready = resolve;
      this._fail = reject;
    });
    this.worker.onmessage = (ev) => {
      const m = ev.data;
      if (m.ready) { this._ready(); return; }
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.progress) { p.onProgress?.(m.progress); return; }
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result); else p.reject(new Error(m.error));
    };
    this.worker.onerror = (ev) => {
      ev.preventDefault?.();
      const err = new Error(`the BitLens worker failed to start or crashed${ev.message ? `: ${ev.message}` : ''} (is web/lib/bitlens-core.wasm built? run \`npm run build:wasm\`)`);
      this._fail(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }
  async call(type, payload = {}, { onProgress, transfer } = {}) {
    await this.ready;
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, type, ...payload }, transfer || []);
    });
  }
  terminate() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Cancelled());
    this.pending.clear();
  }
}

// ---------- small helpers -----------------------------------------------------------------------

const pct = (v, d = 1) => (v == null || Number.isNaN(v) ? '—' : `${(100 * v).toFixed(d)}%`);
// A drop from FP32 in percentage points: positive drops print as "−2.3 pt".
const pp = (v) => (v == null || Number.isNaN(v) ? '—' : Math.abs(v) < 0.0005 ? '±0.0 pt' : `${v > 0 ? '−' : '+'}${Math.abs(100 * v).toFixed(1)} pt`);
function kb(bytes) {
  if (!bytes) return '—';
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function fmtTime(s) {
  if (!Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
}
function showError(id, msg) {
  const el = $(id);
  el.textContent = msg || '';
  el.hidden = !msg;
}
function download(name, data, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
const parseWA = (s) => {
  const m = /^w([2-8])a([2-8])$/i.exec(String(s).trim());
  return m ? { wbits: Number(m[1]), abits: Number(m[2]), name: `W${m[1]}A${m[2]}` } : null;
};

// ---------- settings <-> controls <-> URL ------------------------------------------------------

function renderConfigChecks(checked) {
  const all = [...PRESET_CONFIGS, ...state.customConfigs.filter((c) => !PRESET_CONFIGS.includes(c))];
  $('configs').innerHTML = all.map((c) => `<label><input type="checkbox" name="config" value="${c}"${checked.includes(c) ? ' checked' : ''}> ${c}</label>`).join('');
}

function renderClassChecks(labels, checked = []) {
  $('calib-classes').innerHTML = labels.map((l, k) => `<label><input type="checkbox" name="calib-class" value="${k}"${checked.includes(k) ? ' checked' : ''}> ${esc(l)}</label>`).join('');
}

function readSettings() {
  const num = (id, d) => { const v = Number($(id).value); return Number.isFinite(v) ? v : d; };
  // A number field as typed: NaN when empty or not a number (the validation says so).
  const entry = (id) => ($(id).validity.badInput || $(id).value.trim() === '' ? NaN : Number($(id).value));
  const configs = [...document.querySelectorAll('input[name=config]:checked')].map((i) => i.value);
  const corr = (t, s) => ($(t).value ? { type: $(t).value, severity: Number($(s).value) } : null);
  return {
    configs,
    weights: $('wq').value,
    softmax: $('sm').value,
    granularity: $('gran').value,
    method: $('method').value,
    reconIters: num('recon-iters', SOS_DEFAULT_ITERS),
    calibSize: Math.round(num('calib', 32)),
    seeds: Math.round(num('seeds', 3)),
    limit: Math.max(0, Math.round(num('limit', 0))),
    calibClasses: [...document.querySelectorAll('input[name=calib-class]:checked')].map((i) => Number(i.value)),
    calibSkew: num('skew', 0),
    calibCorrupt: corr('cc-type', 'cc-sev'),
    evalCorrupt: corr('ec-type', 'ec-sev'),
    groups: $('groups').value.trim(),
    model: $('shipped-model').value,
    mxKind: $('mx-kind').value,
    mxBudget: num('mx-budget', 4),
    mxObjective: $('mx-objective').value,
    mxSens: Math.round(num('mx-sens', 32)),
    qatW: num('qat-w', QAT_DEFAULT.w),
    qatA: num('qat-a', QAT_DEFAULT.a),
    qatEpochs: num('qat-epochs', QAT_DEFAULT.epochs),
    qatLimit: num('qat-limit', 0),
    ftMethod: $('qat-method').value,
    qbW: $('qb-w').validity.badInput ? NaN : num('qb-w', QB_DEFAULT.w),
    // Empty: no activation budget (null); a bad entry: NaN (validateQbitopt says so).
    qbA: $('qb-a').validity.badInput ? NaN : $('qb-a').value.trim() === '' ? null : Number($('qb-a').value),
    qbObjective: $('qb-objective').value,
    qbEpochs: num('qb-epochs', QB_DEFAULT.epochs),
    inqW: num('inq-w', INQ_DEFAULT.w),
    inqA: num('inq-a', INQ_DEFAULT.a),
    inqPartitions: $('inq-partitions').value.trim(),
    inqEpochs: num('inq-epochs', INQ_DEFAULT.epochs),
    prHeads: entry('pr-heads'),
    prMlp: entry('pr-mlp'),
    prImportance: $('pr-importance').value,
    prImpImages: entry('pr-imp-images'),
    prDistill: $('pr-distill').checked,
    prEpochs: entry('pr-epochs'),
    prLimit: entry('pr-limit'),
    paretoX: $('pr-x').value,
    paretoY: $('pr-y').value,
    workers: state.workers,  // ?workers=N (0: one per core)
  };
}

function settingsToQuery(s) {
  const q = new URLSearchParams();
  q.set('configs', s.configs.join(',').toLowerCase());
  q.set('weights', s.weights);
  q.set('softmax', s.softmax);
  q.set('granularity', s.granularity);
  if (s.method !== 'ptq') q.set('method', s.method);
  if (s.method === 'sos' && s.reconIters !== SOS_DEFAULT_ITERS) q.set('reconIters', s.reconIters);
  q.set('calib', s.calibSize);
  q.set('seeds', s.seeds);
  if (s.limit) q.set('limit', s.limit);
  if (s.calibClasses.length) q.set('classes', s.calibClasses.join(','));
  if (s.calibSkew) q.set('skew', s.calibSkew);
  if (s.calibCorrupt) q.set('calibCorrupt', `${s.calibCorrupt.type}:${s.calibCorrupt.severity}`);
  if (s.evalCorrupt) q.set('evalCorrupt', `${s.evalCorrupt.type}:${s.evalCorrupt.severity}`);
  if (s.groups) q.set('groups', s.groups);
  if (s.model !== DEFAULT_MODEL) q.set('model', s.model);
  if (s.mxKind === 'kb') q.set('maxKB', s.mxBudget);
  else if (s.mxBudget !== 4) q.set('budget', s.mxBudget);
  if (s.mxObjective !== 'mean') q.set('objective', s.mxObjective);
  if (s.mxSens !== 32) q.set('sensSize', s.mxSens);
  if (s.qatW !== QAT_DEFAULT.w || s.qatA !== QAT_DEFAULT.a) q.set('qat', `w${s.qatW}a${s.qatA}`);
  if (s.qatEpochs !== QAT_DEFAULT.epochs) q.set('epochs', s.qatEpochs);
  if (s.qatLimit) q.set('trainLimit', s.qatLimit);
  if (s.ftMethod !== 'qat') q.set('finetune', s.ftMethod);
  if (Number.isFinite(s.qbW) && s.qbW !== QB_DEFAULT.w) q.set('qbBudget', s.qbW);
  if (Number.isFinite(s.qbA)) q.set('qbAbudget', s.qbA);
  if (s.qbObjective !== QB_DEFAULT.objective) q.set('qbObjective', s.qbObjective);
  if (s.qbEpochs !== QB_DEFAULT.epochs) q.set('qbEpochs', s.qbEpochs);
  if (s.inqW !== INQ_DEFAULT.w || s.inqA !== INQ_DEFAULT.a) q.set('inq', `w${s.inqW}a${s.inqA}`);
  if (s.inqPartitions.replace(/\s+/g, '') !== INQ_DEFAULT.partitions) q.set('partitions', s.inqPartitions.replace(/\s+/g, ''));
  if (s.inqEpochs !== INQ_DEFAULT.epochs) q.set('epochsPerStep', s.inqEpochs);
  if (Number.isFinite(s.prHeads) && s.prHeads !== PRUNE_DEFAULT.heads) q.set('keepHeads', s.prHeads);
  if (Number.isFinite(s.prMlp) && s.prMlp !== PRUNE_DEFAULT.mlp) q.set('keepMlp', s.prMlp);
  if (s.prImportance !== PRUNE_DEFAULT.importance) q.set('importance', s.prImportance);
  if (Number.isFinite(s.prImpImages) && s.prImpImages !== PRUNE_DEFAULT.impImages) q.set('importanceImages', s.prImpImages);
  if (!s.prDistill) q.set('pruneDistill', '0');
  if (Number.isFinite(s.prEpochs) && s.prEpochs !== PRUNE_DEFAULT.epochs) q.set('pruneEpochs', s.prEpochs);
  if (Number.isFinite(s.prLimit) && s.prLimit !== PRUNE_DEFAULT.limit) q.set('pruneLimit', s.prLimit);
  if (s.paretoX !== 'bytes') q.set('paretoX', s.paretoX);
  if (s.paretoY !== 'top1') q.set('paretoY', s.paretoY);
  if (s.workers) q.set('workers', s.workers);
  return q.toString();
}

// The settings a link may carry, and the ranges of the numeric ones (those of the fields; `real`: not only whole numbers).
const URL_NUMBERS = {
  reconIters: ['recon-iters', 0, 10000], calib: ['calib', 1, 1024], seeds: ['seeds', 1, 50], limit: ['limit', 0, 1e9],
  skew: ['skew', 0, 1, 'real'], budget: ['mx-budget', 2, 8, 'real'], maxKB: ['mx-budget', 1e-3, 1e9, 'real'], sensSize: ['mx-sens', 1, 1024],
  epochs: ['qat-epochs', 1, 50], trainLimit: ['qat-limit', 0, 1e9], qbBudget: ['qb-w', 2, 8, 'real'], qbAbudget: ['qb-a', 2, 8, 'real'],
  qbEpochs: ['qb-epochs', 2, 50], epochsPerStep: ['inq-epochs', 1, 50], keepHeads: ['pr-heads', 0, 1, 'real'], keepMlp: ['pr-mlp', 0, 1, 'real'],
  importanceImages: ['pr-imp-images', 0, 1e9], pruneEpochs: ['pr-epochs', 0, 50], pruneLimit: ['pr-limit', 0, 1e9], workers: [null, 1, 64],
};
const URL_CHOICES = {
  weights: 'wq', softmax: 'sm', granularity: 'gran', method: 'method', objective: 'mx-objective', finetune: 'qat-method',
  qbObjective: 'qb-objective', importance: 'pr-importance', paretoX: 'pr-x', paretoY: 'pr-y',
};
const URL_OTHERS = ['configs', 'model', 'classes', 'groups', 'qat', 'inq', 'partitions', 'pruneDistill', 'calibCorrupt', 'evalCorrupt'];

// The URL's settings into the fields. Each value is checked first: an unknown key or a value out of range is not put
// into its field (the field keeps its default) and is listed in one readable note.
function applyQuery() {
  const q = new URLSearchParams(location.search);
  const problems = [];
  const known = new Set([...Object.keys(URL_NUMBERS), ...Object.keys(URL_CHOICES), ...URL_OTHERS]);
  for (const key of new Set(q.keys())) if (!known.has(key)) problems.push(`“${key}” is not a setting of this page`);
  const shown = (v) => (v.length > 40 ? `${v.slice(0, 40)}…` : v);
  const setSel = (id, v, key) => {
    if (v == null) return false;
    if ([...$(id).options].some((o) => o.value === v)) { $(id).value = v; return true; }
    if (key) problems.push(`${key}=${shown(v)}: must be one of ${[...$(id).options].map((o) => o.value).join(', ')}`);
    return false;
  };
  const num = (key) => {
    const raw = q.get(key);
    if (raw == null) return null;
    const [, lo, hi, real] = URL_NUMBERS[key];
    const v = Number(raw);
    if (raw.trim() !== '' && Number.isFinite(v) && (real || Number.isInteger(v)) && v >= lo && v <= hi) return v;
    const range = hi >= 1e9 ? `at least ${lo}` : `from ${lo} to ${hi}`;
    problems.push(`${key}=${shown(raw)}: must be ${real ? 'a number' : 'a whole number'} ${range}`);
    return null;
  };
  const setNum = (key) => { const v = num(key); if (v != null) $(URL_NUMBERS[key][0]).value = String(v); return v != null; };

  const raw = q.get('configs');
  const parsed = (raw ?? PRESET_CONFIGS.join(',')).split(',').filter((c) => c.trim());
  const bad = parsed.filter((c) => !parseWA(c));
  if (bad.length) problems.push(`configs: ${bad.map(shown).join(', ')} ${bad.length > 1 ? 'are not bit-widths' : 'is not a bit-width'} like w4a4 (2 to 8 bits each)`);
  let configs = parsed.map(parseWA).filter(Boolean).map((c) => c.name);
  if (raw != null && !configs.length) configs = [...PRESET_CONFIGS];
  state.customConfigs = configs.filter((c) => !PRESET_CONFIGS.includes(c));
  renderConfigChecks(configs);
  for (const [key, id] of Object.entries(URL_CHOICES)) setSel(id, q.get(key), key);
  setNum('reconIters');
  updateMethodUi();
  const m = q.get('model');
  if (m && /^\/models\/[\w.-]+\/$/.test(m) && ![...$('shipped-model').options].some((o) => o.value === m)) {
    $('shipped-model').add(new Option(m.slice(8, -1), m));
  }
  if (m) setSel('shipped-model', m, 'model');
  for (const key of ['calib', 'seeds', 'limit', 'skew', 'sensSize', 'epochs', 'trainLimit', 'qbBudget', 'qbAbudget', 'qbEpochs', 'epochsPerStep',
    'keepHeads', 'keepMlp', 'importanceImages', 'pruneEpochs', 'pruneLimit']) setNum(key);
  if (q.get('groups')) $('groups').value = q.get('groups');
  if (q.get('maxKB') != null) {
    const v = num('maxKB');
    if (v != null) { $('mx-kind').value = 'kb'; setBudgetKind(); $('mx-budget').value = String(v); }
  } else setNum('budget');
  for (const [key, w, a] of [['qat', 'qat-w', 'qat-a'], ['inq', 'inq-w', 'inq-a']]) {
    if (q.get(key) == null) continue;
    const c = parseWA(q.get(key));
    if (c) { $(w).value = c.wbits; $(a).value = c.abits; } else problems.push(`${key}=${shown(q.get(key))}: must be bit-widths like w3a3 (2 to 8 bits each)`);
  }
  if (q.get('partitions') != null) {
    const { error } = parsePartitions(q.get('partitions'));
    if (error) problems.push(`partitions: ${error}`); else $('inq-partitions').value = q.get('partitions');
  }
  updateFineTuneUi();
  const pd = q.get('pruneDistill');
  if (pd != null && pd !== '0' && pd !== '1') problems.push(`pruneDistill=${shown(pd)}: must be 0 or 1`);
  if (pd === '0') $('pr-distill').checked = false;
  state.workers = num('workers') ?? 0;
  for (const [key, t, sv] of [['calibCorrupt', 'cc-type', 'cc-sev'], ['evalCorrupt', 'ec-type', 'ec-sev']]) {
    const v = q.get(key);
    if (!v) continue;
    const [type, sev = '3'] = v.split(':');
    const types = [...$(t).options].map((o) => o.value).filter(Boolean);
    if (!types.includes(type) || !/^[1-5]$/.test(sev)) { problems.push(`${key}=${shown(v)}: must be one of ${types.join(', ')}, optionally with a severity 1–5 (e.g. noise:3)`); continue; }
    setSel(t, type);
    setSel(sv, sev);
  }
  const cls = (q.get('classes') || '').split(',').filter((x) => x.trim());
  const badCls = cls.filter((x) => !/^\d+$/.test(x.trim()));
  if (badCls.length) problems.push(`classes: ${badCls.map(shown).join(', ')} ${badCls.length > 1 ? 'are not class numbers' : 'is not a class number'}`);
  state.queryClasses = cls.filter((x) => /^\d+$/.test(x.trim())).map(Number);
  if ((q.get('skew') && $('skew').value !== '0') || $('cc-type').value || $('ec-type').value || state.queryClasses.length) $('shift').open = true;
  const note = $('url-note');
  note.textContent = problems.length
    ? `The link's settings were checked, and ${problems.length === 1 ? 'one was' : `${problems.length} were`} not used (the field${problems.length === 1 ? ' keeps its' : 's keep their'} default): ${problems.join('; ')}.`
    : '';
  note.hidden = !problems.length;
  return problems;
}

// The method's controls: SOS shows its iterations and explanation, and the run button says what it runs.
function updateMethodUi() {
  const sos = $('method').value === 'sos';
  for (const el of document.querySelectorAll('.sos-only')) el.hidden = !sos;
  $('run-btn').textContent = sos ? 'Run SOS reconstruction' : 'Run sweep';
}

// The fine-tuning method's controls and explanation; the button says what it runs.
function updateFineTuneUi() {
  const m = $('qat-method').value;
  for (const el of document.querySelectorAll('.qat-only')) el.hidden = m !== 'qat';
  for (const el of document.querySelectorAll('.qb-only')) el.hidden = m !== 'qbitopt';
  for (const el of document.querySelectorAll('.inq-only')) el.hidden = m !== 'inq';
  $('qat-run').textContent = `Fine-tune (${{ qat: 'QAT', qbitopt: 'QBitOpt', inq: 'INQ' }[m]})`;
}

function syncUrl() {
  const qs = settingsToQuery(readSettings());
  history.replaceState(null, '', `${location.pathname}?${qs}`);
}

// ---------- status -----------------------------------------------------------------------------

function renderStatus() {
  const info = state.modelInfo;
  $('st-model').textContent = info ? `${state.modelName}` : 'none';
  $('st-data').textContent = state.data ? `${state.data.evalN.toLocaleString()} of ${state.data.poolN.toLocaleString()}` : 'none';
  $('st-fp32').textContent = state.fp32 ? pct(state.fp32.top1) : '—';
  if (info) {
    // "Hugging Face ViTForImageClassification" → "Hugging Face files": the class name once.
    const arch = info.architecture || 'ViT';
    const naming = info.naming || '';
    const files = /^Hugging Face/.test(naming) ? 'Hugging Face' : /^timm/.test(naming) ? 'timm' : naming.replace(arch, '').trim();
    $('model-summary').innerHTML = `<strong>${esc(state.modelName)}</strong>: ${esc(arch)}${files ? ` (${esc(files)} files)` : ''}, `
      + `${info.depth} blocks, width ${info.hiddenSize}, ${info.heads} heads, patch ${info.patchSize}, ${info.imageSize.join('×')}×${info.channels} input, `
      + `${info.parameters.toLocaleString()} parameters, ${info.numClasses} classes.`;
  }
  if (state.data) {
    const d = state.data;
    $('data-summary').innerHTML = `<strong>${esc(d.name)}</strong>: ${d.poolN.toLocaleString()} images in ${d.classes.length} classes; `
      + `evaluating on ${d.evalN.toLocaleString()}${d.evalN < d.poolN ? ' (the first ones, class-balanced for folders)' : ''}.`
      + (state.fp32 ? ` FP32 top-1 <strong>${pct(state.fp32.top1)}</strong>; weakest class ${esc(state.fp32.labels[state.fp32.worstClass.index] ?? '')} ${pct(state.fp32.worstClass.accuracy)}.` : '');
  }
  renderDataNotes();
  renderSeedNote();
  updateRunButton();
}

// "28×28 grey" / "32×32 RGB".
const shapeText = (w, h, c) => `${w}×${h} ${c === 1 ? 'grey' : c === 3 ? 'RGB' : `${c}-channel`}`;

// Under the images: files skipped (how many, the first few, why), and what is converted when the images are not the
// size or colour the model takes (said, not silent).
function renderDataNotes() {
  const d = state.data, info = state.modelInfo;
  const notes = [];
  if (d && d.skipped && d.skipped.length) {
    const n = d.skipped.length;
    notes.push(`Skipped ${n.toLocaleString()} file${n > 1 ? 's' : ''} that could not be used: `
      + `${d.skipped.slice(0, 3).map((x) => `${x.path} (${x.reason})`).join('; ')}${n > 3 ? `; and ${(n - 3).toLocaleString()} more` : ''}.`);
  }
  if (d && d.shape && info) {
    const [mh, mw] = info.imageSize;
    const sh = d.shape;
    const size = sh.width !== mw || sh.height !== mh;
    const colour = sh.channels !== info.channels;
    if (size || colour) {
      const did = [size ? `resized to ${mw}×${mh}` : '', colour ? (info.channels === 3 ? 'their grey copied into red, green and blue' : 'made grey') : ''].filter(Boolean).join(' and ');
      notes.push(`Converted: the images are ${shapeText(sh.width, sh.height, sh.channels)}${sh.mixed ? ' (most of them)' : ''}, this model takes ${shapeText(mw, mh, info.channels)}, `
        + `so each image is ${did}.${size && colour ? ' Were these images made for this model? If not, its accuracy on them means little.' : ''}`);
    }
  }
  const el = $('data-note');
  el.textContent = notes.join(' ');
  el.hidden = !notes.length;
  // Resizing alone is routine (a hint); skipped files or a change of colour are worth a warning.
  el.className = notes.length === 1 && d.shape && !(d.skipped && d.skipped.length) && d.shape.channels === info?.channels ? 'hint' : 'warn';
}

// Seeds only change which calibration images are drawn: when the draw takes the whole pool, every seed gets the same
// images, and the page says so beside the seeds.
function sameDrawEverySeed(s, data = state.data) {
  return !!data && s.seeds > 1 && s.calibSize >= data.poolN && !s.calibCorrupt;
}
function renderSeedNote() {
  const s = readSettings();
  const same = sameDrawEverySeed(s);
  $('seeds-note').textContent = same
    ? `Every seed draws the same images: the calibration takes ${s.calibSize > state.data.poolN ? `${s.calibSize.toLocaleString()} images, more than` : 'all'} the ${state.data.poolN.toLocaleString()} images loaded, so the ${s.seeds} seeds give the same numbers. Use fewer calibration images (or load more images) for the seeds to differ.`
    : '';
  $('seeds-note').hidden = !same;
}

function updateRunButton() {
  const busy = !!state.running || state.loading > 0;
  $('run-btn').disabled = busy || !state.modelInfo || !state.data || !state.fp32;
  $('mx-run').disabled = $('run-btn').disabled;
  $('qat-run').disabled = $('run-btn').disabled;
  $('pr-run').disabled = $('run-btn').disabled;
  for (const b of document.querySelectorAll('#pr-models .pr-export')) b.disabled = !!state.running;
  for (const b of document.querySelectorAll('#results-table .qat-btn')) b.disabled = !!state.running;
  $('cancel-btn').disabled = !state.running;
  for (const id of ['model-files', 'model-folder', 'data-files', 'data-folder', 'model-default', 'data-default', 'qat-files', 'qat-folder', 'qat-default']) $(id).disabled = !!state.running;
}

function setRunStatus(text, cls = '') {
  const el = $('run-status');
  el.textContent = text;
  el.className = cls;
}

// ---------- loading models and images ---------------------------------------------------------

state.loading = 0;
async function withLoading(fn) {
  state.loading++;
  updateRunButton();
  try { return await fn(); } finally { state.loading--; updateRunButton(); }
}

async function fetchBytes(url, optional = false) {
  let res;
  try { res = await fetch(url); } catch (e) { throw new Error(`could not fetch ${url} (${e.message})`); }
  if (!res.ok) {
    if (optional && res.status === 404) return null;
    throw Object.assign(new Error(`${url}: HTTP ${res.status}`), { status: res.status });
  }
  return new Uint8Array(await res.arrayBuffer());
}

const READY = 'Ready. Choose settings and press “Run sweep”.';

async function evaluateFp32() {
  state.fp32 = null;
  if (!state.modelInfo || !state.data) { renderStatus(); return; }
  setRunStatus('Evaluating the FP32 model…');
  try {
    state.fp32 = await state.primary.call('evaluate');
  } catch (e) {
    setRunStatus('');
    throw e;
  }
  setRunStatus(READY);
  renderStatus();
  renderPruneEstimate();
}

function clearResults() {
  state.result = null;
  state.mixed = null;
  state.qat = null;
  state.inq = null;
  state.sos = null;
  state.prune = null;
  $('pr-results').hidden = true;
  $('sos').hidden = true;
  $('results').hidden = true;
  $('mx-results').hidden = true;
  $('qat-results').hidden = true;
  $('inq-results').hidden = true;
  $('progress').value = 0;
  $('progress-text').textContent = '';
}

function fillAttentionBlocks(depth) {
  $('attn-block').innerHTML = Array.from({ length: depth }, (_, b) => `<option value="${b}"${b === depth - 1 ? ' selected' : ''}>${b}${b === depth - 1 ? ' (last)' : ''}</option>`).join('');
}

function afterModel(r) {
  fillAttentionBlocks(r.info.depth);
  state.modelInfo = r.info;
  state.modelName = r.name;
  state.data = r.data || state.data;
  renderClassChecks(r.info.labels, state.queryClasses || []);
  state.queryClasses = null;
  fillHistSources();
  fillSampleConfigs();
  clearResults();
}

async function loadModelSrc(src) {
  showError('model-error', '');
  return withLoading(async () => {
    const r = await state.primary.call('loadModel', { ...src });
    state.modelSrc = src;
    afterModel(r);
    if (r.dataError) showError('data-error', `The images do not fit this model: ${r.dataError}`);
    else showError('data-error', '');
    renderStatus();
    // The model is loaded even when the images are not for it (a class it lacks): that is the images' problem, said there.
    try {
      if (r.dataError) state.fp32 = null; else await evaluateFp32();
    } catch (e) {
      showError('data-error', `The images do not fit this model: ${e.message}. Load images of its classes.`);
      renderStatus();
    }
    await drawHistogram();
    await showSample();
  });
}

async function loadShippedModel(dir) {
  showError('model-error', '');
  $('model-summary').textContent = `Loading ${dir}…`;
  try {
    const [safetensors, config] = await Promise.all([fetchBytes(`${dir}model.safetensors`), fetchBytes(`${dir}config.json`)]);
    // Hugging Face models come with preprocessor_config.json; timm ones keep it in config.json.
    let hf = true;
    try { hf = !('pretrained_cfg' in JSON.parse(new TextDecoder().decode(config))); } catch { /* the loader will say */ }
    const preprocessor = hf ? await fetchBytes(`${dir}preprocessor_config.json`, true) : null;
    await loadModelSrc({ safetensors, config, preprocessor, name: dir.replace(/^\/models\/|\/$/g, '') || 'model' });
  } catch (e) {
    const msg = e.status === 404
      ? `The shipped model ${dir} is not on this server yet (${e.message.replace(/: HTTP 404$/, '')} is missing). Bring your own model with the buttons above.`
      : `Could not load the shipped model ${dir}: ${e.message}`;
    showError('model-error', msg);
    if (!state.modelInfo) $('model-summary').textContent = 'No model loaded.';
    else renderStatus();
  }
}

// New images: loaded, checked against the model and evaluated in FP32; if any of that fails (e.g. a class the model
// does not have), the previous images, their FP32 numbers and the results stay as they were.
async function loadDataInput(input, label) {
  showError('data-error', '');
  const prev = { input: state.dataInput, data: state.data, fp32: state.fp32 };
  return withLoading(async () => {
    const limit = readSettings().limit;
    try {
      const data = await state.primary.call('loadData', { input, limit });
      state.data = data;
      state.dataInput = input;
      await evaluateFp32();
      clearResults();
      renderStatus();
      await showSample();
    } catch (e) {
      showError('data-error', `${label ? prefixed(label, e.message) : e.message}. ${prev.data ? `Still using ${prev.data.name}.` : ''}`.replace(/\.\. /, '. ').trim());
      if (state.dataInput === input) {
        // Loaded but refused afterwards (by the FP32 evaluation): the worker goes back to the previous images.
        state.dataInput = prev.input;
        state.data = prev.data;
        try {
          if (prev.input) state.data = await state.primary.call('loadData', { input: prev.input, limit });
        } catch { state.data = null; state.dataInput = null; }
      }
      state.fp32 = state.data ? prev.fp32 : null;
      setRunStatus(state.fp32 ? READY : '');
      renderStatus();
    }
  });
}

// "name: message", unless the message already starts with the name.
function prefixed(name, message) {
  return message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
}

async function loadDefaultData() {
  try {
    const [images, labels] = await Promise.all([fetchBytes(DEFAULT_DATA.images), fetchBytes(DEFAULT_DATA.labels)]);
    await loadDataInput({ kind: 'idx', files: [{ name: 'fmnist-test-1k-images-idx3-ubyte.gz', bytes: images }, { name: 'fmnist-test-1k-labels-idx1-ubyte.gz', bytes: labels }] }, 'Default set');
  } catch (e) {
    showError('data-error', `Could not load the default evaluation set: ${e.message}`);
    $('data-summary').textContent = 'No images loaded.';
  }
}

// Files the user brought: [{ file: File, path }] (path relative to what they chose).
const readAll = (entries) => Promise.all(entries.map(async (e) => ({ path: e.path, name: e.file.name, bytes: new Uint8Array(await e.file.arrayBuffer()) })));

async function modelFromFiles(entries) {
  showError('model-error', '');
  const names = entries.map((e) => e.path || e.file.name);
  const base = (e) => e.file.name.toLowerCase();
  const st = entries.filter((e) => base(e).endsWith('.safetensors'));
  const cfg = entries.filter((e) => base(e) === 'config.json' || (base(e).endsWith('.json') && !base(e).includes('preprocessor') && base(e).includes('config')));
  const pre = entries.filter((e) => base(e) === 'preprocessor_config.json' || base(e).includes('preprocessor'));
  const list = names.slice(0, 6).join(', ') + (names.length > 6 ? ', …' : '');
  try {
    if (!st.length) throw new Error(`no .safetensors file among the files you chose (${list}). A model is model.safetensors + config.json (+ preprocessor_config.json).`);
    if (st.length > 1) throw new Error(`choose one .safetensors file at a time (got ${st.map((e) => e.file.name).join(', ')})`);
    if (!cfg.length) throw new Error(`${st[0].file.name} came without config.json: BitLens needs the config.json that goes with it (Hugging Face or timm) to know the architecture. Choose both files together.`);
    const [s, c, p] = await Promise.all([readAll(st), readAll(cfg.slice(0, 1)), readAll(pre.slice(0, 1))]);
    const configText = new TextDecoder().decode(c[0].bytes);
    try { JSON.parse(configText); } catch (e) { throw new Error(`${c[0].name} is not valid JSON (${e.message})`); }
    if (p[0]) {
      try { JSON.parse(new TextDecoder().decode(p[0].bytes)); } catch (e) { throw new Error(`${p[0].name} is not valid JSON (${e.message})`); }
    }
    await loadModelSrc({ safetensors: s[0].bytes, config: c[0].bytes, preprocessor: p[0]?.bytes ?? null, name: uploadedModelName(st[0], JSON.parse(configText)) });
  } catch (e) {
    const cut = /beyond the end|truncated|out of range/.test(e.message) ? ' The file looks cut short (an interrupted download or copy?).' : '';
    showError('model-error', `Model not loaded: ${e.message}.${cut}`.replace(/\.\.(\s|$)/, '.$1'));
  }
}

// The name an uploaded model goes by: its folder's, else the name its config.json gives (Hugging Face `_name_or_path`,
// timm `architecture`, else the model type and its first classes) with the file's name beside it.
function uploadedModelName(entry, config) {
  const dirs = (entry.path || '').split('/').filter(Boolean).slice(0, -1);
  if (dirs.length) return dirs[dirs.length - 1];
  const file = entry.file.name;
  const named = String(config._name_or_path || config.architecture || '').split('/').filter(Boolean).pop();
  if (named) return `${named} (${file})`;
  const labels = config.id2label ? Object.values(config.id2label) : config.label_names || [];
  const type = config.model_type || (config.architectures || [])[0] || '';
  const what = [type, labels.length ? `${labels.slice(0, 2).join(', ')}${labels.length > 2 ? ', …' : ''}` : ''].filter(Boolean).join(': ');
  return what ? `${what} (${file})` : file;
}

const IMAGE_RE = /\.(png|jpe?g|bmp|gif)$/i;
// Files the user brought as images → { input (for the worker), label }: a zip, an image folder or IDX files.
async function imagesInput(entries, folderName) {
  const zips = entries.filter((e) => /\.zip$/i.test(e.file.name));
  const images = entries.filter((e) => IMAGE_RE.test(e.file.name));
  if (zips.length > 1) throw new Error(`choose one .zip at a time (got ${zips.map((e) => e.file.name).join(', ')})`);
  if (zips.length) {
    const [z] = await readAll(zips);
    return { input: { kind: 'zip', name: z.name, bytes: z.bytes }, label: z.name };
  }
  if (images.length) {
    const files = await readAll(images);
    return { input: { kind: 'folder', name: folderName || 'image folder', files: files.map((f) => ({ path: f.path, bytes: f.bytes })) }, label: folderName || 'Image folder' };
  }
  if (!entries.length) throw new Error('no files');
  const odd = entries.filter((e) => !/idx|ubyte|\.gz$/i.test(e.file.name));
  if (odd.length) {
    throw new Error(`${odd.map((e) => e.file.name).slice(0, 3).join(', ')}: not something BitLens reads as images. Expected a folder with one subfolder per class (PNG, JPEG, BMP or GIF files), a .zip of such a folder, or two IDX files (…-images-idx3-ubyte and …-labels-idx1-ubyte, gzipped or not).`);
  }
  const files = await readAll(entries);
  return { input: { kind: 'idx', files: files.map((f) => ({ name: f.name, bytes: f.bytes })) }, label: files.map((f) => f.name).join(' + ') };
}

async function dataFromFiles(entries, folderName) {
  showError('data-error', '');
  try {
    const { input, label } = await imagesInput(entries, folderName);
    return loadDataInput(input, label);
  } catch (e) {
    showError('data-error', `Images not loaded: ${e.message}`);
  }
}

// The user's own training images for fine-tuning.
async function trainFromFiles(entries, folderName) {
  showError('qat-error', '');
  return withLoading(async () => {
    let label = 'Training images';
    try {
      const r = await imagesInput(entries, folderName);
      label = r.label;
      await loadTrainInput(r.input);
    } catch (e) {
      showError('qat-error', `Training images not loaded: ${prefixed(label, e.message)}`);
    }
  });
}

function inputEntries(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

// Drag and drop: files and folders (recursively, through the entries API).
async function droppedEntries(dt) {
  const out = [];
  const items = [...(dt.items || [])].map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!items.some(Boolean)) return [...dt.files].map((file) => ({ file, path: file.name }));
  const walk = async (entry, prefix) => {
    if (!entry) return;
    if (entry.isFile) {
      const file = await new Promise((res, rej) => entry.file(res, rej));
      out.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      let batch;
      do {
        batch = await new Promise((res, rej) => reader.readEntries(res, rej));
        for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
      } while (batch.length);
    }
  };
  for (const e of items) await walk(e, '');
  return out;
}

function setupDrop(zone, input, onEntries) {
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', async (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (state.running) return;
    onEntries(await droppedEntries(e.dataTransfer));
  });
  zone.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
}

// ---------- the sweep --------------------------------------------------------------------------

function buildSpec(s) {
  const configs = s.configs.map(parseWA).filter(Boolean).map((c) => ({ wbits: c.wbits, abits: c.abits, softmax: s.softmax, weights: s.weights, granularity: s.granularity }));
  const spec = { configs, seeds: s.seeds, calibSize: s.calibSize };
  if (s.calibClasses.length) spec.calibClasses = s.calibClasses;
  if (s.calibSkew > 0) spec.calibSkew = s.calibSkew;
  if (s.calibCorrupt) spec.calibCorrupt = s.calibCorrupt;
  if (s.evalCorrupt) spec.evalCorrupt = s.evalCorrupt;
  if (s.groups) spec.groups = s.groups;
  return spec;
}

function validateSettings(s) {
  if (!s.configs.length) return 'Tick at least one bit-width configuration.';
  if (!(s.seeds >= 1 && s.seeds <= 50)) return 'Seeds must be between 1 and 50.';
  if (!(s.calibSize >= 1)) return 'The calibration size must be at least 1 image.';
  if (state.data && s.calibSize > state.data.poolN) return `The calibration size (${s.calibSize}) is larger than the ${state.data.poolN} images loaded.`;
  if (!(s.calibSkew >= 0 && s.calibSkew <= 1)) return 'The class skew ρ must be between 0 and 1.';
  return null;
}

// A run that failed (not cancelled): the message where the user looks, the progress cleared.
function runFailed(errorId, message) {
  showError(errorId, message);
  setRunStatus('');
  $('progress').value = 0;
  $('progress-text').textContent = '';
}

// The workers a sweep runs on: `?workers=N` from the URL, else one per core; at most MAX_WORKERS (each holds its
// own copy of the module, model and images) and at most one per run.
function sweepWorkers(s, runs) {
  const cores = Math.max(1, state.caps?.cores || navigator.hardwareConcurrency || 1);
  return Math.max(1, Math.min(s.workers || cores, MAX_WORKERS, runs));
}

async function run() {
  showError('run-error', '');
  const s = readSettings();
  if (s.method === 'sos') return runSos(s);
  const problem = validateSettings(s);
  if (problem) { showError('run-error', problem); return; }
  syncUrl();
  const spec = buildSpec(s);
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
  try {
    // Extra workers get a copy of the model and images; worker k then runs part k + 1 of nWorkers of the
    // (configuration × seed) runs, and the primary merges the parts into the numbers of one worker's sweep.
    for (let k = 1; k < nWorkers; k++) run.clients.push(new WorkerClient());
    await Promise.all(run.clients.slice(1).map(async (c) => {
      await c.call('init');
      await c.call('loadModel', { ...state.modelSrc });
      await c.call('loadData', { input: state.dataInput, limit: s.limit });
    }));
    const onProgress = (k) => (p) => { done[k] = p.done; progress(); };
    if (nWorkers === 1) {
      state.result = await state.primary.call('sweep', { spec }, { onProgress: onProgress(0) });
    } else {
      const parts = await Promise.all(run.clients.map((c, k) => c.call('sweep', { spec: { ...spec, shard: { index: k + 1, count: nWorkers } } },
        { onProgress: onProgress(k) })));
      state.result = await state.primary.call('mergeSweeps', { parts });
    }
    state.resultSettings = s;
    state.resultWorkers = nWorkers;
    done.fill(0); done[0] = total; progress();
    const secs = (performance.now() - run.started) / 1000;
    setRunStatus(`Done: ${total} quantize-and-evaluate runs in ${fmtTime(secs)} on ${nWorkers} worker${nWorkers > 1 ? 's' : ''}.`, 'done');
    renderResults();
    $('results').scrollIntoView({ block: 'start' });
  } catch (e) {
    if (e instanceof Cancelled || run.cancelled) return;
    runFailed('run-error', `The sweep stopped: ${e.message}`);
  } finally {
    for (const c of run.clients.slice(1)) c.terminate();
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

// ---------- mixed precision --------------------------------------------------------------------

// The budget input means bits or kB; switching sets a sensible starting value.
function setBudgetKind() {
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

async function runMixed() {
  showError('mx-error', '');
  const s = readSettings();
  const byBytes = s.mxKind === 'kb';
  const problem = validateSettings({ ...s, configs: ['mixed'] })
    || (!byBytes && !(s.mxBudget >= 2 && s.mxBudget <= 8) ? 'The budget must be an average bit-width from 2 to 8.' : null)
    || (byBytes && !(s.mxBudget > 0) ? 'The model size must be a positive number of kB.' : null)
    || (!(s.mxSens >= 1) ? 'Use at least 1 sensitivity image.' : null);
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
    if (e instanceof Cancelled || run.cancelled) return;
    runFailed('mx-error', `Mixed precision stopped: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

// Average bits per value over items, with `bitsOf(name)` per item.
function averageBits(items, bitsOf) {
  let v = 0, b = 0;
  for (const it of items) { v += it.values; b += it.values * bitsOf(it.name); }
  return v ? b / v : NaN;
}

function renderMixed() {
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
function exploreMixed() {
  const m = state.mixed;
  if (!m) return;
  state.result = m.sweep;
  state.resultWorkers = 0;
  state.resultSettings = { ...m.settings, calibClasses: [], calibSkew: 0, calibCorrupt: null, evalCorrupt: null, groups: '' };
  state.samplePicked = false;
  renderResults();
  $('results').scrollIntoView({ block: 'start' });
}

// ---------- fine-tuning (QAT) ------------------------------------------------------------------

async function fetchDefaultTrain() {
  const [images, labels] = await Promise.all([fetchBytes(DEFAULT_TRAIN.images), fetchBytes(DEFAULT_TRAIN.labels)]);
  return { kind: 'idx', name: DEFAULT_TRAIN.name, files: [{ name: 'fmnist-train-5k-images-idx3-ubyte.gz', bytes: images }, { name: 'fmnist-train-5k-labels-idx1-ubyte.gz', bytes: labels }] };
}

// Training images into the worker (kept to restart it after a cancel).
async function loadTrainInput(input) {
  state.train = await state.primary.call('loadTrainData', { input, name: input.name });
  state.trainInput = input;
  renderTrainSummary();
}

function renderTrainSummary() {
  const t = state.train;
  $('qat-data-summary').innerHTML = t
    ? `Training images: <strong>${esc(t.name)}</strong>, ${t.n.toLocaleString()} images in ${t.classes.length} classes${t.name === DEFAULT_TRAIN.name ? ' (500 per class)' : ''}.`
      + (t.skipped && t.skipped.length ? ` Skipped ${t.skipped.length.toLocaleString()} file${t.skipped.length > 1 ? 's' : ''} that could not be used: ${esc(t.skipped.slice(0, 3).map((x) => `${x.path} (${x.reason})`).join('; '))}${t.skipped.length > 3 ? '; …' : ''}.` : '')
    : 'Training images: the shipped Fashion-MNIST training subset (5,000 images, 500 per class; loaded when you start).';
  renderQatEstimate();
  renderPruneEstimate();
}

// The images a run would train on (after its limit: 0 = all), and those it holds out (a tenth).
function trainingImages(limit) {
  const pool = state.train ? state.train.n : DEFAULT_TRAIN.n;
  const n = limit > 0 ? Math.min(limit, pool) : pool;
  const held = Math.max(1, Math.floor(0.1 * n));
  return { n, held, train: n - held };
}
function qatImages(s) { return trainingImages(s.qatLimit); }

// INQ's partitions as typed ("50, 75, 87.5, 100") → numbers, or a sentence saying what is wrong.
function parsePartitions(text) {
  const parts = text.split(',').map((t) => t.trim());
  if (!text.trim() || parts.some((t) => !/^\d+(\.\d+)?$/.test(t))) return { error: `Partitions must be percentages separated by commas, e.g. ${INQ_DEFAULT.partitions} (found “${text}”).` };
  const v = parts.map(Number);
  for (let i = 0; i < v.length; i++) {
    if (!(v[i] > 0 && v[i] <= 100)) return { error: `Partitions are percentages of each layer's weights from above 0 to 100; ${v[i]} is not.` };
    if (i && !(v[i] > v[i - 1])) return { error: `Partitions must increase (each is the share frozen so far): ${v[i - 1]} is followed by ${v[i]}.` };
  }
  if (v[v.length - 1] !== 100) return { error: `The last partition must be 100, so that every weight ends a power of two (found ${v[v.length - 1]}).` };
  return { partitions: v };
}

function renderQatEstimate() {
  const s = readSettings();
  const inq = s.ftMethod === 'inq', qb = s.ftMethod === 'qbitopt';
  const epochs = inq ? s.inqEpochs : qb ? s.qbEpochs : s.qatEpochs;
  if (!(epochs >= (qb ? 2 : 1))) { $('qat-estimate').textContent = ''; return; }
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
function validateTrainImages(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!whole(s.qatLimit, 0, 1e9)) return 'The number of training images must be a whole number (0 = all).';
  const { n, train } = qatImages(s);
  if (n < 2) return 'Use at least 2 training images (one is held out for validation).';
  if (!(s.calibSize >= 1)) return 'The calibration size must be at least 1 image.';
  if (s.calibSize > train) return `The calibration size (${s.calibSize}) is larger than the ${train} training images left after the held-out tenth: use fewer calibration images or more training images.`;
  return null;
}

function validateQat(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!whole(s.qatW, 2, 8) || !whole(s.qatA, 2, 8)) return 'The bit-widths W and A must be whole numbers from 2 to 8.';
  if (!whole(s.qatEpochs, 1, 50)) return 'Epochs must be a whole number from 1 to 50.';
  return validateTrainImages(s);
}

function validateQbitopt(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  const bits = (v) => Number.isFinite(v) && v >= 2 && v <= 8;
  if (!bits(s.qbW)) return `The bit budget per weight must be a number of bits from 2 to 8, e.g. 4 or 3.5 (found ${$('qb-w').value.trim() || 'nothing'}): every layer needs at least 2 bits.`;
  if (s.qbA != null && !bits(s.qbA)) return `The bit budget per activation must be a number of bits from 2 to 8, or empty to keep the activations at 8 bits (found ${$('qb-a').value.trim() || 'an entry that is not a number'}).`;
  if (!whole(s.qbEpochs, 2, 50)) return 'QBitOpt needs from 2 to 50 epochs (a whole number): the bits are reallocated during every epoch but the last, which trains with them fixed.';
  return validateTrainImages(s);
}

function validateInq(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!whole(s.inqW, 2, 8)) return 'The weight bits must be a whole number from 2 to 8.';
  if (!whole(s.inqA, 2, 8)) return 'The activation bits must be a whole number from 2 to 8.';
  const { error } = parsePartitions(s.inqPartitions);
  if (error) return error;
  if (!whole(s.inqEpochs, 1, 50)) return 'Epochs per step must be a whole number from 1 to 50.';
  return validateTrainImages(s);
}

// What QAT, INQ and pruning runs share: the run registered (Cancel terminates its worker), `setup()` (the section's
// first view), the shipped training images loaded when none are, `body(run)`, and failures shown in the section
// (`errorId`, the message starting with `stopped`).
async function fineTuneRun(setup, body, { errorId = 'qat-error', stopped = 'Fine-tuning stopped' } = {}) {
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
    if (e instanceof Cancelled || run.cancelled) return;
    runFailed(errorId, `${stopped}: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

function runFineTune() {
  showError('qat-error', '');
  const s = readSettings();
  const problem = { qat: validateQat, qbitopt: validateQbitopt, inq: validateInq }[s.ftMethod](s);
  if (problem) { showError('qat-error', problem); return; }
  return s.ftMethod === 'inq' ? runInq(s) : runQat(s);
}

// The activation and calibration settings above, for QAT's and INQ's PTQ start.
const ptqSettings = (s) => ({ softmax: s.softmax, granularity: s.granularity, calibSize: s.calibSize });

// QBitOpt's name for a run: its budgets ("W4A5 budget"; "W4 budget" with the activations at 8 bits).
const qbName = (s) => `W${s.qbW}${s.qbA != null ? `A${s.qbA}` : ''} budget`;

// QAT, or QBitOpt (QAT whose bits are reallocated under a budget): the same run, epochs table and learning curve;
// QBitOpt adds the allocation chart and the per-class comparison.
function runQat(s) {
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
    const limit = s.qatLimit ? { limit: s.qatLimit } : {};
    const r = await state.primary.call('qat', qb ? {
      quant: { weights: s.weights, ...ptqSettings(s) },
      options: { epochs, budget: s.qbW, ...(s.qbA != null ? { abudget: s.qbA } : {}), objective: s.qbObjective, ...limit },
    } : {
      quant: { wbits: s.qatW, abits: s.qatA, weights: s.weights, ...ptqSettings(s) },
      options: { epochs, ...limit },
    }, { onProgress });
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
function renderQatEpochs() {
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

function drawQatCurve() {
  const q = state.qat;
  if (!q) return;
  const fp32 = q.result ? q.result.validationFp32 : null;
  if (!q.history.some((e) => e.valTop1 != null)) { $('plot-qat-curve').innerHTML = '<p class="hint">The curve appears once the PTQ start is evaluated.</p>'; return; }
  drawChart('plot-qat-curve', () => learningCurve($('plot-qat-curve'), q.history, { epochs: q.epochs, fp32, best: q.result ? q.result.bestEpoch : null }),
    `bitlens-qat-${q.name.replace(/\s+/g, '-')}-curve`);
}

// QBitOpt: the bits of every layer (and point) at each allocation so far, the kept one framed once the run is done.
function drawQbChart() {
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
function compareRow(key, label, e, sizeBytes, base) {
  const w = e.worstClass;
  const dTop = base ? e.top1 - base.top1 : null;
  const dWorst = base && w && base.worstClass ? w.accuracy - base.worstClass.accuracy : null;
  const delta = (d) => (d == null ? '' : ` <span class="sub">${d >= 0 ? '+' : '−'}${Math.abs(100 * d).toFixed(1)} pt vs PTQ</span>`);
  const cls = (d) => (d == null ? '' : d > 0.0005 ? ' good' : d < -0.0005 ? ' bad' : '');
  return `<tr data-model="${key}"${key === 'fp32' ? ' class="fp32"' : ''}><th scope="row">${label}</th>
    <td class="top1${cls(dTop)}">${pct(e.top1, 2)}${delta(dTop)}</td>
    <td class="worst${cls(dWorst)}">${w ? `${esc(w.label)} ${pct(w.accuracy, 1)}` : '—'}${delta(dWorst)}</td><td>${kb(sizeBytes)}</td></tr>`;
}
const compareHead = (caption) => `<caption class="sr">${caption}</caption><thead><tr><th scope="col">Model</th>
    <th scope="col" data-term="top1">Top-1</th><th scope="col" data-term="worst-class">Worst class</th><th scope="col" data-term="size">Model size</th></tr></thead><tbody>`;

// After the run: the epochs with the kept one marked, the curve with FP32's lines, and PTQ against QAT on the evaluation
// images (QBitOpt: also the allocations with the kept one framed, the bits it uses, and per class).
function renderQat() {
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

function runInq(s) {
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
    const r = await state.primary.call('inq', {
      quant: { wbits: s.inqW, abits: s.inqA, ...ptqSettings(s) },
      options: { partitions, epochsPerStep: s.inqEpochs, ...(s.qatLimit ? { limit: s.qatLimit } : {}) },
    }, { onProgress });
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
function renderInqSteps() {
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

function drawInqChart() {
  const q = state.inq;
  if (!q) return;
  if (!q.history.some((st) => st.valTop1 != null)) { $('plot-inq-steps').innerHTML = '<p class="hint">The chart appears once the PTQ start is evaluated.</p>'; return; }
  drawChart('plot-inq-steps', () => inqStepChart($('plot-inq-steps'), q.history, { partitions: q.partitions, fp32: q.result ? q.result.validationFp32 : null }),
    `bitlens-inq-${q.name}-steps`);
}

// After the run: the steps with FP32's lines, PTQ against INQ on the evaluation images, per class.
function renderInq() {
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

// ---------- structured pruning and the compression trade-off --------------------------------------

// Forward latency is the median over this many images (web/worker.js LATENCY_IMAGES), for the notes.
const LATENCY_IMAGES = 32;
// Seconds of one forward pass of the shipped ViT in WASM in a busy tab, for the estimate of mask importance and measuring.
const FORWARD_SECONDS = 0.0008;

const fraction = (v) => String(Number(v.toFixed(4)));
// A pruned model's name: its keep fractions, "h0.5/m0.5" (another run with the same fractions gets " (run 2)").
function pruneName(s) {
  const base = `h${fraction(s.prHeads)}/m${fraction(s.prMlp)}`;
  const taken = new Set((state.prune?.models || []).map((m) => m.name));
  if (!taken.has(base)) return base;
  let k = 2;
  while (taken.has(`${base} (run ${k})`)) k++;
  return `${base} (run ${k})`;
}

function pruneImages(s) { return trainingImages(s.prLimit); }

function validatePrune(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  const typed = (id) => $(id).value.trim() || 'nothing';
  for (const [v, id, what] of [[s.prHeads, 'pr-heads', 'attention heads'], [s.prMlp, 'pr-mlp', 'MLP units']]) {
    if (!Number.isFinite(v)) return `Keep ${what}: enter the fraction of each layer's ${what} to keep, above 0 and at most 1, e.g. 0.5 (found ${typed(id)}).`;
    if (v <= 0) return `Keep ${what} must be above 0 (found ${v}): every layer keeps at least one of its ${what}. To prune only the other kind, keep 1 of these.`;
    if (v > 1) return `Keep ${what} is the fraction of each layer's ${what} that stays, at most 1 (found ${v}): 1 keeps them all, 0.5 half of them.`;
  }
  if (!whole(s.prEpochs, 0, 50)) return `Recovery epochs must be a whole number from 0 to 50 (found ${typed('pr-epochs')}); 0 keeps the pruned model as it is.`;
  if (!whole(s.prImpImages, 0, 1e9)) return `Importance images must be a whole number of training images (0 = all of them; found ${typed('pr-imp-images')}).`;
  if (!whole(s.prLimit, 0, 1e9)) return `Training images must be a whole number (0 = all; found ${typed('pr-limit')}).`;
  if (pruneImages(s).n < 2) return 'Use at least 2 training images (a tenth is held out to pick the best recovery epoch).';
  if (!whole(s.calibSize, 1, 1e9)) return 'The calibration size (Settings) must be a whole number of at least 1 image.';
  if (state.data && s.calibSize > state.data.poolN) return `The calibration size (${s.calibSize}) is larger than the ${state.data.poolN} images loaded.`;
  return null;
}

function renderPruneEstimate() {
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
const pruneQuant = (s) => ({ weights: s.weights, softmax: s.softmax, granularity: s.granularity, calibSize: s.calibSize });
const pruneQuantKey = (s) => JSON.stringify(pruneQuant(s));

function runPrune() {
  showError('pr-error', '');
  const s = readSettings();
  const problem = validatePrune(s);
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
      const result = await state.primary.call('prune', {
        modelId: id,
        options: { keepHeads: s.prHeads, keepMlp: s.prMlp, importance: s.prImportance, importanceImages: s.prImpImages, epochs: s.prEpochs,
          distill: s.prDistill, ...(s.prLimit ? { limit: s.prLimit } : {}) },
      }, { onProgress });
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
      if (!(e instanceof Cancelled || run.cancelled)) { pr.run = null; renderPrune(); }
      throw e;
    }
  }, { errorId: 'pr-error', stopped: `Could not prune ${name}` });
}

// Every measured point of the trade-off: { label, model, precision, bytes, ms, top1, worst, worstLabel, n }.
function prunePoints(pr) {
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
function markFrontier(pts, x, y) {
  for (const p of pts) p.frontier = !pts.some((q) => q !== p && q[x] <= p[x] && q[y] >= p[y] && (q[x] < p[x] || q[y] > p[y]));
}

const AXIS_NAMES = { bytes: 'size', ms: 'latency', top1: 'top-1', worst: 'worst-class accuracy' };

function renderPrune() {
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
function headBars(scores, kept, max, block) {
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
function unitStrip(scores, kept, max, block) {
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
function renderPruneModels(pr) {
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

async function cancel() {
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
  state.primary = new WorkerClient();
  await withLoading(async () => {
    try {
      await state.primary.call('init');
      if (state.modelSrc) await state.primary.call('loadModel', { ...state.modelSrc });
      if (state.dataInput) state.data = await state.primary.call('loadData', { input: state.dataInput, limit: readSettings().limit });
      if (state.trainInput) state.train = await state.primary.call('loadTrainData', { input: state.trainInput, name: state.trainInput.name });
      setRunStatus('Cancelled. Ready to run again.', 'cancelled');
    } catch (e) {
      showError('run-error', `Could not restart after cancelling: ${e.message}`);
    }
  });
}

// ---------- SOS reconstruction -----------------------------------------------------------------

function validateSos(s) {
  const whole = (v, lo, hi) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!s.configs.length) return 'Tick at least one bit-width configuration to reconstruct.';
  if (!whole(s.reconIters, 0, 10000)) return 'Reconstruction iterations must be a whole number from 0 to 10,000.';
  if (!whole(s.calibSize, 1, 1e9)) return 'The calibration size must be a whole number of at least 1 image.';
  if (state.data && s.calibSize > state.data.poolN) return `The calibration size (${s.calibSize}) is larger than the ${state.data.poolN} images loaded.`;
  return null;
}

// Each ticked configuration in turn, in the primary worker: progress per stage, block and iteration; the
// table and the chart fill as stages finish.
async function runSos(s) {
  const problem = validateSos(s);
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
  const reconBatch = Math.min(SOS_BATCH, s.calibSize);
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
        quant: { wbits: c.wbits, abits: c.abits, softmax: s.softmax, weights: s.weights, granularity: s.granularity, calibSize: s.calibSize, reconIters: s.reconIters, reconBatch },
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
    if (e instanceof Cancelled || run.cancelled) return;
    sos.failed = true;
    renderSos();
    runFailed('run-error', `The SOS reconstruction stopped: ${e.message}`);
  } finally {
    if (state.running === run) state.running = null;
    updateRunButton();
  }
}

// The class PTQ (stage 0) hurts most in a run, with its accuracy after PTQ and after the last stage so far.
function sosWorst(r) {
  const ev = r.stages.filter((st) => st.perClass);
  if (!ev.length || !ev[0].worstClass) return null;
  const k = ev[0].worstClass.index;
  return { index: k, label: ev[0].worstClass.label, ptq: ev[0].perClass[k], final: ev[ev.length - 1].perClass[k], stage: ev[ev.length - 1].stage };
}

function renderSos() {
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

function drawSosChart() {
  const q = state.sos;
  if (!q) return;
  const runs = q.runs.filter((r) => r.stages.some((st) => st.perClass));
  if (!runs.length) { $('plot-sos-classes').innerHTML = '<p class="hint">The chart appears once PTQ (stage 0) is evaluated.</p>'; return; }
  drawChart('plot-sos-classes', () => sosStageChart($('plot-sos-classes'), runs, state.modelInfo.labels, state.fp32 ? state.fp32.perClass : null),
    `bitlens-sos-${runs.map((r) => r.name).join('-')}-stages`);
}

// ---------- results ----------------------------------------------------------------------------

// A loss the results mark in red (the legend under the table says so): 5 points or more below FP32.
const LOST = 0.05;
const lost = (drop) => drop != null && Math.round(1000 * drop) >= 1000 * LOST;  // as printed, to 0.1 pt

function renderResults() {
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
function renderGroups(r) {
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

function fillCmSeeds() {
  const r = state.result;
  const i = Number($('cm-config').value);
  const c = r.configs[i];
  $('cm-seed').disabled = !c;
  $('cm-seed').innerHTML = c ? c.seeds.map((sd, k) => `<option value="${k}">${sd.seed}${c.worstCase && sd.seed === c.worstCase.seed ? ' (worst case)' : ''}</option>`).join('') : '<option>—</option>';
  if (c && c.worstCase) $('cm-seed').value = String(Math.max(0, c.seeds.findIndex((sd) => sd.seed === c.worstCase.seed)));
}

function drawConfusion() {
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

function drawChart(id, make, fileBase) {
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

function resultsJson() {
  return JSON.stringify({
    tool: 'BitLens demo', date: new Date().toISOString(), url: location.href,
    model: { name: state.modelName, info: state.modelInfo },
    data: state.data, settings: state.resultSettings, result: state.result,
  }, null, 1);
}

function resultsCsv() {
  const r = state.result;
  const q = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const num = (v) => (v == null || Number.isNaN(v) ? '' : Number(v).toFixed(6));
  const lines = ['config,seed,kind,class_index,class,accuracy,fp32_accuracy,drop'];
  for (const c of r.configs) {
    for (const sd of c.seeds) {
      lines.push([c.name, sd.seed, 'top1', '', '', num(sd.top1), num(r.fp32.top1), num(r.fp32.top1 - sd.top1)].map(q).join(','));
      sd.perClass.forEach((a, k) => lines.push([c.name, sd.seed, 'class', k, r.labels[k], num(a), num(r.fp32.perClass[k]), num(r.fp32.perClass[k] - a)].map(q).join(',')));
    }
  }
  return `${lines.join('\n')}\n`;
}

// ---------- teaching views ---------------------------------------------------------------------

function fillHistSources() {
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
async function drawHistogram() {
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
    if (!(e instanceof Cancelled)) $('plot-hist').innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

function fillSampleConfigs() {
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
}

let sampleUrl = null;
async function showSample() {
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
    if (!(e instanceof Cancelled)) box.innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

// ---------- wiring -----------------------------------------------------------------------------

function bind() {
  // The sticky run bar's height, so that anything scrolled to (results, figures, links) lands below it, not under it.
  const bar = $('run');
  const barHeight = () => document.documentElement.style.setProperty('--run-h', `${bar.offsetHeight}px`);
  new ResizeObserver(barHeight).observe(bar);
  barHeight();
  $('run-btn').addEventListener('click', run);
  $('mx-run').addEventListener('click', runMixed);
  for (const id of ['mx-budget', 'mx-objective', 'mx-sens']) $(id).addEventListener('change', syncUrl);
  $('mx-kind').addEventListener('change', () => { setBudgetKind(); syncUrl(); });
  $('mx-explore').addEventListener('click', exploreMixed);
  $('qat-run').addEventListener('click', runFineTune);
  $('qat-method').addEventListener('change', () => { updateFineTuneUi(); syncUrl(); renderQatEstimate(); });
  for (const id of ['qat-w', 'qat-a', 'qat-epochs', 'qat-limit', 'inq-w', 'inq-a', 'inq-partitions', 'inq-epochs', 'qb-w', 'qb-a', 'qb-objective', 'qb-epochs']) $(id).addEventListener('change', () => { syncUrl(); renderQatEstimate(); });
  $('results-table').addEventListener('click', (e) => {
    const c = parseWA(e.target.dataset?.qat || '');
    if (!c) return;
    const m = $('qat-method').value;
    $({ qat: 'qat-w', qbitopt: 'qb-w', inq: 'inq-w' }[m]).value = c.wbits;
    $({ qat: 'qat-a', qbitopt: 'qb-a', inq: 'inq-a' }[m]).value = c.abits;
    syncUrl();
    renderQatEstimate();
    $('qat').scrollIntoView({ block: 'start' });
    $('qat-run').focus({ preventScroll: true });
  });
  const trainFrom = (entries, folderName) => trainFromFiles(entries, folderName);
  $('qat-files').addEventListener('change', (e) => { const en = inputEntries(e.target); e.target.value = ''; if (en.length) trainFrom(en); });
  $('qat-folder').addEventListener('change', (e) => {
    const en = inputEntries(e.target);
    e.target.value = '';
    if (en.length) trainFrom(en, en[0].path.split('/')[0]);
  });
  setupDrop($('qat-drop'), $('qat-files'), (en) => trainFrom(en, en[0]?.path.includes('/') ? en[0].path.split('/')[0] : ''));
  $('qat-default').addEventListener('click', () => withLoading(async () => {
    showError('qat-error', '');
    try { await loadTrainInput(await fetchDefaultTrain()); } catch (e) { showError('qat-error', `Could not load the shipped training images: ${e.message}`); }
  }));
  // The worker keeps the last fine-tuned model, QAT's or INQ's (the other's results are hidden when a run starts).
  for (const method of ['qat', 'inq']) {
    $(`${method}-export`).addEventListener('click', async () => {
      const t = state[method];
      if (!t?.result) return;
      try {
        const bytes = await state.primary.call('exportTuned');
        download(`${state.modelName.replace(/[^a-z0-9._-]+/gi, '_')}-${t.name.replace(/\s+/g, '-')}-${t.method || method}.safetensors`, bytes, 'application/octet-stream');
      } catch (e) {
        showError('qat-error', `Export failed: ${e.message}`);
      }
    });
  }
  $('cancel-btn').addEventListener('click', cancel);
  $('pr-run').addEventListener('click', runPrune);
  for (const id of ['pr-heads', 'pr-mlp', 'pr-importance', 'pr-imp-images', 'pr-distill', 'pr-epochs', 'pr-limit']) $(id).addEventListener('change', () => { syncUrl(); renderPruneEstimate(); });
  for (const id of ['pr-x', 'pr-y']) $(id).addEventListener('change', () => { syncUrl(); renderPrune(); });
  $('pr-models').addEventListener('click', async (e) => {
    const id = e.target.dataset?.pruneExport;
    const m = id && state.prune?.models.find((x) => x.id === id);
    if (!m) return;
    const folder = `${state.modelName.replace(/[^a-z0-9._-]+/gi, '_')}-${m.name.replace(/[^a-z0-9.]+/gi, '-').replace(/-+$/, '')}`;
    try {
      download(`${folder}.zip`, await state.primary.call('exportPruned', { modelId: id, folder }), 'application/zip');
    } catch (e2) {
      showError('pr-error', `Export failed: ${e2.message}`);
    }
  });
  $('sos-table').addEventListener('click', async (e) => {
    const name = e.target.dataset?.sosExport;
    if (!name) return;
    try {
      const bytes = await state.primary.call('exportSos', { name });
      download(`${state.modelName.replace(/[^a-z0-9._-]+/gi, '_')}-${name}-sos.safetensors`, bytes, 'application/octet-stream');
    } catch (e2) {
      showError('run-error', `Export failed: ${e2.message}`);
    }
  });
  $('share-btn').addEventListener('click', async () => {
    syncUrl();
    try { await navigator.clipboard.writeText(location.href); setRunStatus('Link copied: it opens this page with these settings.'); } catch { setRunStatus(`Link to these settings: ${location.href}`); }
  });
  $('settings').addEventListener('change', (e) => {
    syncUrl();
    if (e.target.name === 'config' || ['wq', 'sm', 'gran', 'calib'].includes(e.target.id)) fillSampleConfigs();
    if (['wq', 'sm', 'gran'].includes(e.target.id)) drawHistogram();
    if (e.target.id === 'method') updateMethodUi();
    renderPruneEstimate();
    renderSeedNote();
  });
  $('settings').addEventListener('submit', (e) => e.preventDefault());
  $('custom-add').addEventListener('click', () => {
    const w = Number($('custom-w').value), a = Number($('custom-a').value);
    const c = parseWA(`w${w}a${a}`);
    if (!c) { showError('run-error', 'Custom bit-widths must be whole numbers from 2 to 8.'); return; }
    showError('run-error', '');
    const checked = readSettings().configs;
    if (!PRESET_CONFIGS.includes(c.name) && !state.customConfigs.includes(c.name)) state.customConfigs.push(c.name);
    renderConfigChecks([...new Set([...checked, c.name])]);
    syncUrl();
    fillSampleConfigs();
  });
  $('limit').addEventListener('change', async () => {
    if (!state.dataInput || state.running) return;
    await withLoading(async () => {
      state.data = await state.primary.call('setLimit', { limit: readSettings().limit });
      clearResults();
      await evaluateFp32();
    });
  });
  $('model-files').addEventListener('change', (e) => { const en = inputEntries(e.target); e.target.value = ''; if (en.length) modelFromFiles(en); });
  $('model-folder').addEventListener('change', (e) => { const en = inputEntries(e.target); e.target.value = ''; if (en.length) modelFromFiles(en); });
  $('data-files').addEventListener('change', (e) => { const en = inputEntries(e.target); e.target.value = ''; if (en.length) dataFromFiles(en); });
  $('data-folder').addEventListener('change', (e) => {
    const en = inputEntries(e.target);
    e.target.value = '';
    if (en.length) dataFromFiles(en, en[0].path.split('/')[0]);
  });
  setupDrop($('model-drop'), $('model-files'), (en) => modelFromFiles(en));
  setupDrop($('data-drop'), $('data-files'), (en) => dataFromFiles(en, en[0]?.path.includes('/') ? en[0].path.split('/')[0] : ''));
  $('model-default').addEventListener('click', () => { syncUrl(); loadShippedModel($('shipped-model').value); });
  $('data-default').addEventListener('click', () => loadDefaultData());
  $('export-json').addEventListener('click', () => download('bitlens-results.json', resultsJson(), 'application/json'));
  $('export-csv').addEventListener('click', () => download('bitlens-results.csv', resultsCsv(), 'text/csv'));
  $('cm-config').addEventListener('change', () => { fillCmSeeds(); drawConfusion(); });
  $('cm-seed').addEventListener('change', drawConfusion);
  $('hist-source').addEventListener('change', drawHistogram);
  $('hist-bits').addEventListener('change', drawHistogram);
  $('sample-index').addEventListener('change', showSample);
  $('attn-block').addEventListener('change', showSample);
  $('sample-config').addEventListener('change', () => {
    state.samplePicked = true; $('export-model').hidden = !$('sample-config').value; showSample(); });
  $('sample-random').addEventListener('click', () => {
    if (!state.data) return;
    $('sample-index').value = String(Math.floor(Math.random() * state.data.poolN));
    showSample();
  });
  $('export-model').addEventListener('click', async () => {
    const sel = $('sample-config').value;
    if (!sel) return;
    try {
      const bytes = await state.primary.call('exportModel', JSON.parse(sel));
      download(`${state.modelName.replace(/[^a-z0-9._-]+/gi, '_')}-${$('sample-config').selectedOptions[0].textContent.replace(/[^a-z0-9]+/gi, '_')}.safetensors`, bytes, 'application/octet-stream');
    } catch (e) {
      showError('run-error', `Export failed: ${e.message}`);
    }
  });
  let resizeTimer;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { if (state.result) renderResults(); if (state.mixed) renderMixed(); if (state.qat) { drawQatCurve(); drawQbChart(); if (state.qat.result) renderQat(); } if (state.inq) { drawInqChart(); if (state.inq.result) renderInq(); } if (state.sos) drawSosChart(); if (state.prune) renderPrune(); }, 300); });
}

async function boot() {
  $('glossary').appendChild(glossaryList());
  setupTooltips();
  const urlProblems = applyQuery();
  bind();
  if (urlProblems.length) syncUrl();  // the link now says what the fields hold
  if (!globalThis.Plot) showError('run-error', 'The chart library did not load (web/vendor/plot.js): run `npm install`. Results will show as a table only.');
  state.primary = new WorkerClient();
  try {
    state.caps = await state.primary.call('init');
  } catch (e) {
    showError('run-error', e.message);
    setRunStatus('');
    return;
  }
  renderQatEstimate();
  renderPruneEstimate();
  setRunStatus('Loading the shipped model and the default images…');
  await loadShippedModel($('shipped-model').value);
  await loadDefaultData();
  if (!state.fp32) setRunStatus('');
  document.body.dataset.ready = '1';
}

boot();
