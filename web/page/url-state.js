// Settings: the controls read into one object, written into the URL, and a link's settings checked and put back
// into the controls (each value checked; what is not used is named in one note).
import { setProjector } from '../charts.js';
import { parsePartitions } from './finetune.js';
import { esc, parseWA } from './format.js';
import { learnFromQuery, learnToQuery } from './learn.js';
import { setBudgetKind } from './mixed.js';
import { $, DEFAULT_MODEL, INQ_DEFAULT, PRESET_CONFIGS, PRUNE_DEFAULT, QAT_DEFAULT, QB_DEFAULT, SOS_DEFAULT_ITERS, state } from './state.js';

export function renderConfigChecks(checked) {
  const all = [...PRESET_CONFIGS, ...state.customConfigs.filter((c) => !PRESET_CONFIGS.includes(c))];
  $('configs').innerHTML = all.map((c) => `<label><input type="checkbox" name="config" value="${c}"${checked.includes(c) ? ' checked' : ''}> ${c}</label>`).join('');
}

export function renderClassChecks(labels, checked = []) {
  $('calib-classes').innerHTML = labels.map((l, k) => `<label><input type="checkbox" name="calib-class" value="${k}"${checked.includes(k) ? ' checked' : ''}> ${esc(l)}</label>`).join('');
}

export function readSettings() {
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
    // Empty: no activation budget (null); a bad entry: NaN (validateQat says so).
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
    projector: $('projector').checked,
  };
}

export function settingsToQuery(s) {
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
  if (s.projector) q.set('projector', '1');
  learnToQuery(q);  // Learn mode: learn=<lesson> and that lesson's knobs (bits, range, quantizer, draw, repair)
  return q.toString();
}

// The settings a link may carry, and the ranges of the numeric ones (those of the fields, and for the training runs'
// the library's: checkTrainingOptions; `real`: not only whole numbers).
export const URL_NUMBERS = {
  reconIters: ['recon-iters', 0, 1e9], calib: ['calib', 1, 1 << 24], seeds: ['seeds', 1, 100000], limit: ['limit', 0, 1e9],
  skew: ['skew', 0, 1, 'real'], budget: ['mx-budget', 2, 8, 'real'], maxKB: ['mx-budget', 1e-3, 1e9, 'real'], sensSize: ['mx-sens', 1, 1024],
  epochs: ['qat-epochs', 1, 10000], trainLimit: ['qat-limit', 0, 1e9], qbBudget: ['qb-w', 2, 8, 'real'], qbAbudget: ['qb-a', 2, 8, 'real'],
  qbEpochs: ['qb-epochs', 1, 10000], epochsPerStep: ['inq-epochs', 1, 10000], keepHeads: ['pr-heads', 0, 1, 'real'], keepMlp: ['pr-mlp', 0, 1, 'real'],
  importanceImages: ['pr-imp-images', 0, 1e9], pruneEpochs: ['pr-epochs', 0, 10000], pruneLimit: ['pr-limit', 0, 1e9], workers: [null, 1, 64],
};
export const URL_CHOICES = {
  weights: 'wq', softmax: 'sm', granularity: 'gran', method: 'method', objective: 'mx-objective', finetune: 'qat-method',
  qbObjective: 'qb-objective', importance: 'pr-importance', paretoX: 'pr-x', paretoY: 'pr-y',
};
export const URL_OTHERS = ['configs', 'model', 'classes', 'groups', 'qat', 'inq', 'partitions', 'pruneDistill', 'calibCorrupt', 'evalCorrupt', 'projector'];

// The URL's settings into the fields. Each value is checked first: an unknown key or a value out of range is not put
// into its field (the field keeps its default) and is listed in one readable note.
export function applyQuery() {
  const q = new URLSearchParams(location.search);
  const problems = [];
  const known = new Set([...Object.keys(URL_NUMBERS), ...Object.keys(URL_CHOICES), ...URL_OTHERS, 'learn', 'bits', 'range', 'quantizer', 'draw', 'repair']);
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
  const pj = q.get('projector');
  if (pj != null && pj !== '0' && pj !== '1') problems.push(`projector=${shown(pj)}: must be 0 or 1`);
  $('projector').checked = pj === '1';
  setProjectorMode(pj === '1');
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
  learnFromQuery(q, problems);
  const note = $('url-note');
  note.textContent = problems.length
    ? `The link's settings were checked, and ${problems.length === 1 ? 'one was' : `${problems.length} were`} not used (the field${problems.length === 1 ? ' keeps its' : 's keep their'} default): ${problems.join('; ')}.`
    : '';
  note.hidden = !problems.length;
  return problems;
}

// The method's controls: SOS shows its iterations and explanation, and the run button says what it runs.
export function updateMethodUi() {
  const sos = $('method').value === 'sos';
  for (const el of document.querySelectorAll('.sos-only')) el.hidden = !sos;
  $('run-btn').textContent = sos ? 'Run SOS reconstruction' : 'Run sweep';
}

// The fine-tuning method's controls and explanation; the button says what it runs.
export function updateFineTuneUi() {
  const m = $('qat-method').value;
  for (const el of document.querySelectorAll('.qat-only')) el.hidden = m !== 'qat';
  for (const el of document.querySelectorAll('.qb-only')) el.hidden = m !== 'qbitopt';
  for (const el of document.querySelectorAll('.inq-only')) el.hidden = m !== 'inq';
  $('qat-run').textContent = `Fine-tune (${{ qat: 'QAT', qbitopt: 'QBitOpt', inq: 'INQ' }[m]})`;
}

// Projector mode: the body's class (the style sheet's large text, thick lines and high contrast) and the charts' text size.
export function setProjectorMode(on) {
  state.projector = on;
  document.body.classList.toggle('projector', on);
  setProjector(on);
}

export function syncUrl() {
  const qs = settingsToQuery(readSettings());
  history.replaceState(null, '', `${location.pathname}?${qs}`);
}
