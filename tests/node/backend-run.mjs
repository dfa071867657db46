// One model run for comparing backends (tests/node/backends.test.mjs): FP32 evaluation, and W4A4 integer, W8A8 and
// W3A3 SULQ (simulated) evaluations with raw logits bits of 8 fixed inputs. Run as a script (by that test, in a Node
// whose V8 has SIMD switched off) it loads the package with no backend asked for and prints what it got as JSON.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createBitLens, simdSupported } from '../../web/bitlens.js';
import { path, modelFiles, defaultData } from './helpers.mjs';

export async function runModel(backend) {
  const bl = await createBitLens(backend ? { backend } : {});
  const model = bl.loadModel(modelFiles('models/vit-fmnist-hf'));
  const data = bl.loadDataset(defaultData());
  const inputs = Array.from({ length: 8 }, (_, i) => Float32Array.from({ length: 784 }, (_, j) => Math.sin(i * 784 + j)));
  const out = { backend: bl.backend, fp32: model.evaluate(data, { limit: 200 }), runs: [] };
  for (const c of [{ wbits: 4, abits: 4, integer: true }, { wbits: 8, abits: 8 }, { wbits: 3, abits: 3, softmax: 'sulq' }]) {
    const q = model.quantize({ calib: data, calibSize: 8, seed: 1, ...c });
    out.runs.push({ evaluate: q.evaluate(data, { limit: 200 }), logits: inputs.map((x) => Array.from(new Uint32Array(q.forwardRaw(x).buffer))) });
    q.delete();
  }
  model.delete();
  data.delete();
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const report = {
    simdSupported: simdSupported(),
    coreValidates: WebAssembly.validate(readFileSync(path('web/lib/bitlens-core.wasm'))),  // the SIMD128 module itself
  };
  try {
    await createBitLens({ backend: 'simd128' });
    report.simd128 = 'loaded';
  } catch (e) {
    report.simd128 = e.message;
  }
  Object.assign(report, await runModel());
  process.stdout.write(JSON.stringify(report));
}
