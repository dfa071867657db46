// End-to-end tests of the demo page in headless Debian Chromium (playwright-core): first open with the
// shipped model, a small sweep, uploads (model files, an image-folder zip, a folder), a broken
// safetensors, cancelling a running sweep, fine-tuning (QAT) and cancelling it — and that no request leaves
// the page's origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { start, CSP } from '../../web/serve.mjs';
import { CHROMIUM, CHROMIUM_ARGS, MODEL_DIR, classFolderZip, missingPrerequisites, saveArtifact, writeClassFolder } from './helpers.mjs';

const missing = missingPrerequisites();
// With BITLENS_E2E_MODEL=models/NAME the page opens that model too; BITLENS_E2E_MIN_TOP1 (default 0.5)
// is the lowest plausible top-1 (for trying the page with an untrained model).
const MODEL_PARAM = process.env.BITLENS_E2E_MODEL ? `&model=/${process.env.BITLENS_E2E_MODEL.replace(/^\/|\/$/g, '')}/` : '';
const MIN = Number(process.env.BITLENS_E2E_MIN_TOP1 ?? 0.5);
if (missing.length) {
  // Fail loudly (not skip): the demo page is part of the product.
  test('e2e prerequisites', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page', { timeout: 170_000 }, () => {
    let server, origin, browser, context, page, tmp;
    const requests = [];
    const problems = [];

    const shot = async (name, opts = {}) => saveArtifact(name, await page.screenshot({ fullPage: true, ...opts }));
    const status = () => page.textContent('#run-status');
    const visibleError = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent));
    async function waitDone(timeout = 120_000) {
      await page.waitForFunction(() => {
        const s = document.getElementById('run-status').textContent;
        return s.startsWith('Done') && !document.getElementById('results').hidden;
      }, null, { timeout, polling: 250 });
    }
    async function waitIdle(timeout = 60_000) {
      await page.waitForFunction(() => !document.getElementById('run-btn').disabled, null, { timeout, polling: 100 });
    }
    async function tableRows() {
      return page.$$eval('#results-table tbody tr[data-config]', (rows) => rows.map((r) => ({
        config: r.dataset.config,
        top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100,
        cells: [...r.querySelectorAll('td')].map((td) => td.textContent.trim()),
      })));
    }
    const fp32 = async () => Number.parseFloat(await page.textContent('#st-fp32')) / 100;

    before(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'bitlens-e2e-'));
      ({ server, url: origin } = await start({ port: 0, quiet: true }));
      origin = origin.replace(/\/$/, '');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
      context.on('request', (r) => requests.push(r.url()));
      page = await context.newPage();
      page.on('request', (r) => requests.push(r.url()));
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    });

    after(async () => {
      await browser?.close();
      await new Promise((r) => (server ? server.close(r) : r()));
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    test('the server sends the CSP and the right MIME types', async () => {
      const res = await fetch(`${origin}/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-security-policy'), CSP);
      assert.match(CSP, /default-src 'self'/);
      const wasm = await fetch(`${origin}/web/lib/bitlens-core.wasm`);
      assert.equal(wasm.headers.get('content-type'), 'application/wasm');
      const gz = await fetch(`${origin}/models/data/fmnist-test-1k-labels-idx1-ubyte.gz`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gz.headers.get('content-type'), 'application/octet-stream');
      assert.equal(gz.headers.get('content-encoding'), null);
      const js = await fetch(`${origin}/web/page/worker.js`);
      assert.match(js.headers.get('content-type'), /^text\/javascript/);
      assert.equal((await fetch(`${origin}/web/../package.json`)).status, 404);
      assert.equal((await fetch(`${origin}/src/model/model.cpp`)).status, 404);
    });

    test('first open: the shipped model and the default images, with FP32 accuracy', async () => {
      const groups = encodeURIComponent('tops=T-shirt/top, Pullover, Coat, Shirt; shoes=5,7,9');
      // trainLimit and epochs: a fine-tuning run of seconds (300 training images, 2 epochs).
      await page.goto(`${origin}/?configs=w8a8,w4a4&seeds=2&limit=300&groups=${groups}&trainLimit=300&epochs=2${MODEL_PARAM}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.equal(await visibleError('model-error'), '');
      assert.equal(await visibleError('data-error'), '');
      const acc = await fp32();
      assert.ok(acc >= MIN && acc <= 1, `FP32 top-1 ${acc}`);
      assert.match(await page.textContent('#data-summary'), /1,000 images in 10 classes; evaluating on 300/);
      assert.equal(await page.isEnabled('#run-btn'), true);
      // The teaching view drew the weight histogram with the quantizers' levels.
      await page.waitForSelector('#plot-hist svg');
      await page.waitForSelector('#sample img');
      // The sample's attention map: FP32 and the preselected quantized configuration, one cell per patch.
      await page.waitForSelector('#plot-attention svg');
      const grid = await page.$eval('#model-summary', (el) => el.textContent);
      assert.match(grid, /patch 4, 28×28×1/);
      assert.equal(await page.$$eval('#plot-attention svg rect', (r) => r.length) >= 2 * 49, true, 'two 7×7 maps');
      assert.match(await page.textContent('#attn-caption'), /block 3: its attention to each of the 7×7 patches.*differs from FP32 by \d+\.\d%/);
      // Every control has a label (keyboard and screen-reader use).
      const unlabeled = await page.$$eval('input, select, button', (els) => els.filter((el) => {
        if (el.type === 'hidden') return false;
        const name = (el.labels && [...el.labels].map((l) => l.textContent).join(' ')) || el.getAttribute('aria-label') || el.textContent;
        return !name || !name.trim();
      }).map((el) => el.id || el.outerHTML.slice(0, 60)));
      assert.deepEqual(unlabeled, []);
      await shot('e2e-1-first-open.png', { fullPage: false });
    });

    test('the default sweep: table and charts with plausible numbers', async () => {
      await page.click('#run-btn');
      await waitDone();
      const rows = await tableRows();
      assert.deepEqual(rows.map((r) => r.config), ['W8A8', 'W4A4']);
      for (const r of rows) assert.ok(r.top1 >= MIN && r.top1 <= 1, `${r.config} top-1 ${r.top1}`);
      assert.ok(Math.abs(rows[0].top1 - (await fp32())) < 0.05, 'W8A8 is close to FP32');
      for (const id of ['plot-box', 'plot-bars', 'plot-confusion']) await page.waitForSelector(`#${id} svg`);
      assert.match(await page.textContent('#plot-bars'), /W4A4/);
      assert.doesNotMatch(await page.textContent('#results-table'), /undefined|NaN/);
      // The class groups from the URL: one row per group, members named, a plausible accuracy per configuration.
      const groupRows = await page.$$eval('#groups-table tbody tr', (trs) => trs.map((r) => ({
        name: r.dataset.group, members: r.querySelector('th .sub').textContent,
        acc: [...r.querySelectorAll('td')].map((td) => Number.parseFloat(td.textContent) / 100),
      })));
      assert.deepEqual(groupRows.map((g) => g.name), ['tops', 'shoes']);
      assert.equal(groupRows[0].members, 'T-shirt/top, Pullover, Coat, Shirt');
      assert.equal(groupRows[1].members, 'Sandal, Sneaker, Ankle boot');
      for (const g of groupRows) for (const a of g.acc) assert.ok(a >= MIN && a <= 1, `${g.name} ${a}`);
      assert.ok(groupRows[1].acc[0] > groupRows[0].acc[0], 'shoes are easier than tops');
      // The quantized model of the sample view downloads as safetensors with packed codes and the recipe.
      const [st] = await Promise.all([page.waitForEvent('download'), page.click('#export-model')]);
      assert.match(st.suggestedFilename(), /W4A4.*\.safetensors$/);
      const bytes = readFileSync(await st.path());
      const headerLen = Number(bytes.readBigUInt64LE(0));
      const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8'));
      assert.ok(header.__metadata__ && header.__metadata__['bitlens.quantization'], 'the recipe is in __metadata__');
      assert.ok(Object.values(header).some((t) => t.dtype === 'I8' || t.dtype === 'U8'), 'packed integer codes');
      assert.ok(bytes.length < readFileSync(join(MODEL_DIR, 'model.safetensors')).length / 2, 'smaller than the FP32 file');
      assert.match(page.url(), /configs=w8a8%2Cw4a4|configs=w8a8,w4a4/);
      // Exports: JSON with every seed, and a chart as SVG.
      const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
      const data = JSON.parse(readFileSync(await json.path(), 'utf8'));
      assert.equal(data.result.configs.length, 2);
      assert.equal(data.result.configs[0].seeds.length, 2);
      assert.equal(data.settings.limit, 300);
      const [svg] = await Promise.all([page.waitForEvent('download'), page.click('#plot-bars [data-fmt=svg]')]);
      assert.match(readFileSync(await svg.path(), 'utf8'), /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      const [png] = await Promise.all([page.waitForEvent('download'), page.click('#plot-box [data-fmt=png]')]);
      assert.deepEqual([...readFileSync(await png.path()).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
      await shot('e2e-2-results.png');
    });

    test('mixed precision: the plan stays within the budget, beside uniform, with its allocation charts', async () => {
      await page.fill('#mx-sens', '4');
      await page.selectOption('#mx-objective', 'worst');
      await page.click('#mx-run');
      await page.waitForFunction(() => /^Measuring sensitivities: \d+ \/ \d+ steps/.test(document.getElementById('progress-text').textContent), null, { timeout: 30_000, polling: 50 });
      await page.waitForFunction(() => /Mixed precision done/.test(document.getElementById('run-status').textContent) && !document.getElementById('mx-results').hidden,
        null, { timeout: 120_000, polling: 250 });
      assert.equal(await visibleError('mx-error'), '');
      const rows = await page.$$eval('#mx-table tbody tr', (trs) => trs.map((r) => ({
        config: r.dataset.config,
        bitsW: Number.parseFloat(r.querySelector('td.bits-w').textContent),
        bitsA: Number.parseFloat(r.querySelector('td.bits-a').textContent),
        top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100,
      })));
      assert.deepEqual(rows.map((r) => r.config), ['W4A4', 'mixed']);
      assert.ok(rows[1].bitsW <= 4 && rows[1].bitsW > 3.5, `mixed uses ${rows[1].bitsW} bits per weight`);
      assert.ok(rows[1].bitsA <= 4 && rows[1].bitsA > 3.5, `mixed uses ${rows[1].bitsA} bits per activation`);
      assert.ok(rows[0].bitsW > 4, 'uniform W4A4 keeps the edges at 8 bits');
      for (const r of rows) assert.ok(r.top1 >= MIN && r.top1 <= 1, `${r.config} top-1 ${r.top1}`);
      for (const id of ['plot-mx-layers', 'plot-mx-points', 'plot-mx-sens']) await page.waitForSelector(`#${id} svg`);
      assert.match(await page.textContent('#plot-mx-layers'), /mixed/);
      assert.match(page.url(), /objective=worst/);
      assert.match(page.url(), /sensSize=4/);
      saveArtifact('e2e-2b-mixed.png', await page.locator('#mixed').screenshot());
      // A size budget: the plan's model fits in it.
      await page.selectOption('#mx-kind', 'kb');
      await page.fill('#mx-budget', '110');
      await page.dispatchEvent('#mx-budget', 'change');
      await page.click('#mx-run');
      await page.waitForFunction(() => /Mixed precision done/.test(document.getElementById('run-status').textContent)
        && /110\.0 kB for the whole model/.test(document.getElementById('mx-note').textContent), null, { timeout: 120_000, polling: 250 });
      const sizes = await page.$$eval('#mx-table tbody tr td.size', (tds) => tds.map((td) => Number.parseFloat(td.textContent)));
      assert.equal(sizes.length, 2);
      assert.ok(sizes[1] <= 110 && sizes[1] > 100, `the plan's model is ${sizes[1]} kB`);
      assert.match(page.url(), /maxKB=110/);
      // The comparison in the results view: the plan is a configuration there, and its model downloads.
      await page.click('#mx-explore');
      await page.waitForFunction(() => !!document.querySelector('#results-table tr[data-config="mixed"]'), null, { timeout: 30_000 });
      assert.match(await page.$eval('#sample-config', (el) => el.selectedOptions[0].textContent), /^mixed, seed 0/);
      await page.waitForSelector('#plot-attention svg');
      const [plan] = await Promise.all([page.waitForEvent('download'), page.click('#export-model')]);
      assert.match(plan.suggestedFilename(), /mixed.*\.safetensors$/);
      const planBytes = readFileSync(await plan.path());
      const planHeaderLen = Number(planBytes.readBigUInt64LE(0));
      // The file's data section (everything but the header with its recipe) is the budgeted size.
      assert.ok(planBytes.length - 8 - planHeaderLen <= 110_000, `the downloaded plan holds ${planBytes.length - 8 - planHeaderLen} bytes of data`);
      const planHeader = JSON.parse(planBytes.subarray(8, 8 + planHeaderLen).toString('utf8'));
      assert.match(planHeader.__metadata__['bitlens.quantization'], /layer_bits/);
    });

    test('fine-tuning (QAT) from a results row: progress, the learning curve against FP32, PTQ against QAT, the download', async () => {
      assert.equal(await page.inputValue('#qat-epochs'), '2');
      assert.equal(await page.inputValue('#qat-limit'), '300');
      // The results view holds the mixed-precision comparison: its uniform row (WbAa) has the button.
      const name = await page.$eval('#results-table button[data-qat]', (b) => b.dataset.qat);
      const [, w, a] = /^W(\d)A(\d)$/.exec(name);
      await page.click(`#results-table button[data-qat="${name}"]`);
      assert.equal(await page.inputValue('#qat-w'), w);
      assert.equal(await page.inputValue('#qat-a'), a);
      assert.equal(await page.$$eval('#results-table tr[data-config="mixed"] button', (b) => b.length), 0, 'no button for a mixed plan');
      assert.match(await page.textContent('#qat-estimate'), /^Expected time: about .+ for 2 epochs on 270 training images \(30 held out\)/);
      // Every progress text the run shows.
      await page.evaluate(() => {
        window.__qatTexts = [];
        new MutationObserver(() => window.__qatTexts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      });
      await page.click('#qat-run');
      await page.waitForFunction(() => /^Fine-tuning done/.test(document.getElementById('run-status').textContent)
        && !document.getElementById('qat-compare-wrap').hidden, null, { timeout: 120_000, polling: 250 });
      assert.equal(await visibleError('qat-error'), '');
      const texts = await page.evaluate(() => window.__qatTexts);
      assert.ok(texts.some((t) => new RegExp(`^Fine-tuning ${name}: epoch 2/2, step \\d+/10 · loss \\d\\.\\d{4}`).test(t)), texts.join(' | '));
      assert.ok(texts.some((t) => /· (\d+ min )?\d+ s left$/.test(t)), 'an estimate of the time left');
      assert.match(await page.textContent('#qat-data-summary'), /the shipped Fashion-MNIST training subset, 5,000 images in 10 classes/);
      // One row per epoch (0 = PTQ), each with a plausible validation top-1 and its worst class.
      const epochs = await page.$$eval('#qat-epochs-table tbody tr', (trs) => trs.map((r) => ({
        epoch: r.dataset.epoch, top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100, worst: r.querySelector('td.worst').textContent,
      })));
      assert.deepEqual(epochs.map((e) => e.epoch), ['0', '1', '2']);
      for (const e of epochs) {
        assert.ok(e.top1 >= MIN && e.top1 <= 1, `epoch ${e.epoch} top-1 ${e.top1}`);
        assert.match(e.worst, /^[\w/ -]+ \d+\.\d%$/);
      }
      assert.equal(await page.$$eval('#qat-epochs-table tr.best', (r) => r.length), 1);
      // The learning curve: both series, FP32's lines.
      await page.waitForSelector('#plot-qat-curve svg');
      const curve = await page.textContent('#plot-qat-curve');
      assert.match(curve, /validation top-1/);
      assert.match(curve, /FP32 top-1\s*\d+\.\d%/);
      assert.match(curve, /FP32 worst class\s*[A-Z][\w/ -]* \d+\.\d%/);
      // PTQ against QAT on the evaluation images.
      const cmp = await page.$$eval('#qat-compare tbody tr', (trs) => trs.map((r) => ({
        model: r.dataset.model, top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100,
      })));
      assert.deepEqual(cmp.map((r) => r.model), ['fp32', 'ptq', 'qat']);
      for (const r of cmp) assert.ok(r.top1 >= MIN && r.top1 <= 1, `${r.model} top-1 ${r.top1}`);
      assert.ok(Math.abs(cmp[0].top1 - (await fp32())) < 0.001, 'the FP32 row is the FP32 accuracy above');
      assert.match(await page.textContent('#qat-note'), /Trained on 270 images.*Evaluated on the 300 evaluation images/);
      assert.doesNotMatch(await page.textContent('#qat'), /undefined|NaN/);
      // The fine-tuned model downloads as a quantized safetensors.
      const [st] = await Promise.all([page.waitForEvent('download'), page.click('#qat-export')]);
      assert.match(st.suggestedFilename(), new RegExp(`${name}-qat\\.safetensors$`));
      const bytes = readFileSync(await st.path());
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
      assert.equal(JSON.parse(header.__metadata__['bitlens.quantization']).config.name, name);
      assert.match(page.url(), /trainLimit=300/);
      assert.match(page.url(), /epochs=2/);
      // The whole section (the sticky run bar would cover part of it in an element screenshot).
      await page.$eval('#run', (el) => { el.style.position = 'static'; });
      saveArtifact('e2e-2c-qat.png', await page.locator('#qat').screenshot());
      await page.$eval('#run', (el) => { el.style.position = ''; });
    });

    test('cancel stops a fine-tuning run; the next one runs to the end', async () => {
      await page.fill('#qat-limit', '0');
      await page.dispatchEvent('#qat-limit', 'change');
      await page.fill('#qat-epochs', '1');
      await page.dispatchEvent('#qat-epochs', 'change');
      assert.match(await page.textContent('#qat-estimate'), /for 1 epoch on 4,500 training images \(500 held out\)/);
      await page.click('#qat-run');
      await page.waitForFunction(() => /step [1-9]\d*\/71/.test(document.getElementById('progress-text').textContent), null, { timeout: 60_000, polling: 50 });
      await page.click('#cancel-btn');
      assert.match(await status(), /Cancelled/);
      await page.waitForFunction(() => /Ready to run again/.test(document.getElementById('run-status').textContent), null, { timeout: 60_000 });
      assert.equal(await page.textContent('#progress-text'), '');
      assert.equal(await page.isEnabled('#qat-run'), true);
      assert.match(await page.textContent('#qat-epochs-table'), /Cancelled during epoch 1 of 1\./);
      // The restarted worker has the training images again.
      await page.fill('#qat-limit', '120');
      await page.dispatchEvent('#qat-limit', 'change');
      await page.click('#qat-run');
      await page.waitForFunction(() => /^Fine-tuning done/.test(document.getElementById('run-status').textContent)
        && !document.getElementById('qat-compare-wrap').hidden, null, { timeout: 120_000, polling: 250 });
      assert.equal(await page.$$eval('#qat-epochs-table tbody tr', (r) => r.length), 2);
      assert.match(page.url(), /trainLimit=120/);
      assert.doesNotMatch(page.url(), /epochs=/);
      // The user's own training images: a zip of class folders, labelled by folder name.
      await page.setInputFiles('#qat-files', { name: 'my-train.zip', mimeType: 'application/zip', buffer: classFolderZip(6) });
      await page.waitForFunction(() => /my-train\.zip.*60 images in 10 classes/.test(document.getElementById('qat-data-summary').textContent), null, { timeout: 30_000 });
      await page.fill('#qat-limit', '0');
      await page.dispatchEvent('#qat-limit', 'change');
      await waitIdle();
      await page.click('#qat-run');
      await page.waitForFunction(() => /^Fine-tuning done/.test(document.getElementById('run-status').textContent)
        && !document.getElementById('qat-compare-wrap').hidden, null, { timeout: 120_000, polling: 250 });
      assert.match(await page.textContent('#qat-note'), /Trained on 54 images from my-train\.zip/);
      // A wrong kind of file: an error naming it, and the previous training images stay.
      await page.setInputFiles('#qat-files', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
      await page.waitForSelector('#qat-error:not([hidden])', { timeout: 30_000 });
      assert.match(await visibleError('qat-error'), /notes\.txt/);
      assert.match(await page.textContent('#qat-data-summary'), /my-train\.zip/);
      await waitIdle();
    });

    test('bring your own: model files and an image-folder zip, then run again', async () => {
      await page.setInputFiles('#model-files', ['model.safetensors', 'config.json', 'preprocessor_config.json']
        .map((f) => join(MODEL_DIR, f)).filter((p) => { try { readFileSync(p); return true; } catch { return false; } }));
      await page.waitForFunction(() => /model\.safetensors/.test(document.getElementById('st-model').textContent), null, { timeout: 30_000 });
      await waitIdle();
      assert.equal(await visibleError('model-error'), '');
      await page.setInputFiles('#data-files', { name: 'fmnist-sample.zip', mimeType: 'application/zip', buffer: classFolderZip(5) });
      await page.waitForFunction(() => /fmnist-sample\.zip/.test(document.getElementById('data-summary').textContent), null, { timeout: 30_000 });
      await waitIdle();
      assert.equal(await visibleError('data-error'), '');
      assert.match(await page.textContent('#data-summary'), /50 images in 10 classes; evaluating on 50/);
      const acc = await fp32();
      assert.ok(acc >= MIN && acc <= 1, `FP32 top-1 on the zip ${acc}`);
      await page.click('#run-btn');
      await waitDone();
      const rows = await tableRows();
      assert.equal(rows.length, 2);
      for (const r of rows) assert.ok(r.top1 >= MIN && r.top1 <= 1, `${r.config} top-1 ${r.top1}`);
      assert.match(await page.textContent('#results-note'), /on 50 images/);
      await shot('e2e-3-upload-results.png');
      // Drag and drop of a zip onto the images drop zone.
      await page.evaluate((b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.zip', { type: 'application/zip' }));
        document.getElementById('data-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      }, classFolderZip(2).toString('base64'));
      await page.waitForFunction(() => /dropped\.zip.*20 images in 10 classes/.test(document.getElementById('data-summary').textContent), null, { timeout: 30_000 });
      await waitIdle();
      // An image folder (directory picker) loads too.
      await page.setInputFiles('#data-folder', writeClassFolder(tmp, 3));
      await page.waitForFunction(() => /30 images in 10 classes/.test(document.getElementById('data-summary').textContent), null, { timeout: 30_000 });
      await waitIdle();
      assert.equal(await visibleError('data-error'), '');
    });

    test('a broken safetensors: an inline error naming the file, and the page keeps working', async () => {
      const good = readFileSync(join(MODEL_DIR, 'model.safetensors'));
      await page.setInputFiles('#model-files', [
        { name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: good.subarray(0, 100) },
        { name: 'config.json', mimeType: 'application/json', buffer: readFileSync(join(MODEL_DIR, 'config.json')) },
      ]);
      await page.waitForSelector('#model-error:not([hidden])', { timeout: 30_000 });
      const msg = await visibleError('model-error');
      assert.match(msg, /broken\.safetensors/);
      assert.match(msg, /header length|end of the file|truncated/);
      await waitIdle();
      assert.match(await page.textContent('#st-model'), /model\.safetensors/, 'the previous model stays loaded');
      await page.$eval('#model-card', (el) => el.scrollIntoView({ block: 'center' }));
      await shot('e2e-4-broken-model.png', { fullPage: false });
      // A model without its config.json: the page says what is missing.
      await page.setInputFiles('#model-files', [join(MODEL_DIR, 'model.safetensors')]);
      await page.waitForFunction(() => /config\.json/.test(document.getElementById('model-error').textContent), null, { timeout: 30_000 });
      // A wrong kind of image file: the error names it.
      await page.setInputFiles('#data-files', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
      await page.waitForSelector('#data-error:not([hidden])', { timeout: 30_000 });
      assert.match(await visibleError('data-error'), /notes\.txt/);
      await waitIdle();
    });

    test('cancel stops a running sweep; a new run works afterwards', async () => {
      // Back to the default images, and a sweep long enough to cancel.
      await page.click('#data-default');
      await page.waitForFunction(() => /evaluating on 300/.test(document.getElementById('data-summary').textContent), null, { timeout: 30_000 });
      await waitIdle();
      await page.fill('#seeds', '20');
      await page.dispatchEvent('#seeds', 'change');
      await page.click('#run-btn');
      await page.waitForFunction(() => /^[1-9]\d* \/ 40 runs/.test(document.getElementById('progress-text').textContent), null, { timeout: 60_000, polling: 100 });
      await page.click('#cancel-btn');
      assert.match(await status(), /Cancelled/);
      await page.waitForFunction(() => /Ready to run again/.test(document.getElementById('run-status').textContent), null, { timeout: 60_000 });
      await shot('e2e-5-cancelled.png', { fullPage: false });
      assert.equal(await page.textContent('#progress-text'), '');
      await page.fill('#seeds', '1');
      await page.dispatchEvent('#seeds', 'change');
      await waitIdle();
      await page.click('#run-btn');
      await waitDone();
      const rows = await tableRows();
      assert.equal(rows.length, 2);
      for (const r of rows) assert.ok(r.top1 >= MIN && r.top1 <= 1, `${r.config} top-1 ${r.top1}`);
      // Projector-sized view.
      await page.setViewportSize({ width: 1280, height: 720 });
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot('e2e-6-projector-1280x720.png', { fullPage: false });
    });

    test('no request left the origin, and no errors in the console', () => {
      const foreign = [...new Set(requests)].filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
      assert.deepEqual(foreign, []);
      assert.ok(requests.some((u) => u.endsWith('/web/lib/bitlens-core.wasm')), 'the requests were observed');
      assert.deepEqual(problems, []);
    });
  });
}
