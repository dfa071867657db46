// End-to-end test of a sweep spread over Web Workers (issue 19) in headless Debian Chromium: the same sweep with
// ?workers=1 (the whole sweep in the page's one worker), ?workers=2 and the default (one worker per core) gives the
// same table and the same exported JSON; progress counts the runs of every worker; the status and the results
// note say how many workers ran; Cancel during a two-worker sweep ends every worker it started and the page runs
// the next sweep.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { missingPrerequisites, saveArtifact, openPage } from './helpers.mjs';

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (sweep workers)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: a sweep over several workers', { timeout: 240_000 }, () => {
    let origin, page, close;
    const problems = [];
    const workers = { started: 0, closed: 0 };
    // 2 configurations x 3 seeds = 6 runs on 200 images, with class groups (merged like every other statistic).
    const SWEEP = `configs=w8a8,w4a4&seeds=3&calib=16&limit=200&groups=${encodeURIComponent('tops=0,2,4,6;shoes=5,7,9')}`;

    const status = () => page.textContent('#run-status');
    const waitDone = () => page.waitForFunction(() => document.getElementById('run-status').textContent.startsWith('Done')
      && !document.getElementById('results').hidden && !document.getElementById('run-btn').disabled, null, { timeout: 120_000, polling: 250 });
    // Opens the page with `query`, runs the sweep and returns what it shows: the table's and groups' cells, the
    // exported JSON, the status, the note and every progress text shown during the run.
    async function sweep(query) {
      await page.goto(`${origin}/?${query}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      await page.evaluate(() => {
        window.progressTexts = [];
        new MutationObserver(() => window.progressTexts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      });
      await page.click('#run-btn');
      await waitDone();
      const table = await page.$$eval('#results-table tbody tr, #groups-table tbody tr', (trs) => trs.map((r) => r.textContent.trim()));
      const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
      const exported = JSON.parse(readFileSync(await json.path(), 'utf8'));
      return { table, exported, status: await status(), note: await page.textContent('#results-note'), progress: await page.evaluate(() => window.progressTexts) };
    }

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
      page.on('worker', (w) => { workers.started++; w.on('close', () => workers.closed++); });
    });

    after(async () => {
      await close?.();
    });

    test('workers=1, workers=2 and the default give the same table and JSON; progress sums over the workers', async () => {
      const one = await sweep(`${SWEEP}&workers=1`);
      assert.match(one.status, /^Done: 6 quantize-and-evaluate runs in .* on 1 worker\.$/);
      assert.match(one.note, /Run on 1 worker\.$/);
      const two = await sweep(`${SWEEP}&workers=2`);
      assert.match(two.status, /^Done: 6 quantize-and-evaluate runs in .* on 2 workers\.$/);
      assert.match(two.note, /Run on 2 workers\.$/);
      assert.match(page.url(), /[?&]workers=2(&|$)/, 'the worker count stays in the URL');
      assert.ok(two.table.some((t) => t.startsWith('W4A4')) && two.table.some((t) => t.startsWith('shoes')), two.table.join(' | '));
      assert.deepEqual(two.table, one.table);
      assert.deepEqual(two.exported.result, one.exported.result, 'the exported JSON: every seed, statistic and the C++ JSON');
      assert.equal(one.exported.result.configs[1].seeds.length, 3);
      assert.equal(two.exported.settings.workers, 2);
      // Progress counts the runs of both workers: it reaches every total from 0 to 6 of 6 in order.
      const counts = two.progress.map((t) => /^(\d+) \/ 6 runs/.exec(t)).filter(Boolean).map((m) => Number(m[1]));
      assert.deepEqual(counts, [...counts].sort((a, b) => a - b), `progress never goes back: ${two.progress.join(' | ')}`);
      assert.equal(counts.at(-1), 6);
      assert.ok(new Set(counts).size >= 3, `progress moved during the run: ${two.progress.join(' | ')}`);

      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      const n = Math.max(1, Math.min(cores, 4, 6));
      const dflt = await sweep(SWEEP);
      assert.match(dflt.status, new RegExp(`on ${n} worker${n > 1 ? 's' : ''}\\.$`), `${cores} cores`);
      assert.deepEqual(dflt.table, one.table);
      assert.deepEqual(dflt.exported.result, one.exported.result);
      saveArtifact('e2e-sweep-workers.png', await page.screenshot({ fullPage: false }));
    });

    test('Cancel during a two-worker sweep ends both workers; the next sweep runs', async () => {
      await page.goto(`${origin}/?configs=w8a8,w4a4&seeds=20&limit=300&workers=2`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      const before = { ...workers };
      await page.click('#run-btn');
      await page.waitForFunction(() => /on 2 workers/.test(document.getElementById('run-status').textContent), null, { timeout: 10_000 });
      await page.waitForFunction(() => /^[1-9]\d* \/ 40 runs/.test(document.getElementById('progress-text').textContent), null, { timeout: 60_000, polling: 100 });
      assert.equal(workers.started - before.started, 1, 'one worker besides the page\'s own');
      await page.click('#cancel-btn');
      assert.match(await status(), /Cancelled/);
      await page.waitForFunction(() => /Ready to run again/.test(document.getElementById('run-status').textContent), null, { timeout: 60_000 });
      assert.equal(await page.textContent('#progress-text'), '');
      // Both workers of the sweep ended (the page's own worker is restarted: one more started).
      for (let t = 0; t < 50 && workers.closed - before.closed < 2; t++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(workers.closed - before.closed, 2, `workers closed: ${workers.closed - before.closed}`);
      assert.equal(workers.started - before.started, 2);
      await page.fill('#seeds', '2');
      await page.dispatchEvent('#seeds', 'change');
      await page.click('#run-btn');
      await waitDone();
      assert.match(await status(), /^Done: 4 quantize-and-evaluate runs in .* on 2 workers\.$/);
      const rows = await page.$$eval('#results-table tbody tr[data-config]', (trs) => trs.map((r) => r.dataset.config));
      assert.deepEqual(rows, ['W8A8', 'W4A4']);
    });

    test('no errors in the console', () => {
      assert.deepEqual(problems, []);
    });
  });
}
