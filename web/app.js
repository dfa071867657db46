// BitLens demo — the page's entry (loaded by web/index.html as a module). It wires the controls to the modules under
// web/page/, one a concern, and boots: the first worker, the shipped model and the default images. All BitLens work
// happens in the page's workers (web/page/workers.js: the package's worker helper running web/page/worker.js).
//
//   page/state.js      what the page holds, its defaults        page/intake.js    models and images in, checked
//   page/url-state.js  settings ⇄ controls ⇄ URL               page/status.js    status line, notes, buttons
//   page/sweep.js      the sweep over workers, merged           page/results.js   tables, charts, exports
//   page/mixed.js      mixed precision                          page/finetune.js  QAT, QBitOpt, INQ
//   page/prune.js      pruning and the trade-off                page/sos.js       SOS reconstruction
//   page/cancel.js     Cancel and the worker's restart          page/lessons.js   teaching views
//   page/format.js     numbers, errors, downloads               page/workers.js   the workers (one bootstrap)
//   page/worker.js     the worker: the package's, extended with the page's session
//   page/learn.js      Learn mode: the lessons, their figures and knobs
import { glossaryList, setupTooltips } from './glossary.js';
import { PageWorker } from './page/workers.js';
import { cancel } from './page/cancel.js';
import { drawInqChart, drawQatCurve, drawQbChart, fetchDefaultTrain, loadTrainInput, renderInq, renderQat, renderQatEstimate, runFineTune } from './page/finetune.js';
import { download, parseWA, showError } from './page/format.js';
import { clearResults, dataFromFiles, evaluateFp32, inputEntries, loadDefaultData, loadShippedModel, modelFromFiles, setupDrop, trainFromFiles, withLoading } from './page/intake.js';
import { loadLearnData, redrawLearn, setupLearn } from './page/learn.js';
import { drawHistogram, fillSampleConfigs, jumpToWorstCase, renderFlips, showFlips, showSample } from './page/lessons.js';
import { exploreMixed, renderMixed, runMixed, setBudgetKind } from './page/mixed.js';
import { renderPrune, renderPruneEstimate, runPrune } from './page/prune.js';
import { drawConfusion, fillCmSeeds, renderResults, resultsCsv, resultsJson } from './page/results.js';
import { drawSosChart } from './page/sos.js';
import { $, PRESET_CONFIGS, state } from './page/state.js';
import { renderSeedNote, setRunStatus } from './page/status.js';
import { run } from './page/sweep.js';
import { applyQuery, readSettings, renderConfigChecks, setProjectorMode, syncUrl, updateFineTuneUi, updateMethodUi } from './page/url-state.js';

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
  // Projector mode: the page restyled and every chart drawn again at its text size; the URL keeps it.
  $('projector').addEventListener('change', () => {
    setProjectorMode($('projector').checked);
    syncUrl();
    window.dispatchEvent(new Event('resize'));
    drawHistogram();
    showSample();
    redrawLearn();
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
  $('export-csv').addEventListener('click', async () => {
    try { download('bitlens-results.csv', await resultsCsv(), 'text/csv'); } catch (e) { showError('run-error', `Export failed: ${e.message}`); }
  });
  $('cm-config').addEventListener('change', () => { fillCmSeeds(); drawConfusion(); });
  $('cm-seed').addEventListener('change', drawConfusion);
  $('hist-source').addEventListener('change', drawHistogram);
  $('hist-bits').addEventListener('change', drawHistogram);
  $('sample-index').addEventListener('change', showSample);
  $('attn-block').addEventListener('change', showSample);
  $('sample-config').addEventListener('change', () => {
    state.samplePicked = true; $('export-model').hidden = !$('sample-config').value; showSample(); showFlips(); });
  $('flips-class').addEventListener('change', renderFlips);
  $('flips-worst').addEventListener('click', () => { if (!state.running) jumpToWorstCase(); });
  for (const id of ['flips-broken', 'flips-fixed']) {
    $(id).addEventListener('click', (e) => {
      const b = e.target.closest('button.flip');
      if (!b) return;
      $('sample-index').value = b.dataset.index;
      showSample();
      $('sample').scrollIntoView({ block: 'nearest' });
    });
  }
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
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { if (state.result) renderResults(); if (state.mixed) renderMixed(); if (state.qat) { drawQatCurve(); drawQbChart(); if (state.qat.result) renderQat(); } if (state.inq) { drawInqChart(); if (state.inq.result) renderInq(); } if (state.sos) drawSosChart(); if (state.prune) renderPrune(); redrawLearn(); }, 300); });
}

// The instruction set the worker's WebAssembly runs (bl.backend), and what it means for speed.
const BACKENDS = {
  'relaxed-simd': ['relaxed SIMD', 'WebAssembly relaxed SIMD for the ≤ 7-bit integer GEMMs, SIMD128 elsewhere: the fastest kernels.'],
  simd128: ['SIMD128', 'WebAssembly SIMD128 (this browser has no relaxed SIMD, which would speed up the low-bit integer path).'],
  scalar: ['scalar (slow)', 'This browser runs WebAssembly without SIMD: the same results, about 15× slower. A current Chrome, Edge, Firefox or Safari has SIMD.'],
};
function showBackend(backend) {
  const [text, title] = BACKENDS[backend] || [String(backend), ''];
  const dd = $('st-backend');
  dd.textContent = text;
  dd.title = title;
  dd.dataset.backend = backend;
}

async function boot() {
  $('glossary').appendChild(glossaryList());
  setupTooltips();
  const urlProblems = applyQuery();
  bind();
  setupLearn(syncUrl);
  if (urlProblems.length) syncUrl();  // the link now says what the fields hold
  if (!globalThis.Plot) showError('run-error', 'The chart library did not load (web/vendor/plot.js): run `npm install`. Results will show as a table only.');
  state.primary = new PageWorker();
  try {
    const api = await state.primary.ready;
    state.caps = { cores: api.cores, imageExtensions: api.imageExtensions };
    showBackend(api.backend);
  } catch (e) {
    for (const id of ['st-model', 'st-data', 'st-backend']) $(id).textContent = 'none';  // no worker: nothing loads
    showError('run-error', e.message);
    setRunStatus('');
    return;
  }
  renderQatEstimate();
  renderPruneEstimate();
  setRunStatus('Loading the shipped model and the default images…');
  await loadShippedModel($('shipped-model').value);
  await loadDefaultData();
  loadLearnData();
  if (!state.fp32) setRunStatus('');
  document.body.dataset.ready = '1';
}

boot();
