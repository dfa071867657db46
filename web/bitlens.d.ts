// Types for the `bitlens` package: post-training quantization and worst-case accuracy of small
// Vision Transformers, in WebAssembly. Every object that holds WASM memory has `delete()`.

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;
export type QuantizerName = 'uniform' | 'log2' | 'sulq' | 'pow2';
export type RangeMethod = 'mse' | 'minmax' | 'percentile';

export interface CreateOptions {
  /** The bytes of bitlens-core.wasm; when given, nothing is fetched or read. */
  wasmBinary?: Uint8Array | ArrayBuffer;
  /**
   * Where bitlens-core.wasm is when it is not beside the package's JS (a bundler that emits no asset for
   * `new URL(…, import.meta.url)`, a CDN, a self-hosted copy): a folder URL ending in '/' (relative URLs are the
   * page's), or `{ 'bitlens-core.wasm': url }`. In Node a folder path or file: URL. A failed fetch is an Error that
   * names the URL and this option. The folder also holds bitlens-relaxed.wasm (browsers with relaxed SIMD; a map
   * without it: SIMD128 only) and bitlens-core-scalar.wasm (engines without SIMD).
   */
  wasmPaths?: string | { 'bitlens-core.wasm': string; 'bitlens-relaxed.wasm'?: string; 'bitlens-core-scalar.wasm'?: string };
  /** Emscripten's locateFile (then Emscripten fetches the .wasm itself; prefer `wasmPaths`). */
  locateFile?: (path: string, prefix: string) => string;
  /**
   * The instruction set. 'relaxed-simd': SIMD128, and the integer path's GEMMs for activations of at most 7 bits
   * in bitlens-relaxed.wasm (relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add, about 2× the SIMD128 kernels);
   * 'simd128'; 'scalar': bitlens-core-scalar.wasm, no SIMD at all. Left out: relaxed SIMD where the engine
   * validates it and bitlens-relaxed.wasm loads, never under Node (whose relaxed dot is wrong); else SIMD128 where
   * validated; else scalar. All give the same logits bit for bit. A backend the engine cannot run is an Error.
   */
  backend?: Backend;
  /** The bytes of bitlens-relaxed.wasm (otherwise fetched from beside bitlens-core.wasm, or `wasmPaths`). */
  relaxedBinary?: Uint8Array | ArrayBuffer;
}

export type Backend = 'relaxed-simd' | 'simd128' | 'scalar';
/** Whether this engine validates relaxed SIMD (and is not Node): what `backend` left out would try first. */
export function relaxedSimdSupported(): boolean;
/** Whether this engine validates WebAssembly SIMD128 (if not, `backend` left out is 'scalar'). */
export function simdSupported(): boolean;

export interface ModelFiles {
  /** model.safetensors (F32, F16 or BF16; Hugging Face or timm naming). */
  safetensors: Bytes;
  /** config.json (Hugging Face ViT/DeiT or timm hub config), bytes or text. */
  config?: Bytes | string;
  /** preprocessor_config.json (Hugging Face), bytes or text. */
  preprocessor?: Bytes | string;
  /** Name used in error messages. Default 'model.safetensors'. */
  name?: string;
  /** Number of attention heads when no config gives it. */
  heads?: number;
}

export type DatasetSpec =
  | { idxImages: Bytes; idxLabels: Bytes; imagesName?: string; labelsName?: string }
  | { files: { bytes: Bytes; name: string; label: string }[] };

export interface ModelInfo {
  naming: string; config: string; architecture: string; dtype: string; parameters: number;
  imageSize: [number, number]; channels: number; patchSize: number; hiddenSize: number; depth: number;
  heads: number; mlpDim: number; numClasses: number; labels: string[]; distillationToken: boolean;
  /** Canonical names of the Linear layers (weights), e.g. "blocks.0.mlp.fc1". */
  layers: string[];
  /** Names of the activation quantization points, e.g. "blocks.0.attn.probs". */
  points: string[];
  /** Some block has fewer heads or a narrower MLP than `heads` / `mlpDim` (model.prune(), or a pruned model's files). */
  pruned: boolean;
  /** Per transformer block: its heads and MLP width (all alike unless pruned). */
  blocks: BlockInfo[];
}

/** One transformer block's shape. */
export interface BlockInfo {
  /** Attention heads (of the model's `heads`). */
  heads: number;
  /** The heads removed, in the unpruned model's numbering (as config.json's `pruned_heads`); [] when none. */
  prunedHeads: number[];
  /** MLP hidden units (of the model's `mlpDim`). */
  mlpDim: number;
  /** Parameters of the block (qkv, proj, fc1, fc2 with biases, both LayerNorms). */
  parameters: number;
}

export interface EvalResult {
  top1: number; n: number; labels: string[];
  /** Accuracy per class (null for classes with no images). */
  perClass: (number | null)[];
  classCount: number[];
  worstClass: { label: string; index: number; accuracy: number } | null;
  /** confusion[true][predicted] */
  confusion: number[][];
}

export interface QuantizeOptions {
  /** Calibration images; `calibSize` of them are drawn with `seed`. */
  calib: Dataset;
  wbits?: number; abits?: number; softmaxBits?: number;
  weights?: 'uniform' | 'pow2';
  softmax?: 'sulq' | 'log2' | 'uniform';
  granularity?: 'channel' | 'tensor';
  weightRange?: RangeMethod; actRange?: RangeMethod;
  sulqRoundExponent?: boolean;
  /** Patch embedding and head at 8 bits (default true). */
  edges8bit?: boolean;
  /** RepQ-ViT: channel-wise post-LayerNorm scales folded into LayerNorm and the next Linear. */
  reparam?: boolean;
  calibSize?: number; seed?: number;
  /** Mixed precision: bit-widths per layer / per activation point. */
  layerBits?: Record<string, number>; pointBits?: Record<string, number>;
  /** Run Linears on the int8 integer path. */
  integer?: boolean;
  /** 'ptq' (the default): calibrate and round, synchronously. 'sos': see SosQuantizeOptions. */
  method?: 'ptq';
}

/**
 * SOS, I&S-ViT's three-stage smooth optimisation by block reconstruction (the same bits as `bitlens quantize
 * --method sos`): stage 1 reconstructs each block's activation quantizers (channel-wise after each LayerNorm)
 * against the FP32 block's output, stage 2 folds the channel-wise scales into LayerNorm and the next Linear,
 * stage 3 quantizes the weights and reconstructs each block again (weights, their steps and the activation
 * quantizers). Options are quantize()'s (`reparam` excepted: it is stage 2) plus:
 */
export interface SosQuantizeOptions extends Omit<QuantizeOptions, 'method' | 'reparam'> {
  method: 'sos';
  /** Adam iterations per block and stage (default 100; 0: no reconstruction). */
  reconIters?: number;
  /** Calibration images per iteration (default 16; at most `calibSize`). */
  reconBatch?: number;
}

/** Progress of an SOS run, after each iteration (and once before the first, with stage 0). */
export interface SosProgress {
  /** The stage (1 or 3) and block (0-based, of `blocks`) the last iteration worked on. */
  stage: number; block: number; blocks: number;
  /** Iterations done in that block, of `iters` (= reconIters). */
  iter: number; iters: number;
  /** Iterations done in the whole run, of `total` (2 × blocks × iters). */
  done: number; total: number;
  /** The last iteration's reconstruction MSE (null before the first). */
  loss: number | null;
  seconds: number;
  /** Blocks whose reconstruction just ended. */
  blockResults?: SosBlock[];
  /** Stages just completed (stage 0 in the first report when an evaluation set was given). */
  stageResults?: SosStage[];
}

export interface SosRunOptions {
  onProgress?: (p: SosProgress) => void;
  /** Stops the run between iterations (rejects with an AbortError); nothing is left allocated. */
  signal?: AbortSignal;
  /** Images each stage is evaluated on (stage 0 = PTQ with the same calibration draw, then 1, 2, 3). */
  evaluate?: Dataset | null;
  /** Iterations per event-loop turn (default 1). */
  step?: number;
}

/**
 * What a finished SOS stage leaves. With an evaluation set it carries EvalResult's fields (top1, perClass,
 * worstClass, …); without one only `stage` and `seconds`.
 */
export interface SosStage extends Partial<EvalResult> {
  /** 0: PTQ with the same draw (only with an evaluation set); 1: activations reconstructed, weights FP32;
   * 2: the same reparameterised (layer-wise quantizers); 3: the result. */
  stage: number;
  /** Since the run began. */
  seconds: number;
  /** Stage 2 with an evaluation set: the largest |logit change| against stage 1 (the fold keeps the function). */
  maxLogitChange?: number;
}

/** One block's reconstruction in stage 1 or 3: its output MSE against FP32 on the calibration images. */
export interface SosBlock { stage: number; block: number; mseBefore: number; mseAfter: number; seconds: number }

export class Dataset {
  /** Made by BitLens.loadDataset(). */
  private constructor();
  readonly size: number;
  readonly classes: string[];
  /** The images' size and colour: the most common among them (`mixed` when they differ); null for no images. */
  readonly shape: { width: number; height: number; channels: number; mixed: boolean } | null;
  /** The first `n` images (all when n ≥ size) as a new Dataset with the same classes. */
  head(n: number): Dataset;
  /** Image `index` as decoded (pixels row-major, channels interleaved) with its class name. */
  image(index: number): { width: number; height: number; channels: number; pixels: Uint8Array; label: string };
  delete(): void;
}

export class QuantizedModel {
  /** Made by Model.quantize() and the training methods. */
  protected constructor();
  /** The class names, index order (as Model.labels). */
  readonly labels: string[];
  readonly info: {
    config: Record<string, unknown>; modelBytes: number; bitsPerWeight: number; fp32Bytes: number; integerLayers: number;
    /** Attention matmuls running on integer codes (option `integer`): q·kᵀ of each block whose q and k are quantized
     *  uniformly, plus probs·v of each whose post-softmax quantizer is uniform too. */
    integerAttention: number;
    /** Blocks whose GELU runs on thresholds (option `integer`, fc2's input of ≤ 4 bits): fc1's int32 sums go straight
     *  to fc2's input codes, the same codes as GELU in float then fc2's quantizer. */
    integerGelu: number;
    /** The bit-width each layer's weights and each quantized activation point got. */
    layerBits: Record<string, number>; pointBits: Record<string, number>;
    /** Per transformer block: its heads and MLP width (a quantized pruned model's are smaller). */
    blocks: BlockInfo[];
  };
  evaluate(data: Dataset, options?: { limit?: number }): EvalResult;
  classify(image: Bytes, options?: { topK?: number; name?: string }): Prediction[];
  /** Logits for one preprocessed input (channels × height × width, normalised). */
  forwardRaw(input: Float32Array | number[]): Float32Array;
  /** Packed int4/int8 codes + scales in the original naming, the recipe in __metadata__ (loadModel reads it back). */
  exportSafetensors(): Uint8Array;
  /** The class token's attention to each patch (mean over heads) after quantization; `block` < 0 counts from the end. */
  attention(image: Bytes, options?: { block?: number; name?: string }): Float32Array;
  /** Every head's post-softmax attention matrix at `block` after quantization (as Model.attentionProbs). */
  attentionProbs(image: Bytes, options?: { block?: number; name?: string }): AttentionProbs;
  delete(): void;
}

export interface Prediction { index: number; label: string; probability: number; logit: number }

/** model.gradients(): d (mean cross-entropy) / d every parameter, in the checkpoint's own names and shapes. */
export interface Gradients {
  /** The mean cross-entropy over the images. */
  loss: number;
  images: number;
  /** Per tensor of the checkpoint (e.g. "vit.encoder.layer.0.attention.attention.query.weight"), row-major. */
  tensors: Record<string, Float32Array>;
  shapes: Record<string, number[]>;
  /** The same as F32 safetensors (loss and image count in __metadata__): the bytes `bitlens grad --out` writes. */
  safetensors: Uint8Array;
}

/** The training options qat() and inq() share. Defaults as `bitlens qat` and `bitlens inq`. */
export interface TrainOptions {
  /** Images per optimiser step (default 64). */
  batch?: number;
  /** Peak learning rate of AdamW, for the weights and the quantizers' steps (default 1e-4), with linear warm-up then cosine to `minLr` (default 0). */
  lr?: number; minLr?: number;
  /** Fraction of all steps spent warming up (default 0.1; INQ: of each partition step's). */
  warmup?: number;
  /** On weight matrices only (default 0). */
  weightDecay?: number;
  /** Global gradient-norm clip (default 1; 0: off). */
  clip?: number;
  /** Learn from the FP32 model's logits (KL at `temperature`, weight `distillWeight`; the rest is cross-entropy on the labels). Default true, 1, 0.5. */
  distill?: boolean; temperature?: number; distillWeight?: number;
  /** For the cross-entropy term (default 0). */
  labelSmoothing?: number;
  /** Fraction of the training images held out (seeded): QAT picks the best epoch on them (0: keeps the last), INQ reports each step on them (default 0.1). */
  valSplit?: number;
  /** Use only the first `limit` training images (default 0: all). */
  limit?: number;
}

/**
 * Quantization-aware training: quantize()'s options (without `calib`: the calibration images are drawn
 * from the training part with `seed`) and the training's. `seed` also seeds the validation split and each
 * epoch's order. Defaults as `bitlens qat`.
 */
export interface QatOptions extends Omit<QuantizeOptions, 'calib'>, TrainOptions {
  /** Passes over the training images (default 3). */
  epochs?: number;
  /**
   * QBitOpt: the bit-width of every layer's weights (patch embedding and head included) is allocated under this
   * average number of bits per weight (every weight counted; never exceeded) at the start and again every
   * `reallocEvery` steps, except in the last epoch, from Fisher-weighted sensitivities measured on the training
   * batches (`bitlens qat --budget`). Above 0, at most 8, at least the smallest candidate; `wbits` and `layerBits`
   * do not apply with it. Default: off (the bits as configured).
   */
  budget?: number;
  /** With `budget`: the activation points' bits too, under this average per activation value (`pointBits` does not apply then). */
  abudget?: number;
  /** With `budget`: 'worst' weighs each image's loss in the sensitivity passes by its class's share of the FP32 model's loss (default 'mean'). */
  objective?: 'mean' | 'worst';
  /** With `budget`: the bit-widths to choose from, distinct, 2–8 (default [2, 3, 4, 5, 6, 7, 8]). */
  candidates?: number[];
  /** With `budget`: training steps between allocations (default: a quarter epoch, rounded up). */
  reallocEvery?: number;
  /** With `budget`: batches of the training order each sensitivity estimate uses (default 8). */
  fisherBatches?: number;
  /** With `budget`: S ← decay·S_before + (1 − decay)·S_measured across allocations, in [0, 1) (0: each from its own batches; default as `bitlens qat`). */
  sensitivityDecay?: number;
}

/** QBitOpt: one allocation of bit-widths during a QAT run with a `budget`. */
export interface Allocation {
  /** The training step before which it took effect (0: the start). */
  step: number;
  /** Bits per layer (every Linear, by name as in `info.layers`). */
  layerBits: Record<string, number>;
  /** Bits per quantized activation point (by name as in `info.points`). */
  pointBits: Record<string, number>;
  /** Σ values·bits / Σ values over every layer's weights and over every quantized point's values per image. */
  avgWbits: number; avgAbits: number;
  /** Bits over all weights, and the budget's (⌊budget × weights⌋): weightCost ≤ weightBudget always. */
  weightCost: number; weightBudget: number;
  /** Bits per image over all quantized points, and the budget's (null without `abudget`). */
  actCost: number; actBudget: number | null;
  /** Layers and points whose bits differ from the allocation before. */
  changed: number;
}

/**
 * INQ: the weights become powers of two ({0, ±2^n}, `wbits` bits, per channel as PTQ fits them) in growing
 * partitions, the largest magnitudes of each layer first; between partitions the weights not yet frozen retrain.
 * The activations are quantized as quantize() fits them (calibration drawn from the training part with `seed`)
 * and learn their steps. `seed` also seeds the validation split and each epoch's order. Defaults as `bitlens inq`.
 */
export interface InqOptions extends Pick<QuantizeOptions, 'abits' | 'softmaxBits' | 'softmax' | 'granularity' | 'actRange' | 'sulqRoundExponent' | 'edges8bit' | 'calibSize' | 'seed' | 'integer'>, TrainOptions {
  /** Bits of the power-of-two weights, 2–8 (required). */
  wbits: number;
  /** Only 'pow2' (the default): INQ's levels. */
  weights?: 'pow2';
  /** Cumulative percentages of each layer's weights frozen after each step: increasing, ending at 100 (default [50, 75, 87.5, 100]). */
  partitions?: number[];
  /** Epochs of retraining after each partition but the last (default 1). */
  epochsPerStep?: number;
}

/** One evaluated epoch of a QAT run; epoch 0 is the PTQ starting point. */
export interface EpochStats {
  epoch: number;
  /** Optimiser steps in the epoch (0 for epoch 0). */
  steps: number;
  /** Mean training loss over the epoch (null for epoch 0). */
  trainLoss: number | null;
  /** Top-1 and the worst class on the held-out split (null without one). */
  valTop1: number | null;
  valWorstClass: { index: number; label: string; accuracy: number } | null;
  /** Learning rate at the epoch's last step. */
  lr: number;
  /** Since the run started (PTQ and the teacher's logits included). */
  seconds: number;
}

export interface QatProgress {
  /** The epoch in progress (0 before the first step), of `epochs`. */
  epoch: number; epochs: number;
  /** Optimiser steps done, of `steps` in the whole run. */
  step: number; steps: number;
  /** Running mean of the training loss over the epoch so far (null before the first step). */
  loss: number | null;
  seconds: number;
  /** Set when an epoch (or, first, the PTQ start) was just evaluated. */
  epochStats?: EpochStats;
  /** With a `budget`: set when the bits were just allocated (first with the PTQ start, step 0). */
  allocated?: Allocation;
}

export interface QatRunOptions {
  onProgress?: (p: QatProgress) => void;
  /** Stops the run between steps (rejects with an AbortError); nothing is left allocated. */
  signal?: AbortSignal;
  /** Also return the PTQ starting point as `ptq`. */
  keepPtq?: boolean;
}

/** One partition step of an INQ run; step 0 is PTQ (every weight at its level at once, no retraining). */
export interface InqStep {
  step: number;
  /** % of each layer's weights frozen (100 for step 0). */
  partition: number;
  /** Weights frozen in all. */
  frozen: number;
  /** Top-1 and the worst class's accuracy on the held-out split right after freezing, before retraining (null without a split). */
  frozenTop1: number | null; frozenWorst: number | null;
  /** After retraining (at 100%: the same as right after freezing). */
  valTop1: number | null;
  valWorstClass: { index: number; label: string; accuracy: number } | null;
  /** Optimiser steps of retraining (0 for step 0 and at 100%). */
  steps: number;
  /** Mean training loss over the step (null when it did not retrain). */
  trainLoss: number | null;
  /** Since the run started. */
  seconds: number;
}

export interface InqProgress {
  /** Partition steps finished, of `steps` (= partitions.length). */
  step: number; steps: number;
  /** Optimiser steps done, of `iterations` in the whole run. */
  iteration: number; iterations: number;
  /** Running mean of the training loss over the partition step (null before the first optimiser step and at 100%). */
  loss: number | null;
  seconds: number;
  /** Set when a partition step (or, first, the PTQ start) was just evaluated. */
  stepStats?: InqStep;
}

export interface InqRunOptions {
  onProgress?: (p: InqProgress) => void;
  /** Stops the run between steps (rejects with an AbortError); nothing is left allocated. */
  signal?: AbortSignal;
  /** Also return the PTQ starting point (step 0) as `ptq`. */
  keepPtq?: boolean;
}

/** The best epoch (by validation top-1; without a split, the last) of a QAT run, as a QuantizedModel. */
export class QatModel extends QuantizedModel {
  /** Epoch 0 (PTQ) first. */
  readonly history: EpochStats[];
  readonly bestEpoch: number;
  readonly trainImages: number; readonly valImages: number;
  /** The FP32 model on the held-out split (null without one): the reference for `history`. */
  readonly validationFp32: EvalResult | null;
  /** With `keepPtq`: the PTQ starting point (epoch 0). Freed by delete(). */
  readonly ptq: QuantizedModel | null;
  /** The kept model's average bits per weight (every layer; without the scales) and per activation value (every quantized point). */
  readonly avgWbits: number; readonly avgAbits: number;
  /** With a `budget` (else null): the budget as the run used it (`activations`: null without `abudget`). */
  readonly budget: { weights: number; activations: number | null; objective: 'mean' | 'worst'; candidates: number[]; fisherBatches: number; sensitivityDecay: number } | null;
  /** With a `budget`: every allocation of the run, the start's first (empty without one). */
  readonly allocations: Allocation[];
  /** With a `budget`: the index in `allocations` of the kept model's (in force at the end of the best epoch); else null. */
  readonly keptAllocation: number | null;
}

/** The result of an INQ run: every weight a power of two, as a QuantizedModel, with the run's partition steps. */
export class InqModel extends QuantizedModel {
  /** Step 0 (PTQ) first. */
  readonly history: InqStep[];
  readonly partitions: number[];
  readonly trainImages: number; readonly valImages: number;
  /** The FP32 model on the held-out split (null without one): the reference for `history`. */
  readonly validationFp32: EvalResult | null;
  /** With `keepPtq`: the PTQ starting point (step 0). Freed by delete(). */
  readonly ptq: QuantizedModel | null;
}

/**
 * Structured pruning (model.prune()): which heads and MLP units each block keeps, how they are ranked, and the
 * recovery's training (TrainOptions, as `bitlens prune`'s; `seed` seeds the split, and each epoch's order).
 * `keepHeads` and/or `keepMlp` is required. Defaults as `bitlens prune`.
 */
export interface PruneOptions extends TrainOptions {
  /** The fraction of each block's attention heads kept, in (0, 1] (default 1): round(fraction × heads), at least one. */
  keepHeads?: number;
  /** The fraction of each block's MLP hidden units kept, in (0, 1] (default 1): round(fraction × units), at least one. */
  keepMlp?: number;
  /**
   * How heads and units are ranked (default 'taylor'): 'taylor' = mean |Σ context · ∂loss/∂context| over a head's
   * columns (a unit's GELU output), one forward and backward per image; 'mask' = the mean increase of the loss when
   * it is zeroed, one forward per image and per head and unit (slow on wide MLPs).
   */
  importance?: 'taylor' | 'mask';
  /** The first N images of the training part the importance is measured on (default 2048; 0: all of them). */
  importanceImages?: number;
  /** Recovery epochs (default 2; 0: none, the pruned model as it is). */
  epochs?: number;
  /**
   * Recover by distillation from this (unpruned) model: distillWeight·KL(logits at `temperature`) +
   * (1 − distillWeight)·cross-entropy + featureWeight·MSE of the first `featureBlocks` blocks' outputs. Default
   * **false**, as `bitlens prune` (its `--distill`): fine-tuning on the labels alone.
   */
  distill?: boolean;
  /** With `distill`: the weight of the block-output MSE (default 0.1; 0: none). */
  featureWeight?: number;
  /** With `distill`: how many of the first blocks' outputs are matched (default -1: the first half, rounded up; 0: none). */
  featureBlocks?: number;
  /** Peak learning rate (default 5e-4). */
  lr?: number;
  /** Seeds the held-out split and each epoch's order (default 0). */
  seed?: number;
}

export interface PruneRunOptions {
  /** Progress as QAT reports it: epoch 0 (the pruned model, before recovery) first, then every optimiser step. */
  onProgress?: (p: QatProgress) => void;
  /** Stops the run between steps (rejects with an AbortError); nothing is left allocated. */
  signal?: AbortSignal;
  /** Also return the pruned model before recovery as `beforeRecovery`. */
  keepPruned?: boolean;
}

/** The result of model.quantize({ method: 'sos' }): stage 3's model, with the run's stages and blocks. */
export class SosModel extends QuantizedModel {
  readonly stages: SosStage[];
  readonly blocks: SosBlock[];
}

export class Model {
  /** Made by BitLens.loadModel() (and Model.prune()). */
  protected constructor();
  readonly info: ModelInfo;
  readonly labels: string[];
  evaluate(data: Dataset, options?: { limit?: number }): EvalResult;
  classify(image: Bytes, options?: { topK?: number; name?: string }): Prediction[];
  /** Post-training quantization, synchronously. */
  quantize(options: QuantizeOptions): QuantizedModel;
  /**
   * SOS block reconstruction, one iteration per event-loop turn. Bad options throw a TypeError / RangeError
   * naming the option (an unknown method synchronously, like PTQ's errors).
   */
  quantize(options: SosQuantizeOptions, run?: SosRunOptions): Promise<SosModel>;
  /** Gradients of the mean cross-entropy over the first `limit` images (0: all) w.r.t. every parameter. */
  gradients(data: Dataset, options?: { limit?: number }): Gradients;
  /**
   * Quantization-aware training from the PTQ result, on `train` (labelled images; a `valSplit` of them held
   * out), one optimiser step per event-loop turn. With `budget` (QBitOpt) the bits are reallocated during
   * training. Bad options throw a TypeError / RangeError naming the field.
   */
  qat(train: Dataset, options?: QatOptions, run?: QatRunOptions): Promise<QatModel>;
  /**
   * INQ from this FP32 model on `train` (a `valSplit` of them held out), one optimiser step per event-loop turn.
   * Bad options (partitions not increasing, not ending at 100, `wbits` outside 2–8, other weights than 'pow2')
   * throw a TypeError / RangeError naming the option.
   */
  inq(train: Dataset, options: InqOptions, run?: InqRunOptions): Promise<InqModel>;
  /**
   * Structured pruning: removes the least important attention heads and MLP units of every block for real (smaller
   * matrices, faster forwards), then recovers by fine-tuning (or distillation from this model) on `train` minus a
   * held-out `valSplit`, one optimiser step per event-loop turn; the same numbers as `bitlens prune`. Bad options throw
   * a TypeError / RangeError naming the option (a fraction that would leave a block no head or unit too).
   */
  prune(train: Dataset, options: PruneOptions, run?: PruneRunOptions): Promise<PrunedModel>;
  /**
   * The FP32 model as a model directory's files: safetensors (F32, in the checkpoint's naming), config.json's text
   * (a pruned model's records `pruned_heads` and `bitlens_mlp_dims`) and preprocessor_config.json's ('' for a file
   * it was loaded without). loadModel() and `bitlens --model DIR` read them back to the same model. A model loaded
   * from a quantized export throws. (A QuantizedModel made from a pruned model exports its weights with
   * exportSafetensors(); its config.json is the pruned model's exportConfig().)
   */
  exportFiles(): { safetensors: Uint8Array; config: string; preprocessor: string };
  /** exportFiles().safetensors */
  exportSafetensors(): Uint8Array;
  /** exportFiles().config */
  exportConfig(): string;
  /** Logits for one preprocessed input (channels × height × width, normalised). */
  forwardRaw(input: Float32Array | number[]): Float32Array;
  /** One encoded image as the model sees it (decoded, resized/cropped, normalised): channels × height × width; forwardRaw takes it. */
  preprocess(image: Bytes, options?: { name?: string }): Float32Array;
  /** The FP32 weight [out × in] of a layer named in `info.layers`. */
  weight(name: string): Float32Array;
  /** The class token's attention to each patch (grid rows × cols, mean over heads); `block` < 0 counts from the end. */
  attention(image: Bytes, options?: { block?: number; name?: string }): Float32Array;
  /** Every head's post-softmax attention matrix at `block` (< 0 counts from the end), heads × tokens × tokens. */
  attentionProbs(image: Bytes, options?: { block?: number; name?: string }): AttentionProbs;
  delete(): void;
}

/**
 * What model.prune() returns: the pruned FP32 model (the best recovery epoch by held-out top-1; with `epochs: 0`, the
 * pruned model itself) — a full Model — with the run's record.
 */
export class PrunedModel extends Model {
  /** Epoch 0 (pruned, before recovery) first. */
  readonly history: EpochStats[];
  readonly bestEpoch: number;
  /** The importance scores the ranking used, per block: of each of the input model's heads and MLP units (`bitlens prune --json`'s `importance`). */
  readonly importance: { method: 'taylor' | 'mask'; images: number; heads: number[][]; units: number[][] };
  /** Per block, the heads and MLP units kept (ascending, in the input model's current numbering). */
  readonly keptHeads: number[][]; readonly keptUnits: number[][];
  /** Per block, its shape after pruning (as info.blocks). */
  readonly layers: BlockInfo[];
  /** Parameters of the input model and of the pruned one. */
  readonly parametersBefore: number; readonly parameters: number;
  readonly trainImages: number; readonly valImages: number;
  /** The unpruned model on the held-out split (null without one): the reference for `history`. */
  readonly validationFp32: EvalResult | null;
  /** With `keepPruned`: the pruned model before recovery (epoch 0). Freed by delete(). */
  readonly beforeRecovery: Model | null;
}

export interface QuantizeTensorOptions {
  quantizer?: QuantizerName; bits?: number; symmetric?: boolean; range?: RangeMethod; roundExponent?: boolean;
}
export interface QuantizeTensorResult {
  values: Float32Array;
  levels: Float32Array;
  params: { quantizer: QuantizerName; bits: number; scale: number; zero: number; eta: number; n1: number; n2: number; mse: number };
}

export type Corruption = string | { type: 'noise' | 'blur' | 'brightness' | 'contrast'; severity: 1 | 2 | 3 | 4 | 5 };

export interface SweepSpec {
  model: Model;
  /** Evaluation images. */
  data: Dataset;
  /** Calibration pool: each seed draws `calibSize` images from it. */
  calib: Dataset;
  /** Quantization configs (as QuantizeOptions or SosQuantizeOptions without calib) or strings like "w4a4". */
  configs: (Omit<QuantizeOptions, 'calib' | 'integer'> | Omit<SosQuantizeOptions, 'calib' | 'integer'> | string)[];
  seeds?: number; firstSeed?: number; calibSize?: number;
  /** Draw calibration images only from these classes (indices or labels). */
  calibClasses?: (number | string)[];
  /** 0: uniform draw; in (0, 1]: classes weighted 1, ρ, ρ², … in a seeded order. */
  calibSkew?: number;
  calibCorrupt?: Corruption; evalCorrupt?: Corruption;
  /** Groups of classes reported like classes: "tops=0,2,4,6;shoes=5,7,9" or [{name, classes}]. */
  groups?: string | { name: string; classes: (number | string)[] }[];
  /** Evaluate on the first N images only. */
  limit?: number;
  /**
   * Run only part `index` of `count` (numbered from 1; or 'I/N') of the (configuration × seed) runs: run i
   * (configuration index × seeds + seed index) belongs to part (i mod count) + 1. sweep() then returns a SweepPart.
   */
  shard?: { index: number; count: number } | string;
}

/**
 * A part of a sweep as plain JSON, exactly as `bitlens sweep --shard I/N --json` writes it (so parts from JS and from
 * the CLI merge together): what it is a part of (hashes of the model and the data, the spec), the seed-independent
 * results (calibration draws, FP32 reference) and each of its runs' results. Structured-cloneable (workers).
 */
export interface SweepPart {
  bitlens_sweep_part: number;
  part: { index: number; count: number; total_runs: number; runs: number[] };
  model: { tensors: string; config: string; path: string };
  data: { eval: { fnv1a64: string; path: string }; calib: { fnv1a64: string; path: string } };
  runs: { index: number; config: number; name: string; seed: number; model_bytes: number; top1: number; per_class: (number | null)[]; confusion: number[][] }[];
  [field: string]: unknown;
}

export interface SweepConfigResult {
  name: string; config: Record<string, unknown>; modelBytes: number;
  top1Mean: number; top1Std: number; top1Min: number; top1Max: number; top1Drop: number;
  perClassMean: (number | null)[]; perClassMin: (number | null)[]; perClassMax: (number | null)[];
  /** Lowest mean per-class accuracy, and its drop from FP32. */
  worstClass: { index: number; label: string; accuracy: number; drop: number };
  /** Lowest per-class accuracy over every seed and class, with the seed that produced it. */
  worstCase: { index: number; label: string; accuracy: number; drop: number; seed: number };
  largestDrop: { index: number; label: string; drop: number };
  largestSeedDrop: { index: number; label: string; drop: number; seed: number };
  groups: unknown[];
  seeds: { seed: number; top1: number; perClass: (number | null)[]; confusion: number[][] }[];
}

export interface SweepResult {
  labels: string[]; classCount: number[]; evalN: number; seeds: number[];
  fp32: { top1: number; perClass: (number | null)[]; worstClass: string; confusion: number[][]; groups: unknown[] };
  configs: SweepConfigResult[];
  /** With `evalCorrupt`: the FP32 model's top-1 on the clean evaluation set (else undefined). */
  fp32CleanTop1?: number;
  /** Per seed: the calibration images drawn (indices into `calib`) and how many of each class. */
  calibration: { seed: number; indices: number[]; class_counts: number[] }[];
  /** The C++ JSON as written by `bitlens sweep --json`. */
  raw: unknown;
}

/** Quantizer choices of QuantizeOptions (bit-widths excepted) plus what the measurement needs. */
export interface SensitivitySpec extends Omit<QuantizeOptions, 'calib' | 'integer' | 'wbits' | 'abits' | 'layerBits' | 'pointBits'> {
  model: Model;
  /** The pool the sensitivity images are drawn from (with `seed`). */
  calib: Dataset;
  /** 'worst' weights each class by its share of the FP32 loss, so the plan protects hard classes. Default 'mean'. */
  objective?: 'mean' | 'worst';
  /** Candidate bit-widths per layer and point (default 2–8). */
  candidates?: number[];
  /** Images the KL divergence is averaged over (default 64). */
  sensSize?: number;
}

/** One layer (weights) or activation point: its size and the mean KL divergence at each candidate bit-width. */
export interface SensitivityItem { name: string; values: number; candidates: number[]; sensitivity: number[] }

export interface Sensitivities {
  objective: 'mean' | 'worst'; candidates: number[]; sensSize: number; seed: number;
  weights: SensitivityItem[];
  activations: SensitivityItem[];
  /** Exported data bytes of the FP32 tensors (tokens, norms, biases). */
  fixedBytes: number;
  /** Per layer and candidate: the bytes of its codes and scales at that bit-width. */
  weightBytes: number[][];
}

export interface MixedPlan {
  /** Each item with its chosen `bits`. */
  layers: (SensitivityItem & { bits: number })[];
  points: (SensitivityItem & { bits: number })[];
  /** For QuantizeOptions / sweep configurations. */
  layerBits: Record<string, number>;
  pointBits: Record<string, number>;
  /** Budget used: average bits per weight / per activation value (never above the budget). */
  weightBitsAvg: number; actBitsAvg: number;
  /** Used and allowed: weights Σ count × bits (with `maxBytes`: their bytes), activations bits per image. */
  weightCost: number; weightBudget: number; actCost: number; actBudget: number;
  /** The quantized model's size with this plan (as QuantizedModel.info.modelBytes). */
  modelBytes: number;
}

export interface BitLens {
  /** The instruction set this instance runs (see CreateOptions.backend). */
  readonly backend: Backend;
  /** Mixed precision, step 1: per-layer and per-point sensitivities, one step per event-loop turn; cancellable. */
  sensitivities(spec: SensitivitySpec, options?: { onProgress?: (p: { done: number; total: number }) => void; signal?: AbortSignal }): Promise<Sensitivities>;
  /**
   * Mixed precision, step 2: the exact allocation with the weights held to an average bit-width
   * (`budget`) or the whole model to a size (`maxBytes`); activations to `abudget` (default `budget`, or 8
   * with `maxBytes`). Throws when infeasible, naming the smallest possible size.
   */
  planMixed(sens: Sensitivities, budgets: { budget: number; maxBytes?: never; abudget?: number } | { maxBytes: number; budget?: never; abudget?: number }): MixedPlan;
  /** Runs one (config, seed) per event-loop turn; rejects with an AbortError when `signal` fires. */
  sweep(spec: SweepSpec & { shard?: undefined }, options?: { onProgress?: (p: { done: number; total: number }) => void; signal?: AbortSignal }): Promise<SweepResult>;
  /** One part of the sweep (`shard`): only its runs, `onProgress` over them. */
  sweep(spec: SweepSpec & { shard: { index: number; count: number } | string }, options?: { onProgress?: (p: { done: number; total: number }) => void; signal?: AbortSignal }): Promise<SweepPart>;
  /**
   * Every part of one sweep, in any order → the unsharded sweep's result (statistics recomputed from the runs: the
   * same numbers). Throws naming the difference for parts of different sweeps, and parts missing or given twice.
   */
  mergeSweeps(parts: SweepPart[]): SweepResult;
  loadModel(files: ModelFiles): Model;
  loadDataset(spec: DatasetSpec): Dataset;
  quantizeTensor(values: Float32Array | number[], options?: QuantizeTensorOptions): QuantizeTensorResult;
  /** The extensions of an image folder's images ('.png', '.jpg', '.jpeg', '.bmp', '.gif'): what the CLI reads from a folder. */
  readonly imageExtensions: string[];
  /** The size limits BitLens checks input against (src/base/size_limits.h). */
  readonly limits: Readonly<{ imageSide: number; imagePixels: number; datasetImages: number; datasetBytes: number; decompressedBytes: number }>;
  /**
   * The model's class index of each dataset class name, by the rule every evaluation applies: the label's name
   * (case-insensitive), or a number k for class k; a model with generic labels takes the names in their order. Throws
   * the evaluation's error for a name that is no class of the model. A name matching no label as written matches the one
   * label equal to it in letters and digits (case-insensitive), so 'T-shirt_top' is 'T-shirt/top'.
   */
  classIndices(model: Model, names: string[]): number[];
  /**
   * Checks a sweep's spec as sweep() does (and its first calibration draw from `calib`) without running it: throws
   * sweep()'s Error (e.g. "sweep: 'seeds' must be an integer from 1 to 100000, found 0"). Returns the spec as recorded.
   */
  checkSweep(spec: SweepSpec): Record<string, unknown>;
  /**
   * Checks model.qat()'s, model.inq()'s or model.prune()'s options as the run does before any work (checkTrainingOptions,
   * then the quantization settings in C++): throws the run's Error, without training images.
   */
  checkTraining(model: Model, kind: 'qat', options: QatOptions): void;
  checkTraining(model: Model, kind: 'inq', options: InqOptions): void;
  checkTraining(model: Model, kind: 'prune', options: PruneOptions): void;
  /** SOS reconstruction: model.quantize({ method: 'sos', ... })'s options but `calib`. */
  checkTraining(model: Model, kind: 'sos', options: Omit<QuantizeOptions, 'calib'>): void;
  /** An encoded image's format, size and channels from its header (no pixels decoded), or null when it is no image BitLens reads. */
  imageInfo(bytes: Bytes): ImageInfo | null;
  /**
   * A sweep's per-seed, per-class and per-group accuracies as the CSV `bitlens sweep --csv` writes
   * (config,seed,kind,index,name,images,accuracy,fp32,drop), from sweep()'s or mergeSweeps()'s result or the parsed
   * JSON of `bitlens sweep --json`.
   */
  sweepCsv(result: SweepResult | Record<string, unknown>): string;
}

/** Model.attentionProbs(): every head's attention matrix, row-major [heads × tokens × tokens]. */
export interface AttentionProbs {
  values: Float32Array;
  heads: number;
  tokens: number;
}
/** BitLens.imageInfo(): what an image's header says. */
export interface ImageInfo {
  format: 'PNG' | 'JPEG' | 'BMP' | 'GIF';
  width: number;
  height: number;
  /** 1 for grey (with or without alpha), 3 for colour. */
  channels: number;
}

/**
 * Checks model.qat()'s, model.inq()'s or model.prune()'s options as the call does in JavaScript (same limits, same Error),
 * without a model or WASM; the quantization settings (bit-widths, calibration size) are checked in C++: BitLens.checkTraining
 * checks everything. `blocks`: the model's info.blocks, for prune's fractions.
 */
export function checkTrainingOptions(kind: 'qat', options: QatOptions): void;
export function checkTrainingOptions(kind: 'inq', options: InqOptions): void;
export function checkTrainingOptions(kind: 'prune', options: PruneOptions, model: { blocks: ModelInfo['blocks'] }): void;
export function checkTrainingOptions(kind: 'sos', options: Omit<QuantizeOptions, 'calib'>): void;
export function createBitLens(options?: CreateOptions): Promise<BitLens>;
export default createBitLens;
