// createBitLensWorker() in Chromium (issue 20, item 3): the package's API in a Web Worker gives the numbers the same
// calls give on the main thread, reports progress, cancels by AbortSignal (a message to the worker), passes errors
// as the same Error classes and messages, and leaves the page's thread free while it works.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missingPrerequisites, openPage } from './helpers.mjs';

const missing = missingPrerequisites();

test('createBitLensWorker: same numbers as the main thread, progress, cancel, errors, stand-ins', { skip: missing.length ? `missing: ${missing.join(', ')}` : false, timeout: 600_000 }, async () => {
  const problems = [];
  const { origin, page, close } = await openPage(problems);
  try {
    await page.goto(`${origin}/`);
    const r = await page.evaluate(async () => {
      const { createBitLensWorker } = await import('/web/bitlens-remote.js');
      const { createBitLens } = await import('/web/bitlens.js');
      const bytes = async (p) => new Uint8Array(await (await fetch(p)).arrayBuffer());
      const files = {
        safetensors: await bytes('/models/vit-fmnist-hf/model.safetensors'),
        config: await (await fetch('/models/vit-fmnist-hf/config.json')).text(),
      };
      const idx = {
        idxImages: await bytes('/models/data/fmnist-test-1k-images-idx3-ubyte.gz'),
        idxLabels: await bytes('/models/data/fmnist-test-1k-labels-idx1-ubyte.gz'),
      };
      const out = {};
      const errorOf = async (p) => { try { await p; return null; } catch (e) { return { cls: e.constructor.name, name: e.name, message: e.message }; } };

      const w = await createBitLensWorker();
      const model = await w.loadModel(files);
      const data = await w.loadDataset(idx);
      out.kind = [model.kind, data.kind];
      out.numClasses = model.info.numClasses;
      out.labels = model.labels.length;
      out.size = data.size;
      out.evaluate = await model.evaluate(data, { limit: 300 });
      const spec = { configs: ['w4a4', 'w3a3'], seeds: 2, calibSize: 16, limit: 300 };
      const progress = [];
      let ticks = 0;
      const timer = setInterval(() => { ticks++; }, 5);
      out.sweep = (await w.sweep({ model, data, calib: data, ...spec }, { onProgress: (p) => progress.push(p.done) })).raw;
      clearInterval(timer);
      out.progress = progress;
      out.ticks = ticks;
      const q = await model.quantize({ calib: data, wbits: 4, abits: 4, calibSize: 16 });
      out.qKind = q.kind;
      out.qEval = await q.evaluate(data, { limit: 300 });
      const png = await (await fetch('/models/vit-fmnist-hf/config.json')).text();  // not an image: an error below
      out.badImage = await errorOf(q.classify(new TextEncoder().encode(png)));
      out.badType = await errorOf(w.loadModel({ ...files, safetensors: 5 }));
      out.badRange = await errorOf(model.evaluate(data, { limit: -1 }));
      // Cancel: the worker's sweep stops between two runs, and the worker keeps working.
      const ac = new AbortController();
      let seen = 0;
      out.cancelled = await errorOf(w.sweep({ model, data, calib: data, configs: ['w8a8', 'w4a4'], seeds: 4, calibSize: 8, limit: 100 },
        { signal: ac.signal, onProgress: ({ done }) => { seen = done; if (done === 2) ac.abort(); } }));
      out.seenAtCancel = seen;
      // QAT keeps its PTQ start: a stand-in inside a stand-in.
      const t = await model.qat(data, { wbits: 4, abits: 4, calibSize: 8, epochs: 1, batch: 32, limit: 64, valSplit: 0 }, { keepPtq: true });
      out.qat = { kind: t.kind, ptqKind: t.ptq.kind, history: t.history.length, ptqEval: (await t.ptq.evaluate(data, { limit: 50 })).n };
      await t.delete();
      await q.delete();
      out.afterDelete = await errorOf(q.evaluate(data));
      out.afterDeleteSync = await errorOf((async () => q.classify(new Uint8Array(4)))());

      // The same calls on the main thread.
      const bl = await createBitLens();
      const m2 = bl.loadModel(files);
      const d2 = bl.loadDataset(idx);
      out.mainEvaluate = m2.evaluate(d2, { limit: 300 });
      out.mainSweep = (await bl.sweep({ model: m2, data: d2, calib: d2, ...spec })).raw;
      const q2 = m2.quantize({ calib: d2, wbits: 4, abits: 4, calibSize: 16 });
      out.mainQEval = q2.evaluate(d2, { limit: 300 });
      out.mainBadRange = await errorOf((async () => m2.evaluate(d2, { limit: -1 }))());
      for (const o of [q2, m2, d2]) o.delete();
      await model.delete();
      await data.delete();
      w.terminate();
      out.afterTerminate = await errorOf(w.loadDataset(idx));
      return out;
    });
    assert.deepEqual(r.kind, ['Model', 'Dataset']);
    assert.equal(r.numClasses, 10);
    assert.equal(r.labels, 10);
    assert.equal(r.size, 1000);
    assert.deepEqual(r.evaluate, r.mainEvaluate);
    assert.deepEqual(r.sweep, r.mainSweep);
    assert.deepEqual(r.progress, [0, 1, 2, 3, 4]);
    assert.ok(r.ticks >= 10, `the page's thread ran ${r.ticks} timer callbacks during the worker's sweep`);
    assert.equal(r.qKind, 'QuantizedModel');
    assert.deepEqual(r.qEval, r.mainQEval);
    assert.equal(r.badImage.cls, 'Error');
    assert.match(r.badImage.message, /image/);
    assert.deepEqual(r.badType, { cls: 'TypeError', name: 'TypeError', message: 'loadModel: safetensors: expected a Uint8Array or ArrayBuffer, got number' });
    assert.deepEqual(r.badRange, r.mainBadRange);
    assert.equal(r.badRange.cls, 'RangeError');
    assert.equal(r.cancelled.name, 'AbortError');
    // The abort message reaches the worker a step or so after the page saw step 2; the 8 runs did not all happen.
    assert.ok(r.seenAtCancel >= 2 && r.seenAtCancel < 8, `cancelled after ${r.seenAtCancel} of 8 runs`);
    assert.deepEqual(r.qat, { kind: 'QatModel', ptqKind: 'QuantizedModel', history: 2, ptqEval: 50 });
    assert.equal(r.afterDelete.message, 'QuantizedModel: used after delete()');
    assert.equal(r.afterDeleteSync.message, 'QuantizedModel: used after delete()');
    assert.equal(r.afterTerminate.message, 'BitLens worker: terminated');
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});
