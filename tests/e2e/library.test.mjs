// The page asks the library (issue 18 item 6; issue 20 item 3): the page's answers are the package's — its worker is
// the package's worker helper — and so the CLI's: a class folder the model lacks is refused with the library's message,
// a sweep's limit is the library's with its message, and the results CSV is `bitlens sweep --csv`'s schema, byte for
// byte what bl.sweepCsv gives for the same sweep in Node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { MODEL_DIR, classFolderImages, missingPrerequisites, openPage } from './helpers.mjs';
import { defaultData, loadBitLens, modelFiles } from '../node/helpers.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (library)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else if (process.env.BITLENS_E2E_MODEL) {
  test('library: written for the shipped Hugging Face ViT', { skip: 'BITLENS_E2E_MODEL is set to another model' }, () => {});
} else {
  describe('demo page: the library\'s answers', { timeout: 240_000 }, () => {
    let origin, page, close, bl, model, data;
    const problems = [];
    const visibleText = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent.trim()));
    const waitIdle = () => page.waitForFunction(() => !document.getElementById('run-btn').disabled, null, { timeout: 90_000, polling: 100 });
    const setField = async (id, value) => { await page.fill(`#${id}`, String(value)); await page.dispatchEvent(`#${id}`, 'change'); };

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
      origin = origin.replace(/\/$/, '');
      bl = await loadBitLens();
      model = bl.loadModel(modelFiles(MODEL_DIR.slice(MODEL_DIR.indexOf('models/'))));
      data = bl.loadDataset(defaultData());
      await page.goto(`${origin}/?configs=w8a8,w4a4&seeds=2&calib=8&limit=100&groups=${encodeURIComponent('tops=0,2,4,6;shoes=5,7,9')}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 90_000 });
    });
    after(async () => { await close?.(); });

    test('the page runs on the package\'s worker helper (web/page/worker.js extends web/bitlens-worker.js)', async () => {
      const src = await (await fetch(`${origin}/web/page/worker.js`)).text();
      assert.match(src, /import \{ extendWorker \} from '\.\.\/bitlens-worker\.js'/);
      const js = await (await fetch(`${origin}/web/page/workers.js`)).text();
      assert.match(js, /createBitLensWorker/);
    });

    test('a sweep\'s limit is the library\'s: the page shows the error bl.sweep() throws for the same settings', async () => {
      let expected = '';
      try { await bl.sweep({ model, data: data.head(100), calib: data, configs: [{ wbits: 8, abits: 8 }], seeds: 100001, calibSize: 8 }); } catch (e) { expected = e.message; }
      assert.equal(expected, "sweep: 'seeds' must be an integer from 1 to 100000, found 100001");
      await setField('seeds', 100001);
      await page.click('#run-btn');
      await page.waitForFunction(() => !document.getElementById('run-error').hidden, null, { timeout: 30_000 });
      assert.equal(await visibleText('run-error'), expected);
      // The calibration size against the pool: the library's message too.
      await setField('seeds', 2);
      await setField('calib', 5000);
      await page.click('#run-btn');
      await page.waitForFunction(() => /calibration size 5000/.test(document.getElementById('run-error').textContent), null, { timeout: 30_000 });
      assert.equal(await visibleText('run-error'), 'calibration size 5000 is larger than the calibration pool (1000 images)');
      await setField('calib', 8);
    });

    test('the results CSV is `bitlens sweep --csv`\'s schema: byte for byte bl.sweepCsv of the same sweep in Node', async () => {
      await page.click('#run-btn');
      await page.waitForFunction(() => document.getElementById('run-status').textContent.startsWith('Done') && !document.getElementById('run-btn').disabled,
        null, { timeout: 150_000, polling: 250 });
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
      const csv = readFileSync(await dl.path(), 'utf8');
      const s = { softmax: await page.inputValue('#sm'), weights: await page.inputValue('#wq'), granularity: await page.inputValue('#gran') };
      const eval100 = data.head(100);
      const r = await bl.sweep({ model, data: eval100, calib: data, configs: [{ wbits: 8, abits: 8, ...s }, { wbits: 4, abits: 4, ...s }], seeds: 2, calibSize: 8,
        groups: 'tops=0,2,4,6;shoes=5,7,9' });
      eval100.delete();
      assert.equal(csv, bl.sweepCsv(r));
      assert.match(csv, /^config,seed,kind,index,name,images,accuracy,fp32,drop\n/);
      assert.match(csv, /\nW4A4,1,group,1,shoes,\d+,/);
    });

    test('a class folder the model does not have (Jacket) is refused with the library\'s message; the previous images stay', async () => {
      let expected = '';
      try { bl.classIndices(model, ['Jacket']); } catch (e) { expected = e.message; }
      assert.match(expected, /^dataset class 'Jacket' is not a class of the model/);
      const tree = {};
      for (const f of classFolderImages(2, 'punct')) tree[f.path.replace('/0/', '/Jacket/')] = new Uint8Array(f.bytes);
      await page.setInputFiles('#data-files', { name: 'punct.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(tree)) });
      await page.waitForFunction(() => !document.getElementById('data-error').hidden, null, { timeout: 60_000, polling: 100 });
      await waitIdle();
      const error = await visibleText('data-error');
      assert.ok(error.includes(expected), `${error}\nshould include\n${expected}`);
      assert.match(error, /Still using fmnist-test-1k/);
      assert.match(await page.textContent('#data-summary'), /1,000 images in 10 classes/);
    });

    test('two IDX files load whatever their names (the library reads their bytes); two other files get the library\'s IDX error', async () => {
      const root = MODEL_DIR.slice(0, MODEL_DIR.indexOf('models/'));
      const images = readFileSync(`${root}models/data/fmnist-test-1k-images-idx3-ubyte.gz`);
      const labels = readFileSync(`${root}models/data/fmnist-test-1k-labels-idx1-ubyte.gz`);
      // Labels first and names that say nothing: the page no longer guesses IDX (or the order) from names.
      await page.setInputFiles('#data-files', [{ name: 'second.bin', mimeType: 'application/octet-stream', buffer: labels },
        { name: 'first.dat', mimeType: 'application/octet-stream', buffer: images }]);
      await page.waitForFunction(() => /second\.bin \+ first\.dat|first\.dat/.test(document.getElementById('data-summary').textContent), null, { timeout: 60_000, polling: 100 });
      await waitIdle();
      assert.equal(await visibleText('data-error'), '');
      assert.match(await page.textContent('#data-summary'), /1,000 images in 10 classes/);
      // Two text files: loadDataset's error (the magic number it found and the one it expected), the images stay.
      let expected = '';
      try { bl.loadDataset({ idxImages: Buffer.from('hello world!hello world!'), idxLabels: Buffer.from('goodbye'), imagesName: 'a.txt', labelsName: 'b.txt' }); } catch (e) { expected = e.message; }
      assert.match(expected, /^a\.txt: .*magic|^a\.txt: truncated/);
      await page.setInputFiles('#data-files', [{ name: 'a.txt', mimeType: 'text/plain', buffer: Buffer.from('hello world!hello world!') },
        { name: 'b.txt', mimeType: 'text/plain', buffer: Buffer.from('goodbye') }]);
      await page.waitForFunction(() => !document.getElementById('data-error').hidden, null, { timeout: 60_000, polling: 100 });
      await waitIdle();
      const error = await visibleText('data-error');
      assert.ok(error.includes(expected), `${error}\nshould include\n${expected}`);
      assert.match(await page.textContent('#data-summary'), /1,000 images in 10 classes/);
    });

    test('a zip bomb (an entry declaring 2 GiB) is refused before unpacking, by the library\'s limit; the previous images stay', async () => {
      const tree = {};
      for (const f of classFolderImages(1, 'bomb')) tree[f.path] = new Uint8Array(f.bytes);
      const zip = Buffer.from(zipSync(tree));
      // The first central-directory entry (PK\x01\x02) declares 2 GiB uncompressed (its size field at +24): fflate
      // would allocate that much for it.
      const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
      assert.ok(cd > 0);
      const name = zip.toString('utf8', cd + 46, cd + 46 + zip.readUInt16LE(cd + 28));
      zip.writeUInt32LE(0x80000000, cd + 24);
      await page.setInputFiles('#data-files', { name: 'bomb.zip', mimeType: 'application/zip', buffer: zip });
      await page.waitForFunction(() => !document.getElementById('data-error').hidden, null, { timeout: 60_000, polling: 100 });
      await waitIdle();
      const error = await visibleText('data-error');
      assert.ok(error.includes(`bomb.zip: decompresses to more than ${bl.limits.decompressedBytes.toLocaleString('en-US')} bytes (the limit; ${name} alone declares 2,147,483,648): refused before unpacking`), error);
      assert.match(await page.textContent('#data-summary'), /1,000 images in 10 classes/);
      assert.equal(bl.limits.decompressedBytes, 2 ** 30);
    });

    test('createBitLensWorker({ worker, methods }): the page worker\'s methods beside the API\'s own; a method the worker lacks is named', async () => {
      const r = await page.evaluate(async () => {
        const { createBitLensWorker } = await import('/web/bitlens-remote.js');
        const w = await createBitLensWorker({ worker: new Worker('/web/page/worker.js', { type: 'module' }), methods: ['page:sample'] });
        const out = { exts: w.imageExtensions, api: typeof w.sweepCsv, page: typeof w['page:sample'] };
        try { await w['page:sample']({ index: 0 }); } catch (e) { out.noModel = e.message; }
        w.terminate();
        try {
          await createBitLensWorker({ worker: new Worker('/web/page/worker.js', { type: 'module' }), methods: ['page:nothing'] });
        } catch (e) { out.missing = `${e.name}: ${e.message}`; }
        return out;
      });
      assert.deepEqual(r.exts, ['.png', '.jpg', '.jpeg', '.bmp', '.gif']);
      assert.equal(r.api, 'function');
      assert.equal(r.page, 'function');
      assert.equal(r.noModel, 'load a model first');
      assert.equal(r.missing, "TypeError: createBitLensWorker: the worker has no method 'page:nothing' (a worker adds methods with extendWorker())");
    });

    test('no errors in the console', () => {
      assert.deepEqual(problems, []);
    });
  });
}
