// End-to-end test of the one-image view's flips (issue 18 item 4) in headless Debian Chromium: after a W3A3 sweep on the
// shipped model the view lists the evaluation images FP32 gets right and W3A3 gets wrong (and the reverse), each with its
// true class and both predictions, and these are the library's own answers (the package in Node: the same model, images,
// configuration, seed and calibration draw, every image classified by both); the sweep ends on the worst case (its
// configuration and seed, its class's flipped images, the first one shown). No off-origin request, no console error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MODEL_DIR, missingPrerequisites, openPage, root } from './helpers.mjs';
import { defaultData, defaultImage, encodePngGray, loadBitLens, modelFiles } from '../node/helpers.mjs';

const LIMIT = 300;
const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (one-image view)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: the one-image view finds the flipped images', { timeout: 300_000 }, () => {
    let origin, page, close;
    const problems = [];
    const requests = [];
    // What the page lists: every flipped image as { index, trueIndex, fp32, quant }, in the list it is in.
    const listed = () => page.evaluate(() => {
      const read = (id) => [...document.querySelectorAll(`#${id} button.flip`)].map((b) => ({
        index: Number(b.dataset.index), trueIndex: Number(b.dataset.true), fp32: Number(b.dataset.fp32), quant: Number(b.dataset.quant), text: b.textContent,
      }));
      return { broken: read('flips-broken'), fixed: read('flips-fixed') };
    });

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
      page.on('request', (r) => requests.push(r.url()));
    });
    after(async () => { await close?.(); });

    test('after a W3A3 sweep: the worst case, its class\'s flips, and every flip as the library says', async () => {
      await page.goto(`${origin}/?configs=w3a3&seeds=2&calib=32&limit=${LIMIT}&workers=1`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      await page.click('#run-btn');
      await page.waitForFunction(() => document.getElementById('run-status').textContent.startsWith('Done'), null, { timeout: 180_000, polling: 250 });
      // The jump: the configuration at the worst case's seed, the worst class's flips listed, the first one shown.
      await page.waitForFunction(() => !document.getElementById('flips').hidden && document.querySelector('#flips-broken li, #flips-fixed li')
        && document.getElementById('flips-class').value !== '', null, { timeout: 120_000, polling: 250 });
      const worstCell = await page.textContent('#results-table tr[data-config="W3A3"] td.worst-case');
      const [, worstLabel, worstAcc, worstSeed] = worstCell.match(/^\s*(.+?) ([\d.]+)% seed (\d+)/);
      const sel = JSON.parse(await page.$eval('#sample-config', (el) => el.value));
      assert.equal(sel.seed, Number(worstSeed), 'the view took the worst case\'s seed');
      assert.match(await page.$eval('#sample-config', (el) => el.selectedOptions[0].textContent), new RegExp(`^W3A3, seed ${worstSeed}`));
      const cls = Number(await page.$eval('#flips-class', (el) => el.value));
      assert.equal(await page.$eval('#flips-class', (el) => el.selectedOptions[0].textContent.replace(/ \(\d+\)$/, '')), worstLabel);
      const shown = await listed();
      assert.ok(shown.broken.length > 0, 'W3A3 breaks some of the worst class\'s images');
      for (const x of [...shown.broken, ...shown.fixed]) assert.equal(x.trueIndex, cls, `only the worst class: ${x.text}`);
      await page.waitForFunction((i) => document.querySelector('#sample figcaption')?.textContent.startsWith(`Image ${i}`), shown.broken[0].index, { timeout: 60_000 });
      assert.match(await page.textContent('#sample'), /FP32: correct[\s\S]*W3A3, seed \d+.*: wrong/);

      // Every class's flips, against the package in Node: the same model, images, configuration, seed and draw.
      await page.selectOption('#flips-class', '');
      const all = await listed();
      assert.match(all.broken[0].text, /^Image \d+: .+ · FP32 .+ · W3A3 .+$/);
      const bl = await loadBitLens();
      const model = bl.loadModel({ ...modelFiles(MODEL_DIR.slice(root.length)), name: join(MODEL_DIR, 'model.safetensors') });
      const data = bl.loadDataset(defaultData());
      const evalData = data.head(LIMIT);
      const q = model.quantize({ ...sel.config, seed: sel.seed, calibSize: sel.calibSize, calib: data });
      const perClass = q.evaluate(evalData).perClass;
      assert.equal((100 * perClass[cls]).toFixed(1), worstAcc, 'the same quantized model as the sweep\'s worst case');
      const expect = { broken: [], fixed: [] };
      const fpEval = model.evaluate(evalData), qEval = q.evaluate(evalData);
      let fpRight = 0, qRight = 0;
      for (let i = 0; i < LIMIT; i++) {
        const { pixels, label } = defaultImage(i);
        const png = encodePngGray(pixels, 28, 28);
        const f = model.classify(png, { topK: 1 })[0].index, p = q.classify(png, { topK: 1 })[0].index;
        fpRight += f === label; qRight += p === label;
        if ((f === label) !== (p === label)) expect[f === label ? 'broken' : 'fixed'].push({ index: i, trueIndex: label, fp32: f, quant: p });
      }
      // The per-image answers are the evaluation's: as many right as evaluate() counts.
      assert.equal(fpRight, Math.round(fpEval.top1 * LIMIT));
      assert.equal(qRight, Math.round(qEval.top1 * LIMIT));
      const strip = (xs) => xs.map(({ index, trueIndex, fp32, quant }) => ({ index, trueIndex, fp32, quant }));
      assert.deepEqual(strip(all.broken), expect.broken);
      assert.deepEqual(strip(all.fixed), expect.fixed);
      assert.match(await page.textContent('#flips-note'), new RegExp(`^Of ${LIMIT} evaluation images, ${expect.broken.length} go wrong .* and ${expect.fixed.length} the reverse`));
      q.delete(); model.delete(); evalData.delete(); data.delete();

      // A listed image opens in the view; "Jump to the worst case" comes back to the worst class.
      const other = all.fixed[0] || all.broken[all.broken.length - 1];
      await page.click(`#flips-fixed button.flip[data-index="${other.index}"], #flips-broken button.flip[data-index="${other.index}"]`);
      await page.waitForFunction((i) => document.querySelector('#sample figcaption')?.textContent.startsWith(`Image ${i}`), other.index, { timeout: 60_000 });
      await page.click('#flips-worst');
      await page.waitForFunction((c) => document.getElementById('flips-class').value === String(c), cls, { timeout: 60_000 });
      await page.waitForFunction((i) => document.querySelector('#sample figcaption')?.textContent.startsWith(`Image ${i}`), shown.broken[0].index, { timeout: 60_000 });
    });

    test('no off-origin request, no console error', () => {
      const foreign = [...new Set(requests)].filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
      assert.deepEqual(foreign, []);
      assert.deepEqual(problems, []);
    });
  });
}
