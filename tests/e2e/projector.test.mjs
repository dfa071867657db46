// End-to-end test of projector mode (issue 18 item 3) in headless Debian Chromium: off by default and the page as it
// was; switched on (the toggle, or ?projector=1) at 1024×768 nothing is wider than the window and every chart's text is
// 16 px or more; the toggle round-trips through the URL; a bad value is named in the link's note. No off-origin request,
// no console error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { missingPrerequisites, openPage } from './helpers.mjs';

const SWEEP = 'configs=w8a8,w3a3&seeds=2&calib=32&limit=300&workers=1';
const missing = missingPrerequisites();
if (missing.length) {
  test('e2e prerequisites (projector mode)', () => assert.fail(`missing: ${missing.join('; ')}`));
} else {
  describe('demo page: projector mode', { timeout: 300_000 }, () => {
    let origin, page, close;
    const problems = [];
    const requests = [];
    // The page's width against the window's, what sticks out of it, and every chart text's computed size.
    const measure = () => page.evaluate(() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')].filter((e) => {
        const r = e.getBoundingClientRect();
        return r.width > 0 && !e.closest('.sr, .skip') && (r.right > vw + 0.5 || r.left < -0.5);
      }).map((e) => `${e.tagName.toLowerCase()}#${e.id}`);
      const texts = [...document.querySelectorAll('svg text')].map((t) => ({ chart: t.closest('.plot')?.id || t.closest('[id]')?.id, text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) }));
      const svgFonts = [...document.querySelectorAll('.plot > svg, .plot > figure > svg')].map((s) => getComputedStyle(s).fontSize);
      return { vw, scrollWidth: document.documentElement.scrollWidth, wide, texts, svgFonts, body: document.body.className, checked: document.getElementById('projector').checked };
    });
    const sweep = async () => {
      await page.click('#run-btn');
      await page.waitForFunction(() => document.getElementById('run-status').textContent.startsWith('Done'), null, { timeout: 180_000, polling: 250 });
      await page.waitForSelector('#plot-box svg');
      await page.waitForSelector('#plot-bars svg');
      await page.waitForSelector('#plot-confusion svg');
      await page.waitForSelector('#plot-hist svg');
      await page.waitForSelector('#plot-attention svg');
      await page.waitForFunction(() => document.querySelector('#flips-broken li, #flips-fixed li'), null, { timeout: 60_000 });
    };
    const charts = ['plot-box', 'plot-bars', 'plot-confusion', 'plot-hist', 'plot-attention'];

    before(async () => {
      ({ origin, page, close } = await openPage(problems));
      page.on('request', (r) => requests.push(r.url()));
      await page.setViewportSize({ width: 1024, height: 768 });
    });
    after(async () => { await close?.(); });

    test('off by default: no toggle in the URL, the charts at their own 14 px', async () => {
      await page.goto(`${origin}/?${SWEEP}`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      await sweep();
      const m = await measure();
      assert.equal(m.checked, false);
      assert.doesNotMatch(m.body, /projector/);
      assert.doesNotMatch(page.url(), /projector/);
      assert.ok(m.svgFonts.length >= charts.length && m.svgFonts.every((f) => f === '14px'), m.svgFonts.join(', '));
      assert.ok(m.texts.some((t) => t.px < 16), 'without projector mode some chart text stays small (the page is as it was)');
    });

    test('switched on at 1024×768: nothing wider than the window, every chart text ≥ 16 px, and the URL says so', async () => {
      await page.check('#projector');
      await page.waitForFunction(() => document.body.classList.contains('projector'));
      assert.match(page.url(), /[?&]projector=1(&|$)/);
      await page.waitForTimeout(800);  // the charts are drawn again (the page's resize handler)
      const live = await measure();
      assert.ok(live.scrollWidth <= 1024, `scrollWidth ${live.scrollWidth}: ${live.wide.join(', ')}`);
      assert.deepEqual(live.texts.filter((t) => t.px < 16), []);
      // The link opens in projector mode, and a sweep there draws every chart at that size.
      await page.goto(page.url());
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      await sweep();
      await page.waitForTimeout(500);
      const m = await measure();
      assert.equal(m.checked, true);
      assert.match(m.body, /projector/);
      assert.equal(m.vw, 1024);
      assert.ok(m.scrollWidth <= 1024, `scrollWidth ${m.scrollWidth}: ${m.wide.join(', ')}`);
      assert.deepEqual(m.wide, []);
      for (const id of charts) assert.ok(m.texts.some((t) => t.chart === id), `chart ${id} has text`);
      assert.deepEqual(m.texts.filter((t) => t.px < 16), []);
      assert.ok(m.svgFonts.every((f) => f === '16px'), m.svgFonts.join(', '));
      // Off again: out of the URL and back to 14 px.
      await page.uncheck('#projector');
      await page.waitForFunction(() => !document.body.classList.contains('projector'));
      assert.doesNotMatch(page.url(), /projector/);
      await page.waitForTimeout(800);
      assert.ok((await measure()).texts.some((t) => t.px < 16));
    });

    test('a bad value is named in the link\'s note and not used', async () => {
      await page.goto(`${origin}/?projector=yes`);
      await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
      assert.match(await page.textContent('#url-note'), /projector=yes: must be 0 or 1/);
      assert.equal(await page.isChecked('#projector'), false);
    });

    test('no off-origin request, no console error', () => {
      const foreign = [...new Set(requests)].filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'));
      assert.deepEqual(foreign, []);
      assert.deepEqual(problems, []);
    });
  });
}
