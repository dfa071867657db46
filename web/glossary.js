// BitLens demo — the glossary: one plain sentence or two per term the page uses. Any element with data-term="key"
// shows its entry in a tooltip on hover and on keyboard focus; the page's glossary list is made from the same table.

export const GLOSSARY = {
  vit: ['ViT', 'Vision Transformer: an image classifier that cuts the image into small squares (patches) and lets every patch look at every other one (attention).'],
  quantize: ['Quantization', 'Storing and computing with fewer bits per number, by rounding every value to one of a few levels. The model gets smaller and faster, and a little less exact.'],
  fp32: ['FP32', '32-bit floating point: the model as it was trained, with full precision. Every quantized model is compared with it.'],
  wa: ['W and A bits', 'W: bits per weight (the numbers the model learned). A: bits per activation (the numbers it computes from each image). W4A4 uses 4 bits for each; FP32 uses 32.'],
  weights: ['Weights', 'The numbers the model learned in training; the same for every image.'],
  activations: ['Activations', 'The numbers the model computes from an image as it passes through the layers.'],
  quantizer: ['Quantizer', 'The rule that rounds values onto a grid of levels: how many levels (2^bits) and where they sit.'],
  uniform: ['Uniform', 'A quantizer with evenly spaced levels between a minimum and a maximum.'],
  pow2: ['Power-of-two', 'A quantizer whose levels are 0 and ±2ⁿ, so a multiplication becomes a bit shift.'],
  log2: ['log2', 'A quantizer with levels at powers of two (1, ½, ¼, …): fine near zero, coarse near one. Suits attention probabilities, most of which are tiny.'],
  sulq: ['SULQ', 'Shift-uniform-log2 (from I&S-ViT): levels evenly spaced in log2(x + η), the shift η fitted on calibration images. Fine near zero like log2, but not as coarse near one.'],
  softmax: ['Softmax outputs', 'The attention probabilities: for every patch, how much it looks at each other patch (each row adds up to 1).'],
  wq: ['Weight quantizer', 'How the weights are rounded. Uniform: evenly spaced levels. Power-of-two: levels 0 and ±2ⁿ, so multiplications become shifts.'],
  sm: ['Softmax quantizer', 'How the attention probabilities are rounded. SULQ: evenly spaced in log2(x + η), fine near zero. log2: powers of two. Uniform: evenly spaced.'],
  'ft-method': ['Fine-tuning method', 'QAT trains the quantized model at fixed bits; QBitOpt also moves bits between layers within a budget; INQ makes the weights powers of two step by step.'],
  bits: ['Bits', 'How many bits each rounded number keeps: b bits allow at most 2^b levels, so every bit removed halves them and roughly doubles the gap between them.'],
  range: ['Range', 'The interval a quantizer’s levels cover; values outside it are clipped to its edge. Min-max covers every value, percentile skips the extreme tail, MSE picks the range with the least error.'],
  granularity: ['Granularity', 'How many weights share one grid: per channel (every output channel its own) or per tensor (one for the whole layer).'],
  'per-channel': ['Per channel', 'Each output channel (row) of a weight matrix gets its own scale, so one large row does not make the others coarse.'],
  'per-tensor': ['Per tensor', 'One scale for the whole weight matrix: simpler, but its largest value sets the grid for all.'],
  method: ['Method', 'PTQ rounds the calibrated model at once. SOS reconstruction then trains each block\'s quantizers (and weights) to copy the FP32 block.'],
  ptq: ['PTQ', 'Post-training quantization: quantize the trained model as it is, no more training. Calibration images set each quantizer\'s range, then every value is rounded.'],
  sos: ['SOS reconstruction', 'From I&S-ViT: after PTQ, each block is adjusted in three stages so that its output matches the FP32 block\'s on the calibration images.'],
  calibration: ['Calibration', 'Running a few images through the model to measure the range of its activations; that range sets each quantizer\'s scale. Which images are drawn changes the result.'],
  seed: ['Seed', 'The number that picks which calibration images are drawn. Several seeds are several draws: they show how much the luck of the draw matters.'],
  eval: ['Evaluation images', 'The labelled images the accuracy is measured on.'],
  groups: ['Class groups', 'Classes reported together, as if they were one class (e.g. tops = T-shirt, Pullover, Coat, Shirt).'],
  shift: ['Calibration shift', 'Calibrating on images unlike the evaluation images (some classes only, a skewed mix, or corrupted images) to see how much that hurts.'],
  skew: ['Class skew ρ', 'The calibration draw weighs the classes 1, ρ, ρ², …: a small ρ puts most calibration images in one class.'],
  corrupt: ['Corruption', 'Noise, blur, brightness or contrast changes applied to images, from severity 1 (mild) to 5 (strong).'],
  top1: ['Top-1', 'The share of images whose most likely class is the true one. For a quantized model: the mean ± standard deviation over the seeds, and the change against FP32.'],
  'worst-class': ['Worst class', 'The class with the lowest accuracy, averaged over the seeds; in brackets, how much it lost against the same class in FP32.'],
  flips: ['Flipped images', 'Images where FP32 and a quantized configuration disagree about being right: FP32 right and the configuration wrong (what quantization broke), or the reverse (what it happened to fix). The worst class usually has the most broken ones.'],
  projector: ['Projector mode', 'Larger chart text (16 px or more), thicker lines and black on white, laid out to fit a 1024×768 projector. It stays in the link (projector=1).'],
  'worst-case': ['Worst case', 'The lowest accuracy of any class under any one seed: the unluckiest calibration draw for the hardest class. In brackets, its loss against FP32.'],
  'largest-drop': ['Largest drop', 'The biggest fall of any class against FP32 under any one seed (it may be another class than the worst one).'],
  pt: ['pt', 'Percentage points: the difference of two percentages. 80% → 75% is −5 pt.'],
  size: ['Model size', 'The bytes it takes to store the weights (with their scales). FP32 takes 4 bytes per weight.'],
  repair: ['Repair', 'Fine-tune this configuration (QAT, QBitOpt or INQ, below) to win back accuracy by training.'],
  confusion: ['Confusion matrix', 'How often each true class (row) is predicted as each class (column). The diagonal is right; everything else is a mistake.'],
  attention: ['Attention', 'How much the class token (the model\'s summary) looks at each image patch when it decides.'],
  mixed: ['Mixed precision', 'Different bit-widths for different layers: more bits where rounding hurts, fewer where it does not, for the same total.'],
  sensitivity: ['Sensitivity', 'How much quantizing one layer alone, at a given bit-width, changes the model\'s output (its KL divergence from FP32).'],
  kl: ['KL divergence', 'How far the quantized model\'s predicted probabilities are from FP32\'s: 0 means the same.'],
  budget: ['Budget', 'The average bits per value (or the model size in kB) the plan may not exceed.'],
  qat: ['QAT', 'Quantization-aware training: train the quantized model a little more, so that its weights and scales adapt to the rounding.'],
  qbitopt: ['QBitOpt', 'QAT in which the bits also move between layers during training, within a bit budget.'],
  inq: ['INQ', 'Incremental network quantization: make the weights powers of two a share at a time, retraining the others after each step.'],
  loss: ['Training loss', 'How wrong the model is on the training images, as training measures it: lower is better.'],
  lr: ['Learning rate', 'How big a step each training update takes; it rises at the start and falls towards the end.'],
  latency: ['Latency', 'The time one forward pass over one image takes, here in WebAssembly in this tab.'],
  importance: ['Importance', 'How much the loss would grow without a head or unit: Taylor estimates it from gradient × activation, mask measures it by removing each.'],
  parameters: ['Parameters', 'The numbers the model learned (its weights and biases).'],
  epoch: ['Epoch', 'One pass over all the training images.'],
  'held-out': ['Held-out images', 'A tenth of the training images, kept out of training to check the model on images it did not learn from.'],
  distill: ['Distillation', 'The smaller or quantized model learns to copy the FP32 model\'s outputs, not only the labels.'],
  prune: ['Pruning', 'Removing whole attention heads and MLP units, so the matrices get smaller and the model faster.'],
  taylor: ['Taylor importance', 'An estimate of how much the loss would grow if a head or unit were removed: its gradient × its activation.'],
  pareto: ['Pareto frontier', 'The models that no other model beats on both size (or speed) and accuracy.'],
  kernels: ['Kernels', 'The instruction set this browser gives BitLens\'s WebAssembly. Relaxed SIMD: the fastest low-bit integer products. SIMD128: 4 numbers per instruction. Scalar: one at a time, about 15× slower. All three give the same results.'],
};

/** The glossary as a definition list (for the page's "Glossary" box). */
export function glossaryList() {
  const dl = document.createElement('dl');
  dl.className = 'glossary';
  for (const [key, [term, text]] of Object.entries(GLOSSARY).sort((a, b) => a[1][0].localeCompare(b[1][0]))) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    dt.id = `term-${key}`;
    const dd = document.createElement('dd');
    dd.textContent = text;
    dl.append(dt, dd);
  }
  return dl;
}

/**
 * Tooltips for every element with data-term (now or later): shown on hover and on keyboard focus, one tooltip element
 * (role=tooltip) the term points to with aria-describedby. Elements get tabindex=0 so the keyboard reaches them.
 */
export function setupTooltips(root = document) {
  const tip = document.createElement('div');
  tip.id = 'term-tip';
  tip.setAttribute('role', 'tooltip');
  tip.hidden = true;
  document.body.appendChild(tip);
  const prepare = (el) => {
    if (el.dataset.termReady) return;
    el.dataset.termReady = '1';
    el.classList.add('term');
    // Terms inside a label show when its control has focus; others are reached with the keyboard themselves.
    if (!el.closest('label, summary, legend') && !el.matches('a, button, input, select, textarea, [tabindex]')) el.tabIndex = 0;
    el.setAttribute('aria-describedby', 'term-tip');
  };
  const prepareAll = (node) => {
    if (node.nodeType !== 1) return;
    if (node.dataset.term) prepare(node);
    for (const el of node.querySelectorAll('[data-term]')) prepare(el);
  };
  prepareAll(document.body);
  new MutationObserver((records) => { for (const r of records) for (const n of r.addedNodes) prepareAll(n); })
    .observe(document.body, { childList: true, subtree: true });
  let current = null;
  const show = (el) => {
    const entry = GLOSSARY[el.dataset.term];
    if (!entry) return;
    current = el;
    tip.innerHTML = '';
    const b = document.createElement('strong');
    b.textContent = `${entry[0]}: `;
    tip.append(b, entry[1]);
    tip.hidden = false;
    const r = el.getBoundingClientRect();
    const w = Math.min(360, document.documentElement.clientWidth - 16);
    tip.style.maxWidth = `${w}px`;
    const left = Math.max(8, Math.min(r.left, document.documentElement.clientWidth - w - 8));
    tip.style.left = `${left + window.scrollX}px`;
    const below = r.bottom + 6 + tip.offsetHeight < window.innerHeight;
    tip.style.top = `${(below ? r.bottom + 6 : r.top - 6 - tip.offsetHeight) + window.scrollY}px`;
  };
  const hide = (el) => { if (!el || el === current) { tip.hidden = true; current = null; } };
  const termOf = (e) => e.target.closest?.('[data-term]')
    || (e.type.startsWith('focus') ? e.target.labels?.[0]?.querySelector('[data-term]') : null);
  root.addEventListener('mouseover', (e) => { const el = termOf(e); if (el && el !== current) show(el); });
  root.addEventListener('mouseout', (e) => { const el = termOf(e); if (el && !el.contains(e.relatedTarget)) hide(el); });
  root.addEventListener('focusin', (e) => { const el = termOf(e); if (el) show(el); });
  root.addEventListener('focusout', (e) => { const el = termOf(e); if (el) hide(el); });
  root.addEventListener('keydown', (e) => { if (e.key === 'Escape') hide(); });
  return tip;
}
