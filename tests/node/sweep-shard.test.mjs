// Sharded sweeps in the real WASM build (issue 19, the page's workers): sweep({ shard }) parts merged by
// bl.mergeSweeps in any order equal the unsharded JS sweep and the CLI's unsharded sweep; parts from JS and from
// `bitlens sweep --shard` are one format, so each side merges the other's; bad shards and bad sets of parts are
// Errors naming the problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBitLens } from '../../web/bitlens.js';
import { cli, defaultData, modelFiles, path } from './helpers.mjs';

const bl = await createBitLens();
const HF = 'models/vit-fmnist-hf';
const model = bl.loadModel(modelFiles(HF));
const data = bl.loadDataset(defaultData());
// 2 configurations x 2 seeds = 4 runs on 100 images; the same sweep for the CLI.
const SPEC = { model, data, calib: data, configs: ['w8a8', 'w4a4'], seeds: 2, calibSize: 8, limit: 100 };
const CLI_SWEEP = ['--model', path(HF), '--data', path('models/data'), '--calib', path('models/data'), '--configs', 'w8a8,w4a4',
  '--seeds', '2', '--calib-size', '8', '--limit', '100', '--jobs', '1'];
const bitlens = (...args) => execFileSync(cli, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const partsOf = async (n, spec = SPEC) => {
  const parts = [];
  for (let i = 1; i <= n; i++) parts.push(await bl.sweep({ ...spec, shard: { index: i, count: n } }));
  return parts;
};
// Every number and name of a SweepResult (the raw JSON included), as deepEqual compares them.
const plain = (r) => JSON.parse(JSON.stringify(r));

function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-sweep-shard-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('JS parts merged in any order = the unsharded JS sweep = the CLI unsharded sweep (n = 1, 2, 3, 7 > runs)', async () => {
  const whole = await bl.sweep(SPEC);
  const native = JSON.parse(bitlens('sweep', ...CLI_SWEEP, '--json', '-'));
  assert.deepEqual(whole.raw, native, 'the unsharded JS sweep is the CLI sweep');
  for (const n of [1, 2, 3, 7]) {
    const parts = await partsOf(n);
    assert.deepEqual(parts.map((p) => p.part.runs), { 1: [[0, 1, 2, 3]], 2: [[0, 2], [1, 3]], 3: [[0, 3], [1], [2]], 7: [[0], [1], [2], [3], [], [], []] }[n]);
    assert.ok(parts.every((p) => p.part.count === n && p.part.total_runs === 4));
    const progress = [];
    await bl.sweep({ ...SPEC, shard: `${n}/${n}` }, { onProgress: ({ done, total }) => progress.push(`${done}/${total}`) });
    assert.deepEqual(progress, { 1: ['0/4', '1/4', '2/4', '3/4', '4/4'], 2: ['0/2', '1/2', '2/2'], 3: ['0/1', '1/1'], 7: ['0/0'] }[n], 'progress over the part\'s runs');
    const shuffled = [...parts].reverse();
    shuffled.push(shuffled.shift());
    const merged = bl.mergeSweeps(structuredClone(shuffled));  // as posted between workers
    assert.deepEqual(plain(merged), plain(whole), `n = ${n}: the merged result differs from the unsharded sweep's`);
    assert.equal(JSON.stringify(merged.raw), JSON.stringify(native), `n = ${n}: the merged raw JSON differs from the CLI's`);
  }
});

test('merged = unsharded with every spec option: class-restricted, skewed, noisy calibration, corrupted evaluation, groups', async () => {
  const spec = { ...SPEC, configs: [{ wbits: 4, abits: 4 }, { wbits: 3, abits: 3, softmax: 'log2' }], calibClasses: [0, 'Shirt', 2, 4],
    calibSkew: 0.5, calibCorrupt: 'noise:2', evalCorrupt: { type: 'blur', severity: 1 }, groups: 'tops=0,2,4,6;shoes=5,7,9' };
  const whole = await bl.sweep(spec);
  assert.ok(whole.fp32CleanTop1 > 0 && whole.configs[0].groups.length === 2);
  assert.deepEqual(plain(bl.mergeSweeps((await partsOf(3, spec)).reverse())), plain(whole));
});

test('JS parts and CLI parts are one format: bitlens merge takes JS parts (alone or mixed with its own), JS merges CLI parts', async () => {
  const parts = await partsOf(3);
  withDir((dir) => {
    const whole = join(dir, 'whole.json');
    bitlens('sweep', ...CLI_SWEEP, '--json', whole);
    const files = parts.map((p, k) => {
      const f = join(dir, `js-${k + 1}-of-3.json`);
      writeFileSync(f, `${JSON.stringify(p)}\n`);
      return f;
    });
    bitlens('merge', ...files, '--json', join(dir, 'merged-js.json'));
    assert.equal(readFileSync(join(dir, 'merged-js.json'), 'utf8'), readFileSync(whole, 'utf8'));
    const cli2 = join(dir, 'cli-2-of-3.json');
    bitlens('sweep', ...CLI_SWEEP, '--shard', '2/3', '--json', cli2);
    bitlens('merge', files[0], cli2, files[2], '--json', join(dir, 'merged-mixed.json'));
    assert.equal(readFileSync(join(dir, 'merged-mixed.json'), 'utf8'), readFileSync(whole, 'utf8'));
    const fromCli = JSON.parse(readFileSync(cli2, 'utf8'));
    assert.deepEqual(fromCli.runs, parts[1].runs, 'the same runs in the same form');
    assert.deepEqual(bl.mergeSweeps([parts[2], fromCli, parts[0]]).raw, JSON.parse(readFileSync(whole, 'utf8')));
  });
});

test('bad shards are Errors naming the shard; a part stops on its AbortSignal', async () => {
  await assert.rejects(bl.sweep({ ...SPEC, shard: { index: 0, count: 3 } }), /sweep: shard '0\/3': part 0 does not exist, the parts of 3 are numbered 1 to 3/);
  await assert.rejects(bl.sweep({ ...SPEC, shard: { index: 4, count: 3 } }), /part 4 does not exist/);
  await assert.rejects(bl.sweep({ ...SPEC, shard: 'a/b' }), /sweep: shard 'a\/b' is not of the form I\/N/);
  await assert.rejects(bl.sweep({ ...SPEC, shard: { index: 1, count: 0 } }), /the number of parts N must be at least 1/);
  await assert.rejects(bl.sweep({ ...SPEC, shard: { index: 1.5, count: 2 } }), { name: 'TypeError', message: /`shard` must be \{ index, count \}/ });
  await assert.rejects(bl.sweep({ ...SPEC, shard: 2 }), /`shard` must be \{ index, count \}/);
  await assert.rejects(bl.sweep({ ...SPEC, shards: 2 }), /unknown option 'shards' \(expected model, data, calib, configs, shard,/);
  const ac = new AbortController();
  await assert.rejects(bl.sweep({ ...SPEC, seeds: 4, shard: { index: 1, count: 2 } },
    { signal: ac.signal, onProgress: ({ done }) => { if (done === 1) ac.abort(); } }), { name: 'AbortError' });
});

test('mergeSweeps names missing, repeated and foreign parts', async () => {
  const parts = await partsOf(3);
  assert.throws(() => bl.mergeSweeps([]), { name: 'TypeError', message: /non-empty array of sweep parts/ });
  assert.throws(() => bl.mergeSweeps([parts[0], parts[2]]), /merge: part 2\/3 is missing \(2 of 3 parts given/);
  assert.throws(() => bl.mergeSweeps([parts[0], parts[1], parts[1], parts[2]]), /merge: part 2\/3 is given more than once: parts\[1\] and parts\[2\]/);
  const two = await partsOf(2);
  assert.throws(() => bl.mergeSweeps([parts[0], two[1]]), /parts of different splits/);
  const [other] = await partsOf(3, { ...SPEC, seeds: 3 });
  assert.throws(() => bl.mergeSweeps([other, parts[1], parts[2]]), /parts\[1\] and parts\[0\] are parts of different sweeps: another sweep spec: 'seeds' differs \(2 in parts\[1\]; 3 in parts\[0\]\)/);
  const deit = bl.loadModel(modelFiles('models/deit-fmnist-timm'));
  try {
    const [d1] = await partsOf(3, { ...SPEC, model: deit });
    assert.throws(() => bl.mergeSweeps([d1, parts[1], parts[2]]), /another model: its tensors differ/);
  } finally {
    deit.delete();
  }
  const whole = await bl.sweep(SPEC);
  assert.throws(() => bl.mergeSweeps([whole.raw]), /parts\[0\] is a whole sweep, not a part of one/);
  const damaged = structuredClone(parts[0]);
  damaged.runs[0].per_class.pop();
  assert.throws(() => bl.mergeSweeps([damaged, parts[1], parts[2]]), /parts\[0\]: run 0 has 9 per-class accuracies, the model has 10 classes/);
  assert.throws(() => bl.mergeSweeps([{ runs: [] }]), /parts\[0\] is not a part of a sweep/);
  // The module keeps working after every error.
  assert.deepEqual(plain(bl.mergeSweeps(parts)), plain(whole));
});
