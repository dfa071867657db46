// End-to-end test of QBitOpt (QAT with the bits reallocated under a budget) on the demo page in headless Debian
// Chromium: the fine-tune method and its URL parameters, progress with each allocation, the allocation chart while the
// run goes and after it (one column per allocation, the kept one framed), the bits against the budget, PTQ against
// QBitOpt per class, the download, and bad budgets as readable messages after which the page still runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LABELS, missingPrerequisites, saveArtifact, openPage } from './helpers.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (QBitOpt)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: QBitOpt', { timeout: 170_000 }, () => {
    let origin, page, close;
    const problems = [];
    const visibleError = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent));
    const setField = async (id, value) => { await page.fill(`#${id}`, String(value)); await page.dispatchEvent(`#${id}`, 'change'); };
    const waitDone = () => page.waitForFunction(() => /^Fine-tuning done/.test(document.getElementById('run-status').textContent)
      && !document.getElementById('qat-compare-wrap').hidden && !document.getElementById('qat-run').disabled, null, { timeout: 120_000, polling: 250 });
    const param = (k) => new URL(page.url()).searchParams.get(k);
    const columns = () => page.$$eval('#plot-qb-alloc svg [aria-label="x-axis tick label"] text', (t) => t.map((x) => x.textContent));

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
    });

    after(async () => {
      await close?.();
    });

    test('QBitOpt from the URL: progress per allocation, the allocation chart as it grows and after, bits against the budget, PTQ against QBitOpt per class, the download', async () => {
      await page.goto(`${origin}/?finetune=qbitopt&qbBudget=3.5&qbAbudget=6&qbObjective=worst&trainLimit=300&calib=16&limit=300`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.equal(await page.inputValue('#qat-method'), 'qbitopt');
      assert.equal(await page.inputValue('#qb-w'), '3.5');
      assert.equal(await page.inputValue('#qb-a'), '6');
      assert.equal(await page.inputValue('#qb-objective'), 'worst');
      assert.equal(await page.inputValue('#qb-epochs'), '2');
      for (const id of ['qb-w', 'qb-a', 'qb-objective', 'qb-epochs']) assert.equal(await page.isVisible(`#${id}`), true, id);
      for (const id of ['qat-w', 'qat-epochs', 'inq-partitions']) assert.equal(await page.isVisible(`#${id}`), false, id);
      assert.equal((await page.textContent('#qat-run')).trim(), 'Fine-tune (QBitOpt)');
      assert.match(await page.textContent('#qat-estimate'), /for 2 epochs \(bits allocated 5 times\) on 270 training images \(30 held out\)/);
      // Record the progress texts and the chart's columns as they change during the run.
      await page.evaluate(() => {
        window.__texts = [];
        window.__columns = [];
        new MutationObserver(() => window.__texts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
        new MutationObserver(() => window.__columns.push(document.querySelectorAll('#plot-qb-alloc svg [aria-label="x-axis tick label"] text').length))
          .observe(document.getElementById('plot-qb-alloc'), { childList: true });
      });
      await page.click('#qat-run');
      await waitDone();
      assert.equal(await visibleError('qat-error'), '');
      // 270 training images in batches of 64: 5 steps an epoch; bits allocated at the start and every 2 steps (a
      // quarter epoch, rounded up) before the last epoch: before steps 2 and 4.
      const texts = await page.evaluate(() => window.__texts);
      for (const step of [2, 4]) {
        assert.ok(texts.some((t) => new RegExp(`^Fine-tuning W3\\.5A6 budget: epoch 1/2, step ${step + 1}/10 · loss \\d\\.\\d{4} · bits allocated again at step ${step} \\(\\d+ changed\\)`).test(t)), texts.join(' | '));
      }
      assert.deepEqual([...new Set(await page.evaluate(() => window.__columns))].filter((n) => n > 0), [1, 2, 3], 'the chart grows with each allocation');
      assert.match(await page.textContent('#run-status'), /^Fine-tuning done in .*: W3\.5A6 budget after QBitOpt \(epoch \d, \d\.\d\d bits per weight, \d\.\d\d per activation\) against PTQ below\./);

      // The allocation chart: one column per allocation, every layer and point a row, the kept column framed.
      assert.deepEqual(await columns(), ['step 0', 'step 2', 'step 4']);
      const chart = await page.textContent('#plot-qb-alloc');
      for (const t of ['avg per weight (budget 3.5)', 'avg per activation (budget 6)', 'weights, per layer:', 'patch_embed.proj', 'blocks.3.mlp.fc2', 'head',
        'activations, per point:', 'blocks.0.attn.probs', 'kept']) assert.ok(chart.includes(t), `${t} in the chart`);
      // (each average's own text, without its tooltip)
      const avgs = await page.$$eval('#plot-qb-alloc svg text', (t) => t.map((x) => [...x.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join(''))
        .filter((x) => /^\d\.\d\d$/.test(x)).map(Number));
      assert.equal(avgs.length, 6, 'two averages per allocation');
      for (let i = 0; i < 6; i += 2) assert.ok(avgs[i] <= 3.5 && avgs[i] > 3 && avgs[i + 1] <= 6 && avgs[i + 1] > 5, `averages ${avgs}`);
      const bitsText = await page.textContent('#qb-bits');
      const m = bitsText.match(/^The kept model uses the allocation from step (\d) \(([123]) of 3\): (\d\.\d{3}) bits per weight on average \(budget 3\.5\), (\d\.\d{3}) per activation value \(budget 6\); \d+ changes? of a layer's or point's bits after the first allocation; sensitivities weighted for the hard classes\.$/);
      assert.ok(m, bitsText);
      assert.equal(Number(m[1]), [0, 2, 4][Number(m[2]) - 1]);
      assert.ok(Number(m[3]) <= 3.5 && Number(m[4]) <= 6, bitsText);
      // One row per epoch; PTQ (at the first allocation) against QBitOpt on the evaluation images, and per class.
      assert.deepEqual(await page.$$eval('#qat-epochs-table tbody tr[data-epoch]', (r) => r.map((x) => x.dataset.epoch)), ['0', '1', '2']);
      await page.waitForSelector('#plot-qat-curve svg');
      assert.equal(await page.textContent('#qat-compare-title'), 'PTQ against QBitOpt on the evaluation images');
      const cmp = await page.$$eval('#qat-compare tbody tr', (trs) => trs.map((r) => ({
        model: r.dataset.model, top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100, text: r.textContent,
      })));
      assert.deepEqual(cmp.map((r) => r.model), ['fp32', 'ptq', 'qat']);
      for (const r of cmp) assert.ok(r.top1 > 0.5 && r.top1 <= 1, `${r.model} top-1 ${r.top1}`);
      assert.match(cmp[1].text, /W3\.5A6 budget PTQ\s*epoch 0, the first allocation/);
      assert.match(cmp[2].text, /W3\.5A6 budget QBitOpt\s*epoch \d of 2/);
      await page.waitForSelector('#plot-qat-classes svg');
      const classes = await page.textContent('#plot-qat-classes');
      for (const l of LABELS) assert.ok(classes.includes(l), `${l} in the per-class chart`);
      assert.ok(classes.includes('W3.5A6 budget QBitOpt'));
      assert.doesNotMatch(await page.textContent('#qat'), /undefined|NaN/);
      // The model downloads with its mixed bits in the recipe.
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#qat-export')]);
      assert.match(dl.suggestedFilename(), /W3\.5A6-budget-qbitopt\.safetensors$/);
      const bytes = readFileSync(await dl.path());
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
      const recipe = JSON.parse(header.__metadata__['bitlens.quantization']);
      const bits = Object.values(recipe.config.layer_bits);
      assert.equal(bits.length, 18, 'every Linear of the shipped ViT');
      assert.ok(bits.every((b) => b >= 2 && b <= 8) && new Set(bits).size > 1, `layer bits ${bits}`);
      assert.equal(param('finetune'), 'qbitopt');
      assert.equal(param('qbBudget'), '3.5');
      assert.equal(param('qbAbudget'), '6');
      assert.equal(param('qbObjective'), 'worst');
      // The whole section (the sticky run bar would cover part of it in an element screenshot).
      await page.$eval('#run', (el) => { el.style.position = 'static'; });
      saveArtifact('e2e-9-qbitopt.png', await page.locator('#qat').screenshot());
      await page.$eval('#run', (el) => { el.style.position = ''; });
    });

    test('bad budgets and epochs are readable messages; then a run without an activation budget; back to QAT', async () => {
      for (const [id, value, message] of [
        // The library's checks and messages (checkTrainingOptions: model.qat()'s), led by the field's name.
        ['qb-w', 1, /^Bit budget per weight: qat: `budget` 1 is infeasible: the smallest candidate is 2 bits, so the budget must be at least 2$/],
        ['qb-w', '', /^Bit budget per weight: qat: `budget` must be an average bit-width per weight above 0 and at most 8 \(e\.g\. 4\), got 0$/],
        ['qb-w', 9.5, /^Bit budget per weight: qat: `budget` must be an average bit-width per weight above 0 and at most 8 \(e\.g\. 4\), got 9\.5$/],
        ['qb-a', 1.5, /^Bit budget per activation: qat: `abudget` 1\.5 is infeasible: the smallest candidate is 2 bits, so the budget must be at least 2$/],
        ['qb-epochs', 0, /^Epochs: qat: `epochs` must be a whole number from 1 to 10000, got 0$/],
        ['qb-epochs', 10001, /^Epochs: qat: `epochs` must be a whole number from 1 to 10000, got 10001$/],
      ]) {
        await setField('qb-w', 4);
        await setField('qb-a', 6);
        await setField('qb-epochs', 2);
        await setField(id, value);
        await page.click('#qat-run');
        assert.match(await visibleError('qat-error'), message, `${id} = ${value}`);
        assert.equal(await page.isEnabled('#qat-run'), true, 'the page is not stuck');
      }
      // A valid run: no activation budget (the activations stay at 8 bits), 200 training images.
      await setField('qb-w', 3);
      await setField('qb-a', '');
      await setField('qb-epochs', 2);
      await setField('qat-limit', 200);
      assert.equal(param('qbAbudget'), null);
      assert.equal(param('qbBudget'), '3');
      await page.click('#qat-run');
      assert.equal(await visibleError('qat-error'), '');
      await waitDone();
      // 180 training images in batches of 64: 3 steps an epoch; allocated at the start and before steps 1 and 2.
      assert.deepEqual(await columns(), ['step 0', 'step 1', 'step 2']);
      const chart = await page.textContent('#plot-qb-alloc');
      assert.ok(chart.includes('avg per weight (budget 3)'));
      assert.ok(!chart.includes('avg per activation') && !chart.includes('blocks.0.attn.probs'), 'no activation rows without an activation budget');
      assert.match(await page.textContent('#qb-bits'), /bits per weight on average \(budget 3\), 8\.000 per activation value \(all at 8 bits\)/);
      // Back to QAT: its controls and title, no QBitOpt chart on its next results.
      await page.selectOption('#qat-method', 'qat');
      assert.equal((await page.textContent('#qat-run')).trim(), 'Fine-tune (QAT)');
      assert.equal(await page.isVisible('#qat-w'), true);
      assert.equal(await page.isVisible('#qb-w'), false);
      assert.equal(param('finetune'), null);
      assert.deepEqual(problems, []);
    });
  });
}
