// The public types under `tsc --strict` (tests/node/package.test.mjs runs it): what a user writes compiles,
// and each @ts-expect-error line is a call that must not.
import { createBitLens, Model, Dataset, QuantizedModel } from 'bitlens';
import type { MixedPlan, SweepResult, Sensitivities } from 'bitlens';

export async function uses(bytes: Uint8Array, sens: Sensitivities, sweep: SweepResult): Promise<void> {
  const bl = await createBitLens({ wasmPaths: '/assets/' });
  await createBitLens({ wasmPaths: { 'bitlens-core.wasm': 'https://cdn.example/bitlens-core.wasm' } });
  await createBitLens({ wasmBinary: bytes });
  const fallback = await createBitLens({ backend: 'simd128' });
  const backend: 'relaxed-simd' | 'simd128' | 'scalar' = fallback.backend;
  await createBitLens({ backend: 'scalar', wasmPaths: { 'bitlens-core.wasm': '/a/c.wasm', 'bitlens-core-scalar.wasm': '/a/s.wasm', 'bitlens-relaxed.wasm': '/a/r.wasm' } });
  void backend;
  const model: Model = bl.loadModel({ safetensors: bytes, config: '{}', preprocessor: '{}' });
  const data: Dataset = bl.loadDataset({ idxImages: bytes, idxLabels: bytes });
  const q: QuantizedModel = model.quantize({ calib: data, wbits: 4, abits: 4 });
  const labels: string[] = q.labels;
  const plan: MixedPlan = bl.planMixed(sens, { budget: 4 });
  bl.planMixed(sens, { maxBytes: 90_000, abudget: 8 });
  const clean: number | undefined = sweep.fp32CleanTop1;
  const drawn: number[] = sweep.calibration[0].indices;
  void [labels, plan, clean, drawn];
  // What the demo page asks the library: the CLI's CSV, class matching, a sweep's checks, a dataset's images.
  const csv: string = bl.sweepCsv(sweep);
  const classes: number[] = bl.classIndices(model, data.classes);
  bl.checkSweep({ model, data, calib: data, configs: ['w4a4'], seeds: 5 });
  const first: Dataset = data.head(10);
  const pixels: Uint8Array = data.image(0).pixels;
  const exts: string[] = bl.imageExtensions;
  void [csv, classes, first, pixels, exts];

  // @ts-expect-error the backends are 'relaxed-simd', 'simd128' and 'scalar'
  await createBitLens({ backend: 'avx2' });
  // @ts-expect-error a Model is made by loadModel(), not new
  new Model();
  // @ts-expect-error a Dataset is made by loadDataset()
  new Dataset();
  // @ts-expect-error a QuantizedModel is made by quantize()
  new QuantizedModel();
  // @ts-expect-error budget and maxBytes exclude each other
  bl.planMixed(sens, { budget: 4, maxBytes: 90_000 });
  // @ts-expect-error one of them is needed
  bl.planMixed(sens, { abudget: 4 });
  // @ts-expect-error wasmPaths names the file it maps
  await createBitLens({ wasmPaths: { 'other.wasm': '/x.wasm' } });
  // @ts-expect-error wasmPaths is a string or a map
  await createBitLens({ wasmPaths: 3 });
}

// createBitLensWorker (bitlens/worker): the same calls, each a Promise, the worker's objects as stand-ins.
import { createBitLensWorker } from 'bitlens/worker';
import type { Remote, RemoteModel } from 'bitlens/worker';
import type { EvalResult } from 'bitlens';

export async function usesWorker(bytes: Uint8Array, signal: AbortSignal): Promise<void> {
  const w = await createBitLensWorker({ wasmPaths: '/assets/' });
  const model: RemoteModel = await w.loadModel({ safetensors: bytes, config: '{}' });
  const data: Remote<Dataset> = await w.loadDataset({ idxImages: bytes, idxLabels: bytes });
  const size: number = data.size;
  const r: EvalResult = await model.evaluate(data, { limit: 100 });
  const q: Remote<QuantizedModel> = await model.quantize({ calib: data, wbits: 4, abits: 4 });
  const labels: string[] = q.labels;
  const s: SweepResult = await w.sweep({ model, data, calib: data, configs: ['w4a4'] }, { onProgress: ({ done }) => void done, signal });
  await q.delete();
  const csv: string = await w.sweepCsv(s);
  const extended = await createBitLensWorker({ methods: ['page:sweep'] });
  w.terminate();
  void [size, r, labels, s, csv, extended];

  // @ts-expect-error a call in the worker is a Promise, not its value
  const top1: number = model.evaluate(data).top1;
  // @ts-expect-error the stand-in's data is read-only
  model.info = model.info;
  // @ts-expect-error locateFile is a function: it cannot be posted to a worker
  await createBitLensWorker({ locateFile: (p: string) => p });
  void top1;
}
