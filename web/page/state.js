// What the page holds (the loaded model and images, results, runs in progress) and its defaults; $ for elements by id.

export const $ = (id) => document.getElementById(id);
export const DEFAULT_MODEL = '/models/vit-fmnist-hf/';
export const DEFAULT_DATA = {
  images: '/models/data/fmnist-test-1k-images-idx3-ubyte.gz',
  labels: '/models/data/fmnist-test-1k-labels-idx1-ubyte.gz',
};
// The training images the fine-tuning (QAT) uses unless the user brings their own: 500 of each class.
export const DEFAULT_TRAIN = {
  images: '/models/data/fmnist-train-5k-images-idx3-ubyte.gz',
  labels: '/models/data/fmnist-train-5k-labels-idx1-ubyte.gz',
  n: 5000,
  name: 'the shipped Fashion-MNIST training subset',
};
export const QAT_DEFAULT = { w: 3, a: 3, epochs: 1 };
// QBitOpt: the average-bit budget per weight, per activation value (null: the activations stay at 8 bits), the
// objective of the sensitivity passes, epochs (the last trains with the bits fixed, so at least 2).
export const QB_DEFAULT = { w: 4, a: null, objective: 'mean', epochs: 2 };
// INQ: power-of-two weight bits, activation bits, partitions (cumulative % frozen), epochs of retraining per partition.
export const INQ_DEFAULT = { w: 4, a: 8, partitions: '50,75,87.5,100', epochs: 1 };
// Seconds per training image and epoch in WASM (one worker), for the estimate before the first run:
// measured at W3A3 with the shipped ViT in headless Chromium on a busy 2-core VM (6.4 ms; 4.5 ms in Node);
// a run replaces it with its own speed.
export const QAT_SECONDS_PER_IMAGE = 0.006;
export const PRESET_CONFIGS = ['W8A8', 'W6A6', 'W4A4', 'W3A3'];
// SOS reconstruction: iterations per block and stage (the library's default), images per iteration (at most).
export const SOS_DEFAULT_ITERS = 100;
export const SOS_BATCH = 16;
export const STAGE_NAMES = ['PTQ', 'stage 1', 'stage 2', 'stage 3'];
export const MAX_WORKERS = 4;
// Structured pruning: the fraction of each block's heads and MLP units kept, how they are ranked and on how many
// training images, distillation from FP32 (the page's default; the API's is off), recovery epochs, training images.
export const PRUNE_DEFAULT = { heads: 0.5, mlp: 0.5, importance: 'taylor', impImages: 2048, distill: true, epochs: 2, limit: 0 };
// The precisions every model of the trade-off is measured at (besides FP32).
export const PARETO_CONFIGS = ['W8A8', 'W6A6', 'W4A4', 'W3A3'];

// ---------- state ------------------------------------------------------------------------------

export const state = {
  caps: null,          // { cores, imageExtensions } of the first worker
  primary: null,       // PageWorker holding the model and images
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
  loading: 0,          // loads in progress (withLoading): the run buttons wait
  customConfigs: [],   // e.g. ['W5A6']
  trainInput: null,    // what the worker's loadTrainData got (kept to restart workers); null: the shipped subset, not loaded yet
  train: null,         // { name, kind, n, classes }
  qat: null,           // the QAT or QBitOpt run in progress or done: { name, method, epochs, settings, history, allocations, result }
  qatRate: null,       // measured seconds per training image and epoch (QAT or INQ)
  inq: null,           // the INQ run in progress or done: { name, settings, partitions, history, result }
  sos: null,           // the SOS reconstruction in progress or done: { settings, runs: [{ name, stages, blocks, result }], cancelled }
  flips: null,         // the one-image view's flips: { sel, name, n, labels, broken, fixed } (images by number, classes by index)
  projector: false,    // ?projector=1: projector mode (large chart text, thick lines, fits 1024×768)
  prune: null,         // the compression trade-off: { quant, base, models: [{ id, name, settings, result, points, lost }], run }
};
