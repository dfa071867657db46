// The lifetime and abuse tests again, on the AddressSanitizer build of the module (issue 17, item 4): a read of
// freed memory, an overflow or a double free anywhere JS can reach stops with ASan's report instead of returning
// garbage ("the model expects 1885299813x1953720686x1936286815", Found 7). `npm run build:wasm-asan` builds it into
// build/wasm-asan/pkg/web (bitlens.js beside its own lib/); the tests load it through BITLENS_JS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { path } from './helpers.mjs';

const pkg = path('build/wasm-asan/pkg/web/bitlens.js');
const wasm = path('build/wasm-asan/pkg/web/lib/bitlens-core.wasm');

test('the lifetime and abuse tests pass on the AddressSanitizer build, with no ASan report', () => {
  assert.ok(existsSync(pkg) && existsSync(wasm), `no ASan build at ${pkg}: run \`npm run build:wasm-asan\` (npm test does)`);
  assert.ok(statSync(pkg).mtimeMs >= statSync(path('web/bitlens.js')).mtimeMs,
    'the ASan build\'s copy of web/bitlens.js is older than web/bitlens.js: run `npm run build:wasm-asan`');
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', path('tests/node/lifetime.test.mjs'), path('tests/node/abuse.test.mjs')], {
    // Without NODE_TEST_CONTEXT (set by an outer `node --test`), the child runs its files itself.
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), BITLENS_JS: pkg },
    encoding: 'utf8', maxBuffer: 64 << 20,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  const report = out.split('\n').filter((l) => /AddressSanitizer|SUMMARY:|^# *#\d+ /.test(l)).slice(0, 12).join('\n');
  assert.equal(report, '', 'ASan reported');
  assert.equal(r.status, 0, `the tests failed on the ASan build:\n${out.split('\n').filter((l) => /^not ok|error|Error/.test(l)).slice(0, 20).join('\n')}`);
  assert.match(out, /# fail 0\b/);
  assert.ok(Number(/# pass (\d+)/.exec(out)?.[1]) >= 8, 'the lifetime and abuse tests ran');
});
