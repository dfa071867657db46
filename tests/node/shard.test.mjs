// Sharded sweeps through the real native CLI (issue 19): `sweep --shard I/N` parts merged by `bitlens merge` in any
// order give the unsharded sweep's JSON and CSV bytes and its table, for 1, 3 and more parts than runs; bad --shard
// values are usage errors (exit 2); parts of different sweeps, missing or repeated parts are errors (exit 1) naming
// the difference or the parts. The CLI is build/native/bitlens, or BITLENS_CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, path } from './helpers.mjs';

const HF = path('models/vit-fmnist-hf');
const DATA = path('models/data');
// 2 configurations x 2 seeds = 4 runs on 100 images.
const SWEEP = ['--model', HF, '--data', DATA, '--calib', DATA, '--configs', 'w8a8,w4a4', '--seeds', '2', '--calib-size', '8',
  '--limit', '100', '--jobs', '1'];
const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' });
const ok = (r, what) => assert.equal(r.status, 0, `${what}: exit ${r.status} (signal ${r.signal}): ${r.stderr}`);

function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-shard-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
// Writes the n parts of the sweep (extra options appended) and returns their paths, part 1 first.
function parts(dir, n, extra = [], tag = 'p') {
  const files = [];
  for (let i = 1; i <= n; i++) {
    const file = join(dir, `${tag}-${i}-of-${n}.json`);
    ok(run('sweep', ...SWEEP, ...extra, '--shard', `${i}/${n}`, '--json', file), `part ${i}/${n}`);
    files.push(file);
  }
  return files;
}

test('sweep --shard I/N parts merged in any order = the unsharded sweep: JSON and CSV bytes, table text (n = 1, 3, 6)', () => {
  withDir((dir) => {
    const whole = run('sweep', ...SWEEP, '--json', join(dir, 'whole.json'), '--csv', join(dir, 'whole.csv'));
    ok(whole, 'unsharded sweep');
    const wholeJson = readFileSync(join(dir, 'whole.json'), 'utf8');
    for (const n of [1, 3, 6]) {  // 6 parts of 4 runs: parts 5 and 6 hold none
      const files = parts(dir, n);
      const part = JSON.parse(readFileSync(files[0], 'utf8'));
      assert.equal(part.part.count, n);
      assert.equal(part.part.total_runs, 4);
      assert.deepEqual(part.part.runs, n === 1 ? [0, 1, 2, 3] : n === 3 ? [0, 3] : [0]);
      assert.match(part.model.tensors, /^fnv1a64:[0-9a-f]{16}$/);
      assert.match(part.data.eval.fnv1a64, /^fnv1a64:[0-9a-f]{16}$/);
      assert.equal(part.runs[0].per_class.length, 10);
      const shuffled = [...files].reverse();
      shuffled.push(shuffled.shift());
      const out = join(dir, `merged-${n}.json`), csv = join(dir, `merged-${n}.csv`);
      const m = run('merge', ...shuffled, '--json', out, '--csv', csv);
      ok(m, `merge of ${n}`);
      assert.equal(readFileSync(out, 'utf8'), wholeJson, `n = ${n}: merged JSON differs from the unsharded sweep's`);
      assert.equal(readFileSync(csv, 'utf8'), readFileSync(join(dir, 'whole.csv'), 'utf8'));
      assert.equal(m.stdout, whole.stdout, 'the merge prints the sweep table');
      assert.match(m.stderr, new RegExp(`merge: ${n} parts?, 4 runs \\(2 configurations x 2 seeds\\)`));
      // --json - prints the same JSON.
      assert.equal(run('merge', ...files, '--json', '-').stdout, wholeJson);
    }
  });
});

test('bad --shard values and options: usage errors (exit 2) that say what I/N means', () => {
  const cases = [
    ['0/3', /--shard: '0\/3': part 0 does not exist, the parts of 3 are numbered 1 to 3/],
    ['4/3', /--shard: '4\/3': part 4 does not exist, the parts of 3 are numbered 1 to 3/],
    ['a/b', /--shard: 'a\/b' is not of the form I\/N \(part I of N, e.g. 2\/3\)/],
    ['3', /--shard: '3' is not of the form I\/N/],
    ['1/0', /--shard: '1\/0': the number of parts N must be at least 1/],
    ['-1/3', /is not of the form I\/N/],
  ];
  for (const [value, message] of cases) {
    const r = run('sweep', ...SWEEP, '--shard', value, '--json', join(tmpdir(), 'never-written.json'));
    assert.equal(r.status, 2, `--shard ${value}: exit ${r.status}`);
    assert.match(r.stderr, message);
  }
  let r = run('sweep', ...SWEEP, '--shard', '1/3');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--shard 1\/3 needs --json PART\.json/);
  r = run('sweep', ...SWEEP, '--shard', '1/3', '--json', 'x.json', '--csv', 'x.csv');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--csv is written by bitlens merge/);
  r = run('merge');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bitlens merge: no parts given/);
  r = run('merge', 'a.json', '--colour', 'red');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --colour for 'bitlens merge'/);
  // Other commands still take no file arguments.
  r = run('eval', 'model-dir');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unexpected argument 'model-dir'/);
});

test('merge refuses missing, repeated and mixed parts (exit 1), naming them and the difference', () => {
  withDir((dir) => {
    const [p1, p2, p3] = parts(dir, 3);
    const fails = (files, message) => {
      const r = run('merge', ...files, '--json', join(dir, 'never.json'));
      assert.equal(r.status, 1, `${files.join(' ')}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, /^bitlens: error: /);
      assert.match(r.stderr, message);
    };
    fails([p1, p3], /merge: part 2\/3 is missing \(2 of 3 parts given; run them with bitlens sweep \.\.\. --shard 2\/3/);
    fails([p2], /merge: parts 1\/3 and 3\/3 are missing/);
    fails([p1, p2, p3, p2], new RegExp(`merge: part 2/3 is given more than once: ${p2} and ${p2}`));
    // A part of a 2-way split among a 3-way one.
    const [, q2] = parts(dir, 2, [], 'two');
    fails([p1, q2, p3], /is part 1 of 3 but .*two-2-of-2\.json is part 2 of 2: parts of different splits/);
    // Another model, another evaluation set, other configurations, another spec field.
    const other = (extra, tag, swap = {}) => {
      const args = SWEEP.map((a, i) => (swap[SWEEP[i - 1]] ?? a));
      const file = join(dir, `${tag}.json`);
      ok(run('sweep', ...args, ...extra, '--shard', '2/3', '--json', file), tag);
      return file;
    };
    fails([p1, other([], 'deit', { '--model': path('models/deit-fmnist-timm') }), p3],
      /deit\.json and .*p-1-of-3\.json are parts of different sweeps: another model: its tensors differ \(fnv1a64:[0-9a-f]+, .*deit-fmnist-timm in/);
    fails([p1, other([], 'train', { '--data': path('models/data/fmnist-train-5k-images-idx3-ubyte.gz') }), p3],
      /another evaluation set \(fnv1a64:[0-9a-f]+, .*fmnist-train-5k-images-idx3-ubyte\.gz in .*train\.json; fnv1a64:/);
    fails([p1, other([], 'configs', { '--configs': 'w8a8,w3a3' }), p3],
      /another list of configurations \(W8A8,W3A3 in .*configs\.json; W8A8,W4A4 in .*p-1-of-3\.json\)/);
    fails([p1, other(['--softmax', 'log2'], 'log2'), p3], /another configuration W8A8: 'softmax' differs \("log2" in .*log2\.json; "sulq" in/);
    fails([p1, other([], 'calib', { '--calib-size': '4' }), p3], /another sweep spec: 'calib_size' differs \(4 in .*calib\.json; 8 in/);
    fails([p1, other([], 'seeds', { '--seeds': '3' }), p3], /another sweep spec: 'seeds' differs \(3 in .*seeds\.json; 2 in/);
    // Not parts: a whole sweep, an edited part, not JSON, no file.
    const whole = join(dir, 'whole.json');
    ok(run('sweep', ...SWEEP, '--json', whole), 'whole');
    fails([p1, whole, p3], /whole\.json is a whole sweep, not a part of one/);
    const edited = JSON.parse(readFileSync(p2, 'utf8'));
    edited.runs[0].top1 = 'high';
    writeFileSync(join(dir, 'edited.json'), JSON.stringify(edited));
    fails([p1, join(dir, 'edited.json'), p3], /edited\.json: not a sweep part as bitlens sweep --shard writes it/);
    edited.runs[0].top1 = 0.5;
    edited.runs[0].name = 'W2A2';
    writeFileSync(join(dir, 'edited.json'), JSON.stringify(edited));
    fails([p1, join(dir, 'edited.json'), p3], /edited\.json: field 'runs' does not read back as written/);
    writeFileSync(join(dir, 'notjson.json'), '{"part": ');
    fails([p1, join(dir, 'notjson.json')], /notjson\.json: not JSON/);
    fails([p1, join(dir, 'nowhere.json')], /nowhere\.json: cannot read the file/);
  });
});
