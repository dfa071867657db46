// End-to-end test of SOS reconstruction on the demo page in headless Debian Chromium: the method selector
// (and its URL parameters), progress per stage, block and iteration, the per-stage table, the per-class chart
// and the blocks' errors, the download, bad settings, and a cancel after which the page keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LABELS, missingPrerequisites, saveArtifact, openPage } from './helpers.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (SOS)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: SOS reconstruction', { timeout: 170_000 }, () => {
    let origin, page, close;
    const problems = [];
    const visibleError = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent));
    const setField = async (id, value) => { await page.fill(`#${id}`, String(value)); await page.dispatchEvent(`#${id}`, 'change'); };
    const waitSosDone = () => page.waitForFunction(() => /^SOS reconstruction done/.test(document.getElementById('run-status').textContent)
      && !document.getElementById('run-btn').disabled, null, { timeout: 120_000, polling: 250 });
    // The per-stage table's rows: { config, cells: { stage → text } }.
    const stageRows = () => page.$$eval('#sos-table tbody tr[data-config]', (trs) => trs.map((tr) => ({
      config: tr.dataset.config,
      cells: Object.fromEntries([...tr.querySelectorAll('td[data-stage]')].map((td) => [td.dataset.stage, td.textContent.trim()])),
    })));

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
    });

    after(async () => {
      await close?.();
    });

    test('SOS from the URL: progress per stage, block and iteration; every stage evaluated; the per-class chart; the download', async () => {
      await page.goto(`${origin}/?configs=w3a3&method=sos&reconIters=3&calib=16&limit=300`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.equal(await page.inputValue('#method'), 'sos');
      assert.equal(await page.inputValue('#recon-iters'), '3');
      assert.equal(await page.isVisible('#recon-iters'), true);
      assert.equal((await page.textContent('#run-btn')).trim(), 'Run SOS reconstruction');
      await page.evaluate(() => {
        window.__sosTexts = [];
        new MutationObserver(() => window.__sosTexts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      });
      await page.click('#run-btn');
      await waitSosDone();
      assert.equal(await visibleError('run-error'), '');
      const texts = await page.evaluate(() => window.__sosTexts);
      // Iteration progress in both reconstruction stages (the page shows at most one update per 100 ms, and
      // always a block's last iteration).
      for (const re of [/^W3A3 · stage 1 · block 1\/4 · iteration 3\/3 · MSE \d\.\d\de-\d+/, /^W3A3 · stage 3 · block 4\/4 · iteration 3\/3 · MSE/]) {
        assert.ok(texts.some((t) => re.test(t)), `${re} in ${texts.join(' | ')}`);
      }
      assert.match(await page.textContent('#run-status'), /^SOS reconstruction done in .*: PTQ's worst class before and after, W3A3 \S+ \d+\.\d% → \d+\.\d%\./);

      // PTQ and the three stages, each with a top-1 and PTQ's worst class.
      const rows = await stageRows();
      assert.deepEqual(rows.map((r) => r.config), ['W3A3']);
      assert.deepEqual(Object.keys(rows[0].cells), ['0', '1', '2', '3']);
      for (const t of Object.values(rows[0].cells)) {
        const top1 = Number.parseFloat(t) / 100;
        assert.ok(top1 > 0.5 && top1 <= 1, t);
        assert.ok(LABELS.some((l) => t.includes(l)), `a class named in ${t}`);
      }
      // The chart: a panel with the four stages on the x axis and the class lines.
      await page.waitForSelector('#plot-sos-classes svg');
      const chart = await page.textContent('#plot-sos-classes');
      for (const s of ['PTQ', 'stage 1', 'stage 2', 'stage 3', 'top-1']) assert.ok(chart.includes(s), `${s} in the chart`);
      assert.ok(await page.$$eval('#plot-sos-classes svg circle', (c) => c.length) >= 4 * 10, 'a dot per class and stage');
      // Each block's error before and after, in stages 1 and 3.
      assert.equal(await page.$$eval('#sos-blocks tbody tr', (r) => r.length), 2);
      assert.equal(await page.$$eval('#sos-blocks tbody td', (c) => c.filter((td) => /→/.test(td.textContent)).length), 8);
      assert.doesNotMatch(await page.textContent('#sos'), /undefined|NaN/);
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#sos-table button[data-sos-export="W3A3"]')]);
      assert.match(dl.suggestedFilename(), /W3A3-sos\.safetensors$/);
      saveArtifact('e2e-7-sos.png', await page.locator('#sos').screenshot());
    });

    test('bad SOS settings are readable errors; cancel stops a run and the page keeps working', async () => {
      await setField('recon-iters', -1);
      await page.click('#run-btn');
      // The library's check and message (model.quantize({ method: 'sos' })'s), led by the field's name.
      assert.equal((await visibleError('run-error')).trim(), 'Reconstruction iterations: quantize: `reconIters` must be a whole number ≥ 0 (iterations per block and stage), got -1');
      await setField('recon-iters', 3);
      await setField('calib', 5000);
      await page.click('#run-btn');
      assert.match(await visibleError('run-error'), /calibration size \(5000\) is larger than the 1000 images loaded/);
      await setField('calib', 16);
      // A long run (two configurations, in the page's order: W4A4 then W3A3; 200 iterations), cancelled during stage 1.
      await setField('recon-iters', 200);
      await page.check('input[name=config][value=W4A4]');
      assert.match(page.url(), /method=sos/);
      assert.match(page.url(), /reconIters=200/);
      await page.click('#run-btn');
      await page.waitForFunction(() => /^W4A4 \(1 of 2\) · stage 1 · block [1-4]\/4 · iteration [1-9]\d*\/200/.test(document.getElementById('progress-text').textContent),
        null, { timeout: 60_000, polling: 50 });
      await page.click('#cancel-btn');
      assert.match(await page.textContent('#run-status'), /Cancelled/);
      await page.waitForFunction(() => /Ready to run again/.test(document.getElementById('run-status').textContent), null, { timeout: 60_000 });
      assert.match(await page.textContent('#sos-table'), /Cancelled during W4A4\./);
      assert.equal(await page.textContent('#progress-text'), '');
      assert.equal(await page.isEnabled('#run-btn'), true);
      // Runs again to the end: both configurations.
      await setField('recon-iters', 2);
      await page.click('#run-btn');
      await waitSosDone();
      assert.deepEqual((await stageRows()).map((r) => [r.config, Object.keys(r.cells).length]), [['W4A4', 4], ['W3A3', 4]]);
      // And back to PTQ: an ordinary sweep.
      await page.selectOption('#method', 'ptq');
      assert.equal((await page.textContent('#run-btn')).trim(), 'Run sweep');
      assert.equal(await page.isVisible('#recon-iters'), false);
      assert.doesNotMatch(page.url(), /method=|reconIters/);
      await setField('seeds', 1);
      await page.click('#run-btn');
      await page.waitForFunction(() => document.getElementById('run-status').textContent.startsWith('Done') && !document.getElementById('results').hidden,
        null, { timeout: 120_000, polling: 250 });
      assert.deepEqual(await page.$$eval('#results-table tbody tr[data-config]', (r) => r.map((x) => x.dataset.config)), ['W4A4', 'W3A3']);
      assert.deepEqual(problems, []);
    });
  });
}
