// End-to-end test of structured pruning and the compression trade-off on the demo page in headless Debian Chromium:
// the Compress section's URL parameters, a prune run with progress, the Pareto chart of the unpruned and the pruned model
// at FP32 and W8A8 … W3A3 (points, labels, the frontier), the table's numbers, each layer's kept heads and MLP width with
// the importance that chose them, the pruned model's download, a second run at other ratios adding its points, the axis
// toggles, Cancel, and bad entries as readable messages after which the page still runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { unzipSync } from 'fflate';
import { missingPrerequisites, saveArtifact, openPage } from './helpers.mjs';

const PRECISIONS = ['W8A8', 'W6A6', 'W4A4', 'W3A3'];
const labelsOf = (model) => (model ? [model, ...PRECISIONS.map((p) => `${model} + ${p}`)] : ['FP32', ...PRECISIONS]);

const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (pruning)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: structured pruning and the trade-off', { timeout: 240_000 }, () => {
    let origin, page, close;
    const problems = [];
    const visibleError = (id) => page.$eval(`#${id}`, (el) => (el.hidden ? '' : el.textContent));
    const setField = async (id, value) => { await page.fill(`#${id}`, String(value)); await page.dispatchEvent(`#${id}`, 'change'); };
    const waitDone = () => page.waitForFunction(() => /^Pruning done/.test(document.getElementById('run-status').textContent)
      && !document.getElementById('pr-run').disabled, null, { timeout: 150_000, polling: 250 });
    const param = (k) => new URL(page.url()).searchParams.get(k);
    const chartCount = (what) => page.$$eval(`#plot-pareto svg g[aria-description="${what}"] > *`, (x) => x.length);
    // Every row of the points table: its label, frontier mark and the numbers its cells hold.
    const tableRows = () => page.$$eval('#pr-points tbody tr[data-point]', (rows) => rows.map((r) => {
      const v = (c) => Number(r.querySelector(`td.${c}`).dataset.value);
      return { label: r.dataset.point, model: r.dataset.model, precision: r.dataset.precision, frontier: r.classList.contains('frontier'),
        bytes: v('bytes'), ms: v('ms'), top1: v('top1'), worst: v('worst'), worstText: r.querySelector('td.worst').textContent.trim() };
    }));
    const layerRows = (model) => page.$$eval(`.pr-model[data-model="${model}"] .pr-layers tbody tr`, (rows) => rows.map((r) => ({
      heads: r.querySelector('td.heads').firstChild.textContent.trim(), mlp: r.querySelector('td.mlp').textContent.trim(),
      removedBars: r.querySelectorAll('svg.heads g.removed').length, keptBars: r.querySelectorAll('svg.heads g.kept').length,
      units: r.querySelectorAll('svg.units rect').length,
    })));
    // The frontier the table marks is the Pareto set of (x, y): nothing else at most as large and at least as accurate.
    const checkFrontier = (rows, x, y) => {
      for (const p of rows) {
        const dominated = rows.some((q) => q !== p && q[x] <= p[x] && q[y] >= p[y] && (q[x] < p[x] || q[y] > p[y]));
        assert.equal(p.frontier, !dominated, `${p.label} on the ${x}/${y} frontier`);
      }
    };

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
    });

    after(async () => {
      await close?.();
    });

    test('a prune run from the URL: progress, the Pareto chart of FP32 and pruned points with its frontier, the table, half the heads per layer, the download; a second run at other ratios adds points', async () => {
      await page.goto(`${origin}/?keepHeads=0.5&keepMlp=0.5&pruneEpochs=1&pruneLimit=300&importanceImages=128&calib=16&limit=300`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.equal(await page.inputValue('#pr-heads'), '0.5');
      assert.equal(await page.inputValue('#pr-mlp'), '0.5');
      assert.equal(await page.inputValue('#pr-epochs'), '1');
      assert.equal(await page.inputValue('#pr-limit'), '300');
      assert.equal(await page.inputValue('#pr-imp-images'), '128');
      assert.equal(await page.inputValue('#pr-importance'), 'taylor');
      assert.equal(await page.isChecked('#pr-distill'), true, 'distillation is on by default on the page');
      assert.equal(await page.isVisible('#pr-results'), false);
      assert.match(await page.textContent('#pr-estimate'), /ranking by Taylor importance on 128 training images, 1 recovery epoch on 270 \(30 held out\), then FP32, W8A8, W6A6, W4A4, W3A3 each quantized, evaluated on 300 images and timed/);
      await page.evaluate(() => {
        window.__texts = [];
        new MutationObserver(() => window.__texts.push(document.getElementById('progress-text').textContent))
          .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      });
      await page.click('#pr-run');
      await waitDone();
      assert.equal(await visibleError('pr-error'), '');
      // 270 training images in batches of 64: 5 steps; then the unpruned model and the pruned one measured.
      const texts = await page.evaluate(() => window.__texts);
      assert.ok(texts.some((t) => /^Pruning h0\.5\/m0\.5: epoch 1\/1, step [1-5]\/5 · loss \d\.\d{4}/.test(t)), texts.join(' | '));
      assert.ok(texts.some((t) => /^Measuring FP32: quantizing to W4A4 and evaluating… \(4 of 6\)$/.test(t)), texts.join(' | '));
      assert.ok(texts.some((t) => /^Measuring h0\.5\/m0\.5: timing the forward passes… \(6 of 6\)$/.test(t)), texts.join(' | '));
      assert.match(await page.textContent('#run-status'), /^Pruning done in .*: h0\.5\/m0\.5 keeps \d\d% of the parameters; FP32 top-1 \d+\.\d% \(unpruned \d+\.\d%\), with W4A4 \d+\.\d%\. \d+ of the 10 points are on the frontier of size against top-1\.$/);

      // The chart: 2 models × 5 precisions, each labelled; the frontier drawn through its ringed points.
      assert.equal(await chartCount('pareto point'), 10);
      assert.equal(await chartCount('pareto frontier'), 1);
      const chartText = await page.textContent('#plot-pareto');
      for (const l of [...labelsOf(null), ...labelsOf('h0.5/m0.5')]) assert.ok(chartText.includes(l), `${l} labelled in the chart`);
      assert.match(chartText, /model size \(bytes, log scale\)/);
      // The table: every point with numbers; sizes shrink with the bits and with pruning; the frontier is the Pareto set.
      let rows = await tableRows();
      assert.deepEqual(rows.map((r) => r.label), [...labelsOf(null), ...labelsOf('h0.5/m0.5')]);
      for (const r of rows) {
        assert.ok(Number.isInteger(r.bytes) && r.bytes > 10_000, `${r.label} bytes ${r.bytes}`);
        assert.ok(Number.isFinite(r.ms) && r.ms > 0 && r.ms < 100, `${r.label} ms ${r.ms}`);
        assert.ok(r.top1 > 0.5 && r.top1 <= 1, `${r.label} top-1 ${r.top1}`);
        assert.ok(r.worst >= 0 && r.worst <= r.top1, `${r.label} worst ${r.worst}`);
        assert.match(r.worstText, /^[A-Za-z/ -]+ \d+\.\d%$/);
      }
      const byLabel = Object.fromEntries(rows.map((r) => [r.label, r]));
      for (const model of [null, 'h0.5/m0.5']) {
        const sizes = labelsOf(model).map((l) => byLabel[l].bytes);
        for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i] < sizes[i - 1], `${labelsOf(model)[i]} smaller than ${labelsOf(model)[i - 1]}`);
      }
      assert.ok(byLabel['h0.5/m0.5'].bytes < 0.6 * byLabel.FP32.bytes, 'half the heads and units: a much smaller FP32 model');
      checkFrontier(rows, 'bytes', 'top1');
      assert.ok(rows.filter((r) => r.frontier).length >= 2);
      assert.ok(byLabel['h0.5/m0.5 + W3A3'].frontier || byLabel.W3A3.frontier, 'the smallest point is on the frontier');
      assert.equal(await chartCount('pareto frontier point'), rows.filter((r) => r.frontier).length);
      // Per layer: 2 of 4 heads (two bars crossed out) and 64 of 128 MLP units, each unit's importance drawn.
      const layers = await layerRows('h0.5/m0.5');
      assert.equal(layers.length, 4);
      for (const l of layers) assert.deepEqual(l, { heads: '2 / 4', mlp: '64 / 128', removedBars: 2, keptBars: 2, units: 128 });
      const summary = await page.textContent('.pr-model[data-model="h0.5/m0.5"] p');
      assert.match(summary, /^\s*[\d,]+ of [\d,]+ parameters \(\d+% fewer\)\.\s+Ranked by Taylor importance on 128 training images\. Held-out top-1 right after pruning \d+\.\d%/);
      assert.match(summary, /after recovery \(epoch [01] of 1 kept\)/);
      assert.match(summary, /distilled from the FP32 model/);
      assert.doesNotMatch(await page.textContent('#prune'), /undefined|NaN/);

      // The download: a model folder whose config.json records what was pruned.
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('.pr-model[data-model="h0.5/m0.5"] .pr-export')]);
      assert.equal(dl.suggestedFilename(), 'vit-fmnist-hf-h0.5-m0.5.zip');
      const files = unzipSync(new Uint8Array(readFileSync(await dl.path())));
      assert.deepEqual(Object.keys(files).sort(), ['vit-fmnist-hf-h0.5-m0.5/config.json', 'vit-fmnist-hf-h0.5-m0.5/model.safetensors', 'vit-fmnist-hf-h0.5-m0.5/preprocessor_config.json']);
      const config = JSON.parse(new TextDecoder().decode(files['vit-fmnist-hf-h0.5-m0.5/config.json']));
      assert.equal(Object.values(config.pruned_heads).reduce((n, h) => n + h.length, 0), 8, 'two heads removed in each of the 4 layers');

      // A second run at other ratios, no recovery: its 5 points join the chart and the table.
      await setField('pr-heads', 0.75);
      await setField('pr-mlp', 0.25);
      await setField('pr-epochs', 0);
      await page.click('#pr-run');
      assert.equal(await visibleError('pr-error'), '');
      await waitDone();
      assert.equal(await chartCount('pareto point'), 15);
      rows = await tableRows();
      assert.deepEqual(rows.map((r) => r.label), [...labelsOf(null), ...labelsOf('h0.5/m0.5'), ...labelsOf('h0.75/m0.25')]);
      for (const r of rows) assert.ok(r.bytes > 0 && r.ms > 0 && r.top1 > 0 && r.worst >= 0, r.label);
      checkFrontier(rows, 'bytes', 'top1');
      const layers2 = await layerRows('h0.75/m0.25');
      for (const l of layers2) assert.deepEqual(l, { heads: '3 / 4', mlp: '32 / 128', removedBars: 1, keptBars: 3, units: 128 });
      assert.match(await page.textContent('.pr-model[data-model="h0.75/m0.25"] p'), /No recovery \(0 epochs\)/);
      assert.equal(param('keepHeads'), '0.75');
      assert.equal(param('keepMlp'), '0.25');
      assert.equal(param('pruneEpochs'), '0');
      assert.equal(param('pruneLimit'), '300');
      // The whole section (the sticky run bar would cover part of it in an element screenshot).
      await page.$eval('#run', (el) => { el.style.position = 'static'; });
      saveArtifact('e2e-10-prune.png', await page.locator('#prune').screenshot());
      await page.$eval('#run', (el) => { el.style.position = ''; });

      // The axes: latency instead of size, the worst class instead of top-1; the frontier follows, the URL keeps them.
      await page.selectOption('#pr-x', 'ms');
      assert.match(await page.textContent('#plot-pareto'), /forward latency \(ms per image, WASM\)/);
      checkFrontier(await tableRows(), 'ms', 'top1');
      await page.selectOption('#pr-y', 'worst');
      assert.match(await page.textContent('#pareto-caption'), /^Latency against worst-class accuracy/);
      assert.match(await page.textContent('#plot-pareto'), /worst-class accuracy on the evaluation images/);
      checkFrontier(await tableRows(), 'ms', 'worst');
      assert.equal(await chartCount('pareto point'), 15);
      assert.equal(param('paretoX'), 'ms');
      assert.equal(param('paretoY'), 'worst');
      await page.selectOption('#pr-x', 'bytes');
      await page.selectOption('#pr-y', 'top1');
      assert.equal(param('paretoX'), null);
      assert.deepEqual(problems, []);
    });

    test('Cancel stops a prune run and keeps the points; bad entries are readable messages and the page still runs', async () => {
      // Cancel during recovery: the measured points stay, the pruned models can no longer be downloaded.
      await setField('pr-heads', 0.25);
      await setField('pr-mlp', 0.5);
      await setField('pr-epochs', 5);
      await page.click('#pr-run');
      await page.waitForFunction(() => /^Pruning h0\.25\/m0\.5: epoch 1\/5, step/.test(document.getElementById('progress-text').textContent), null, { timeout: 60_000, polling: 100 });
      await page.click('#cancel-btn');
      await page.waitForFunction(() => document.getElementById('run-status').textContent === 'Cancelled. Ready to run again.', null, { timeout: 60_000, polling: 250 });
      assert.equal(await chartCount('pareto point'), 15);
      assert.match(await page.textContent('#pr-points tr.cancelled'), /^Cancelled while pruning h0\.25\/m0\.5\.$/);
      assert.equal(await page.$$eval('.pr-export', (b) => b.length), 0, 'no downloads of models the restarted worker no longer holds');
      assert.equal(await page.$$eval('.pr-model', (m) => m.length), 2);

      for (const [id, value, message] of [
        // The library's checks and messages (checkTrainingOptions: model.prune()'s), led by the field's name.
        ['pr-heads', 0, /^Keep attention heads: prune: `keepHeads` must be a fraction in \(0, 1\] of each layer's attention heads, got 0$/],
        ['pr-heads', 1.5, /^Keep attention heads: prune: `keepHeads` must be a fraction in \(0, 1\] of each layer's attention heads, got 1\.5$/],
        ['pr-heads', '', /^Keep attention heads: prune: `keepHeads` must be .*, got an empty field or one that is not a number$/],
        ['pr-mlp', -0.5, /^Keep MLP units: prune: `keepMlp` must be a fraction in \(0, 1\] of each layer's MLP units, got -0\.5$/],
        ['pr-epochs', 1.5, /^Recovery epochs: prune: `epochs` must be a whole number from 0 to 10000 \(0: no recovery\), got 1\.5$/],
        ['pr-epochs', 10001, /^Recovery epochs: prune: `epochs` must be a whole number from 0 to 10000/],
        ['pr-limit', 1, /^Use at least 2 training images/],
      ]) {
        await setField('pr-heads', 0.5);
        await setField('pr-mlp', 0.5);
        await setField('pr-epochs', 0);
        await setField('pr-limit', 300);
        await setField(id, value);
        await page.click('#pr-run');
        assert.match(await visibleError('pr-error'), message, `${id} = ${value}`);
        assert.equal(await page.isEnabled('#pr-run'), true, 'the page is not stuck');
      }
      // A fraction that leaves a layer no head (round(0.1 × 4) = 0) or no unit: the API's message, before any run.
      await setField('pr-limit', 300);
      for (const [id, value, message] of [
        ['pr-heads', 0.1, /^Keep attention heads: prune: `keepHeads` 0\.1 keeps none of the 4 attention heads of layer 0/],
        ['pr-mlp', 0.001, /^Keep MLP units: prune: `keepMlp` 0\.001 keeps none of the 128 MLP units of layer 0/],
      ]) {
        await setField('pr-heads', 0.5);
        await setField('pr-mlp', 0.5);
        await setField(id, value);
        await page.click('#pr-run');
        await page.waitForFunction(() => !document.getElementById('pr-error').hidden && !document.getElementById('pr-run').disabled, null, { timeout: 30_000, polling: 100 });
        assert.match(await visibleError('pr-error'), message);
        assert.equal(await page.$$eval('#pr-points tr.pending', (r) => r.length), 0, 'no run left pending');
        assert.equal(await chartCount('pareto point'), 15);
      }
      // The page still runs: a valid prune in the restarted worker adds its points.
      await setField('pr-heads', 0.5);
      await setField('pr-mlp', 0.75);
      await setField('pr-epochs', 0);
      await page.click('#pr-run');
      assert.equal(await visibleError('pr-error'), '');
      await waitDone();
      const rows = await tableRows();
      assert.equal(rows.length, 20);
      assert.deepEqual(rows.slice(15).map((r) => r.label), labelsOf('h0.5/m0.75'));
      assert.deepEqual(await layerRows('h0.5/m0.75').then((l) => l.map((x) => `${x.heads}, ${x.mlp}`)), new Array(4).fill('2 / 4, 96 / 128'));
      assert.equal(await page.$$eval('.pr-export', (b) => b.length), 1, 'the new model can be downloaded');
      assert.deepEqual(problems, []);
    });
  });
}
