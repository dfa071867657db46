// Intake: the shipped model and images, and the files the user brings (picker, folder, drag and drop, zip, IDX), into
// the page's worker; the FP32 evaluation that checks them. What a rule decides (image extensions, classes, IDX) the
// library decides, in the worker.
import { loadTrainInput } from './finetune.js';
import { showError } from './format.js';
import { drawHistogram, fillHistSources, fillSampleConfigs, showSample } from './lessons.js';
import { renderPruneEstimate } from './prune.js';
import { $, DEFAULT_DATA, state } from './state.js';
import { renderStatus, setRunStatus, updateRunButton } from './status.js';
import { readSettings, renderClassChecks } from './url-state.js';

// fn() with the buttons that load or run disabled meanwhile.
export async function withLoading(fn) {
  state.loading++;
  updateRunButton();
  try { return await fn(); } finally { state.loading--; updateRunButton(); }
}

export async function fetchBytes(url, optional = false) {
  let res;
  try { res = await fetch(url); } catch (e) { throw new Error(`could not fetch ${url} (${e.message})`); }
  if (!res.ok) {
    if (optional && res.status === 404) return null;
    throw Object.assign(new Error(`${url}: HTTP ${res.status}`), { status: res.status });
  }
  return new Uint8Array(await res.arrayBuffer());
}

export const READY = 'Ready. Choose settings and press “Run sweep”.';

export async function evaluateFp32() {
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

export function clearResults() {
  state.result = null;
  state.mixed = null;
  state.qat = null;
  state.inq = null;
  state.sos = null;
  state.prune = null;
  state.flips = null;
  $('flips').hidden = true;
  $('pr-results').hidden = true;
  $('sos').hidden = true;
  $('results').hidden = true;
  $('mx-results').hidden = true;
  $('qat-results').hidden = true;
  $('inq-results').hidden = true;
  $('progress').value = 0;
  $('progress-text').textContent = '';
}

export function fillAttentionBlocks(depth) {
  $('attn-block').innerHTML = Array.from({ length: depth }, (_, b) => `<option value="${b}"${b === depth - 1 ? ' selected' : ''}>${b}${b === depth - 1 ? ' (last)' : ''}</option>`).join('');
}

export function afterModel(r) {
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

export async function loadModelSrc(src) {
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

export async function loadShippedModel(dir) {
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
export async function loadDataInput(input, label) {
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
export function prefixed(name, message) {
  return message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
}

export async function loadDefaultData() {
  try {
    const [images, labels] = await Promise.all([fetchBytes(DEFAULT_DATA.images), fetchBytes(DEFAULT_DATA.labels)]);
    await loadDataInput({ kind: 'idx', files: [{ name: 'fmnist-test-1k-images-idx3-ubyte.gz', bytes: images }, { name: 'fmnist-test-1k-labels-idx1-ubyte.gz', bytes: labels }] }, 'Default set');
  } catch (e) {
    showError('data-error', `Could not load the default evaluation set: ${e.message}`);
    $('data-summary').textContent = 'No images loaded.';
  }
}

// Files the user brought: [{ file: File, path }] (path relative to what they chose).
export const readAll = (entries) => Promise.all(entries.map(async (e) => ({ path: e.path, name: e.file.name, bytes: new Uint8Array(await e.file.arrayBuffer()) })));

export async function modelFromFiles(entries) {
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
export function uploadedModelName(entry, config) {
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

// A file name with one of the library's image extensions (bl.imageExtensions: what `bitlens` reads from a folder).
export const isImageName = (name) => state.caps.imageExtensions.some((e) => name.toLowerCase().endsWith(e) && name.length > e.length);
// Files the user brought as images → { input (for the worker), label }: a zip, an image folder or IDX files.
export async function imagesInput(entries, folderName) {
  const zips = entries.filter((e) => /\.zip$/i.test(e.file.name));
  const images = entries.filter((e) => isImageName(e.file.name));
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
  // Two other files can only be IDX (whatever their names): the library reads them (loadDataset), and its error names
  // the file and what its bytes are (e.g. "a.txt: magic 0x68656c6c, expected 0x00000803 (images)").
  if (entries.length !== 2) {
    throw new Error(`${entries.map((e) => e.file.name).slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}: not something BitLens reads as images. Expected a folder with one subfolder per class (PNG, JPEG, BMP or GIF files), a .zip of such a folder, or two IDX files (…-images-idx3-ubyte and …-labels-idx1-ubyte, gzipped or not).`);
  }
  const files = await readAll(entries);
  return { input: { kind: 'idx', files: files.map((f) => ({ name: f.name, bytes: f.bytes })) }, label: files.map((f) => f.name).join(' + ') };
}

export async function dataFromFiles(entries, folderName) {
  showError('data-error', '');
  try {
    const { input, label } = await imagesInput(entries, folderName);
    return loadDataInput(input, label);
  } catch (e) {
    showError('data-error', `Images not loaded: ${e.message}`);
  }
}

// The user's own training images for fine-tuning.
export async function trainFromFiles(entries, folderName) {
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

export function inputEntries(input) {
  return [...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

// Drag and drop: files and folders (recursively, through the entries API).
export async function droppedEntries(dt) {
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

export function setupDrop(zone, input, onEntries) {
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
