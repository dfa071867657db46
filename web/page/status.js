// The status line and the notes under the model and images: what is loaded, what was converted or skipped, whether
// the seeds differ, which buttons can be pressed.
import { esc, pct } from './format.js';
import { $, state } from './state.js';
import { readSettings } from './url-state.js';

export function renderStatus() {
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
export const shapeText = (w, h, c) => `${w}×${h} ${c === 1 ? 'grey' : c === 3 ? 'RGB' : `${c}-channel`}`;

// Under the images: files skipped (how many, the first few, why), and what is converted when the images are not the
// size or colour the model takes (said, not silent).
export function renderDataNotes() {
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
export function sameDrawEverySeed(s, data = state.data) {
  return !!data && s.seeds > 1 && s.calibSize >= data.poolN && !s.calibCorrupt;
}
export function renderSeedNote() {
  const s = readSettings();
  const same = sameDrawEverySeed(s);
  $('seeds-note').textContent = same
    ? `Every seed draws the same images: the calibration takes ${s.calibSize > state.data.poolN ? `${s.calibSize.toLocaleString()} images, more than` : 'all'} the ${state.data.poolN.toLocaleString()} images loaded, so the ${s.seeds} seeds give the same numbers. Use fewer calibration images (or load more images) for the seeds to differ.`
    : '';
  $('seeds-note').hidden = !same;
}

export function updateRunButton() {
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

export function setRunStatus(text, cls = '') {
  const el = $('run-status');
  el.textContent = text;
  el.className = cls;
}
