// End-to-end test of INQ (power-of-two weights, incrementally) on the demo page in headless Debian Chromium:
// the fine-tune method selector (and its URL parameters), progress per partition step and training step, the
// step table and chart, PTQ against INQ per class, the download, bad partitions, and a cancel after which the
// page keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LABELS, missingPrerequisites, saveArtifact, openPage } from './helpers.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (INQ)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: INQ', { timeout: 170_000 }, () => {
    let origin, page, close;
    const problems = [];
    const visibleError = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent));
    const setField = async (id, value) => { await page.fill(`#${id}`, String(value)); await page.dispatchEvent(`#${id}`, 'change'); };
    const waitInqDone = () => page.waitForFunction(() => /^INQ done/.test(document.getElementById('run-status').textContent)
      && !document.getElementById('inq-compare-wrap').hidden && !document.getElementById('qat-run').disabled, null, { timeout: 120_000, polling: 250 });
    const param = (k) => new URL(page.url()).searchParams.get(k);

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
    });

    after(async () => {
      await close?.();
    });

    test('INQ from the URL on the shipped training subset: progress per step, the step chart, PTQ against INQ per class, the download', async () => {
      await page.goto(`${origin}/?finetune=inq&inq=w2a8&partitions=50,100&trainLimit=500&calib=16&limit=300`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.equal(await page.inputValue('#qat-method'), 'inq');
      assert.equal(await page.inputValue('#inq-w'), '2');
      assert.equal(await page.inputValue('#inq-partitions'), '50,100');
      assert.equal(await page.isVisible('#inq-partitions'), true);
      assert.equal(await page.isVisible('#qat-w'), false);
      assert.equal(await page.isVisible('#qat-epochs'), false);
      assert.equal((await page.textContent('#qat-run')).trim(), 'Fine-tune (INQ)');
      assert.match(await page.textContent('#qat-estimate'), /for 2 partition steps \(1 epoch of retraining after each but the last\) on 450 training images \(50 held out\)/);
      await page.evaluate(() => {
        window.__inqTexts = [];
        new MutationObserver(() => window.__inqTexts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      });
      await page.click('#qat-run');
      await waitInqDone();
      assert.equal(await visibleError('qat-error'), '');
      const texts = await page.evaluate(() => window.__inqTexts);
      assert.ok(texts.some((t) => /^INQ W2A8: step 1\/2 \(50% frozen\), training step \d+\/8 · loss \d\.\d{4}/.test(t)), texts.join(' | '));
      assert.match(await page.textContent('#run-status'), /^INQ done in .*: W2A8 with every weight a power of two; PTQ's worst class \S+ \d+\.\d% → \d+\.\d%, top-1 \d+\.\d% → \d+\.\d%\./);

      // One row per partition step (0 = PTQ), each with a plausible top-1 right after freezing.
      const steps = await page.$$eval('#inq-steps-table tbody tr[data-step]', (trs) => trs.map((r) => ({
        step: r.dataset.step, frozenTop1: Number.parseFloat(r.querySelector('td.frozen-top1').textContent) / 100, top1: r.querySelector('td.top1').textContent,
      })));
      assert.deepEqual(steps.map((s) => s.step), ['0', '1', '2']);
      for (const s of steps) assert.ok(s.frozenTop1 > 0.5 && s.frozenTop1 <= 1, `step ${s.step}: ${s.frozenTop1}`);
      assert.match(steps[1].top1, /^\d+\.\d\d%$/, 'step 1 retrains');
      assert.equal(steps[2].top1, '—', 'the 100% step only freezes');
      // The chart: the sawtooth's points (PTQ, 50% frozen, retrained, 100% frozen; two series) and FP32's lines.
      await page.waitForSelector('#plot-inq-steps svg');
      const chart = await page.textContent('#plot-inq-steps');
      for (const t of ['PTQ', '50%', 'frozen', 'retrained', '100%', 'validation top-1', 'worst class']) assert.ok(chart.includes(t), `${t} in the chart`);
      assert.match(chart, /FP32 top-1\s*\d+\.\d%/);
      assert.equal(await page.$$eval('#plot-inq-steps svg circle', (c) => c.length), 8, 'two series × four points');
      // PTQ against INQ on the evaluation images, and per class.
      const cmp = await page.$$eval('#inq-compare tbody tr', (trs) => trs.map((r) => ({
        model: r.dataset.model, top1: Number.parseFloat(r.querySelector('td.top1').textContent) / 100,
      })));
      assert.deepEqual(cmp.map((r) => r.model), ['fp32', 'ptq', 'inq']);
      for (const r of cmp) assert.ok(r.top1 > 0.5 && r.top1 <= 1, `${r.model} top-1 ${r.top1}`);
      await page.waitForSelector('#plot-inq-classes svg');
      const classes = await page.textContent('#plot-inq-classes');
      for (const l of LABELS) assert.ok(classes.includes(l), `${l} in the per-class chart`);
      assert.ok(await page.$$eval('#plot-inq-classes svg circle', (c) => c.length) >= 20, 'PTQ and INQ dots per class');
      assert.match(await page.textContent('#inq-note'), /Every weight is a power of two \(2 bits.*on 450 images.*50 held out.*Evaluated on the 300 evaluation images/);
      assert.doesNotMatch(await page.textContent('#qat'), /undefined|NaN/);
      // The INQ model downloads as a quantized safetensors with power-of-two weights.
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#inq-export')]);
      assert.match(dl.suggestedFilename(), /W2A8-inq\.safetensors$/);
      const bytes = readFileSync(await dl.path());
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
      const recipe = JSON.parse(header.__metadata__['bitlens.quantization']);
      assert.equal(recipe.config.name, 'W2A8');
      assert.equal(recipe.config.weights, 'pow2');
      assert.equal(param('finetune'), 'inq');
      assert.equal(param('partitions'), '50,100');
      assert.equal(param('inq'), 'w2a8');
      // The whole section (the sticky run bar would cover part of it in an element screenshot).
      await page.$eval('#run', (el) => { el.style.position = 'static'; });
      saveArtifact('e2e-8-inq.png', await page.locator('#qat').screenshot());
      await page.$eval('#run', (el) => { el.style.position = ''; });
    });

    test('bad partitions are readable errors; cancel stops an INQ run and the next one runs; back to QAT', async () => {
      for (const [text, message] of [
        // The numbers are checked by the library (checkTrainingOptions: model.inq()'s messages); the text by the page.
        ['50,40,100', /^inq: `partitions` must increase: 50 is followed by 40$/],
        ['50,75', /^inq: the last of `partitions` must be 100 \(every weight a power of two\), got 75$/],
        ['half,100', /^Partitions must be percentages separated by commas, e\.g\. 50,75,87\.5,100 \(found “half,100”\)\.$/],
      ]) {
        await setField('inq-partitions', text);
        await page.click('#qat-run');
        assert.match(await visibleError('qat-error'), message);
      }
      assert.equal(await page.textContent('#qat-estimate'), '', 'no estimate for partitions that do not parse');
      // Activation bits the quantizer refuses: checked in C++ through the worker (bl.checkTraining), before any run.
      await setField('inq-partitions', '50,100');
      await setField('inq-a', 9);
      await page.click('#qat-run');
      await page.waitForFunction(() => !document.getElementById('qat-error').hidden, null, { timeout: 30_000, polling: 100 });
      assert.equal(await visibleError('qat-error'), 'activations (--abits): bit-width 9 is outside 2-8');
      assert.equal(await page.isEnabled('#qat-run'), true, 'no run started');
      await setField('inq-a', 8);
      // A long run (all 4,500 training images, 3 epochs per step), cancelled while retraining.
      await setField('inq-partitions', '50,100');
      await setField('inq-epochs', 3);
      await setField('qat-limit', 0);
      assert.equal(param('epochsPerStep'), '3');
      await page.click('#qat-run');
      assert.equal(await visibleError('qat-error'), '');
      await page.waitForFunction(() => /^INQ W2A8: step 1\/2 \(50% frozen\), training step [1-9]\d*\/213/.test(document.getElementById('progress-text').textContent),
        null, { timeout: 90_000, polling: 50 });
      await page.click('#cancel-btn');
      assert.match(await page.textContent('#run-status'), /Cancelled/);
      await page.waitForFunction(() => /Ready to run again/.test(document.getElementById('run-status').textContent), null, { timeout: 60_000 });
      assert.match(await page.textContent('#inq-steps-table'), /Cancelled during step 1 of 2\./);
      assert.equal(await page.textContent('#progress-text'), '');
      assert.equal(await page.isEnabled('#qat-run'), true);
      // Runs again to the end (the restarted worker has the training images again).
      await setField('inq-epochs', 1);
      await setField('qat-limit', 120);
      await page.click('#qat-run');
      await waitInqDone();
      assert.deepEqual(await page.$$eval('#inq-steps-table tbody tr[data-step]', (r) => r.map((x) => x.dataset.step)), ['0', '1', '2']);
      // And back to QAT: its controls, no INQ parameters in the URL.
      await page.selectOption('#qat-method', 'qat');
      assert.equal((await page.textContent('#qat-run')).trim(), 'Fine-tune (QAT)');
      assert.equal(await page.isVisible('#qat-w'), true);
      assert.equal(await page.isVisible('#inq-partitions'), false);
      assert.equal(param('finetune'), null);
      assert.deepEqual(problems, []);
    });
  });
}
