// The native CLI on bad input: every case exits non-zero with a message that names the problem (the
// option, file, tensor or field, expected vs found), and never crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, encodePngGray, path } from './helpers.mjs';

const HF = path('models/vit-fmnist-hf');
const DATA = path('models/data');
const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' });

test('bad command lines: usage errors (exit 2) naming the option and what it expected', () => {
  const cases = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['eval', '--data', DATA], /bitlens eval: missing --model/],
    [['eval', '--model', HF, '--data', DATA, '--colour', 'red'], /unknown option --colour for 'bitlens eval'/],
    [['quantize', '--model', HF, '--calib', DATA, '--wbits', '9'], /--wbits\): bit-width 9 is outside 2-8/],
    [['quantize', '--model', HF, '--calib', DATA, '--softmax', 'cubic'], /--softmax: unknown quantizer 'cubic' \(expected uniform, log2, sulq or pow2\)/],
    [['sweep', '--model', HF, '--data', DATA, '--calib', DATA, '--act-range', 'max'], /--act-range: .*'max'/],
    [['mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '1.5'], /--budget must be an average bit-width from 2 to 8, found '1.5'/],
    [['mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '4', '--objective', 'median'], /--objective must be mean or worst, found 'median'/],
    [['mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '4', '--candidates', '4,x'], /--candidates must be a comma-separated list of bit-widths/],
    [['mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '4', '--sens-size', '5000'], /--sens-size 5000 is larger than the calibration pool \(1000 images\)/],
    [['sweep', '--model', HF, '--data', DATA, '--calib', DATA, '--configs', 'w4x4'], /not of the form W<bits>A<bits>/],
    [['sweep', '--model', HF, '--data', DATA, '--calib', DATA, '--calib-corrupt', 'fog:2'], /--calib-corrupt: unknown corruption 'fog' in 'fog:2'/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, /^bitlens: /);
    assert.match(r.stderr, /\nusage:\n/, 'a usage error prints the usage');
  }
});

test('bad files: errors (exit 1) naming the file, the tensor or the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-cli-'));
  try {
    // A truncated safetensors beside a good config.
    copyFileSync(join(HF, 'config.json'), join(dir, 'config.json'));
    writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(HF, 'model.safetensors')).subarray(0, 100));
    let r = run('info', '--model', dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /model\.safetensors/);
    assert.match(r.stderr, /header length \d+ is beyond the end of the file/);
    // A config that disagrees with the tensors.
    copyFileSync(join(HF, 'model.safetensors'), join(dir, 'model.safetensors'));
    const cfg = JSON.parse(readFileSync(join(HF, 'config.json'), 'utf8'));
    cfg.hidden_size = 96;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    r = run('info', '--model', dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config\.json: hidden_size is 96 but tensor '[\w.]+' implies 64/);
    // Missing data, and a file that is not a dataset.
    r = run('eval', '--model', HF, '--data', join(dir, 'nowhere'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nowhere: no such file or directory/);
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    r = run('eval', '--model', HF, '--data', join(dir, 'notes.txt'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /notes\.txt: not a directory or an IDX images file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('training commands on bad input: grad and qat name the option or the data problem, never crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-cli-train-'));
  try {
    const TRAIN = path('models/data/fmnist-train-5k-images-idx3-ubyte.gz');
    const cases = [
      [['grad', '--model', HF, '--data', DATA, '--out', join(dir, 'g.safetensors')], 2, /bitlens grad: missing --limit/],
      [['grad', '--model', HF, '--data', DATA, '--limit', '0', '--out', join(dir, 'g.safetensors')], 2, /--limit must be an integer from 1/],
      [['grad', '--model', HF, '--data', DATA, '--limit', '2000', '--out', join(dir, 'g.safetensors')], 1, /--limit 2000 is more than the 1000 images of/],
      [['grad', '--model', HF, '--data', DATA, '--limit', '4'], 2, /bitlens grad: missing --out/],
      [['qat', '--model', HF, '--train', TRAIN, '--epochs', '0'], 2, /--epochs must be at least 1, found 0/],
      [['qat', '--model', HF, '--train', TRAIN, '--val-split', '1'], 2, /--val-split must be in \[0, 1\)/],
      [['qat', '--model', HF, '--train', TRAIN, '--val-split', '0.5', '--train-limit', '1'], 1, /leaves no training images/],
      [['qat', '--model', HF, '--train', TRAIN, '--lr', 'fast'], 2, /--lr must be a number/],
      [['qat', '--model', HF, '--train', TRAIN, '--wbits', '1'], 2, /bit-width 1 is outside 2-8/],
      [['qat', '--model', HF, '--train', join(dir, 'none')], 1, /none: no such file or directory/],
      [['qat', '--model', HF], 2, /bitlens qat: missing --train/],
      [['qat', '--model', HF, '--train', TRAIN, '--budget', '1.5'], 2, /qat: --budget 1\.5 is infeasible: the smallest candidate is 2 bits, so the budget must be at least 2/],
      [['qat', '--model', HF, '--train', TRAIN, '--abudget', '3'], 2, /--abudget needs --budget/],
      [['qat', '--model', HF, '--train', TRAIN, '--budget', '3', '--candidates', '3,99999999999'], 2, /--candidates: bit-width 99999999999 is outside 2-8/],
      [['qat', '--model', HF, '--train', TRAIN, '--budget', '3', '--candidates', '3,3,4'], 2, /--candidates lists 3 bits twice/],
      [['qat', '--model', HF, '--train', TRAIN, '--budget', '3', '--sensitivity-decay', '1'], 2, /--sensitivity-decay must be in \[0, 1\), found 1/],
      [['qat', '--model', HF, '--train', TRAIN, '--budget', '3', '--objective', 'median'], 2, /objective must be 'mean' or 'worst', found 'median'/],
    ];
    // Exit 2: the command line alone is wrong; exit 1: it is refused only once the files are read.
    for (const [args, status, message] of cases) {
      const r = run(...args);
      assert.equal(r.status, status, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    }
    // A labelled folder with a class the model does not have, and one whose images are not images.
    const folder = join(dir, 'folder');
    for (const c of ['Shirt', 'Spaceship']) {
      mkdirSync(join(folder, c), { recursive: true });
      writeFileSync(join(folder, c, 'a.png'), encodePngGray(new Uint8Array(28 * 28).fill(90), 28, 28));
    }
    let r = run('qat', '--model', HF, '--train', folder, '--epochs', '1');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /Spaceship/);
    r = run('grad', '--model', HF, '--data', folder, '--limit', '1', '--out', join(dir, 'g.safetensors'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /Spaceship/);
    // A quantized export is refused as a starting point.
    r = run('quantize', '--model', HF, '--calib', DATA, '--wbits', '4', '--abits', '4', '--out', join(dir, 'q'));
    assert.equal(r.status, 0, r.stderr);
    r = run('qat', '--model', join(dir, 'q'), '--train', TRAIN);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is already quantized; start from its FP32\/FP16 original/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inq on bad input: partitions, bit-width, weights and epochs per step name the problem, never crash', () => {
  const TRAIN = path('models/data/fmnist-train-5k-images-idx3-ubyte.gz');
  const base = ['inq', '--model', HF, '--train', TRAIN];
  const cases = [
    [[...base, '--wbits', '4', '--partitions', '50,40,100'], /inq: partitions must increase: 50% is followed by 40%/],
    [[...base, '--wbits', '4', '--partitions', '50,75'], /inq: the last partition must be 100% \(every weight quantized\), found 75%/],
    [[...base, '--wbits', '4', '--partitions', '50,x,100'], /--partitions: 'x' is not a number \(expected e\.g\. 50,75,87\.5,100\)/],
    [[...base, '--wbits', '9'], /--wbits\): bit-width 9 is outside 2-8/],
    [[...base, '--wbits', '4', '--weights', 'uniform'], /bitlens inq quantizes weights to powers of two; --weights uniform does not apply/],
    [[...base, '--wbits', '4', '--epochs-per-step', '0'], /--epochs-per-step must be an integer from 1 to 1000, found '0'/],
    [[...base, '--wbits', '4', '--epochs', '2'], /unknown option --epochs for 'bitlens inq'/],
    [base, /bitlens inq: missing --wbits/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, /^bitlens: /);
  }
});

test('SOS reconstruction from the command line: stages and blocks in --json; bad options name themselves', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-cli-sos-'));
  try {
    const base = ['--model', HF, '--calib', DATA, '--wbits', '3', '--abits', '3'];
    const cases = [
      [['quantize', ...base, '--method', 'sos', '--calib-size', '8', '--recon-batch', '16'], /--recon-batch 16 is larger than the calibration set \(8 images, --calib-size\)/],
      [['quantize', ...base, '--method', 'sos', '--recon-iters', '-3'], /--recon-iters must be an integer from 0 to \d+, found '-3'/],
      [['quantize', ...base, '--method', 'adaround'], /--method: unknown quantization method 'adaround' \(ptq or sos\)/],
      [['quantize', ...base, '--recon-iters', '50'], /--recon-iters and --recon-batch apply to --method sos/],
      [['quantize', ...base, '--method', 'sos', '--reparam'], /--reparam is stage 2 of --method sos/],
      [['sweep', '--model', HF, '--data', DATA, '--calib', DATA, '--method', 'sos', '--calib-size', '4'], /--recon-batch 16 is larger than the calibration set \(4 images/],
      [['mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '4', '--method', 'ptq2'], /unknown quantization method 'ptq2'/],
      [['qat', '--model', HF, '--train', DATA, '--method', 'sos'], /unknown option --method for 'bitlens qat'/],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    }
    const r = run('quantize', ...base, '--method', 'sos', '--recon-iters', '8', '--recon-batch', '8', '--calib-size', '16',
      '--eval', DATA, '--limit', '300', '--json', '--out', join(dir, 'q'));
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.config.method, 'sos');
    assert.deepEqual(j.sos.stages.map((s) => s.stage), [0, 1, 2, 3]);
    assert.ok(j.sos.stages.every((s) => s.eval && s.eval.n === 300));
    assert.equal(j.sos.stages[3].eval.top1, j.top1);  // the result is stage 3
    assert.ok(j.sos.stages[2].max_logit_change < 1e-3);
    assert.equal(j.sos.blocks.length, 8);
    // 8 Adam iterations lower each stage's error summed over its blocks; one block may end a little above its
    // start (the last iterate is kept, not the best: block 1 of stage 1 ends 0.2% up with this draw).
    for (const stage of [1, 3]) {
      const bs = j.sos.blocks.filter((b) => b.stage === stage);
      assert.equal(bs.length, 4);
      const sum = (k) => bs.reduce((a, b) => a + b[k], 0);
      assert.ok(sum('mse_after') < 0.99 * sum('mse_before'), JSON.stringify(bs));
      assert.ok(bs.every((b) => b.mse_after < 1.01 * b.mse_before), JSON.stringify(bs));
    }
    // mixed --method sos reconstructs both the uniform and the planned model.
    const mx = run('mixed', '--model', HF, '--calib', DATA, '--eval', DATA, '--budget', '4', '--method', 'sos', '--recon-iters', '2',
      '--recon-batch', '8', '--calib-size', '8', '--seeds', '1', '--sens-size', '16', '--limit', '200', '--json');
    assert.equal(mx.status, 0, mx.stderr);
    assert.equal(JSON.parse(mx.stdout).uniform_config.method, 'sos');
    // The export is an ordinary quantized model: it evaluates to the same top-1.
    const e = run('eval', '--model', join(dir, 'q'), '--data', DATA, '--limit', '300', '--json');
    assert.equal(e.status, 0, e.stderr);
    assert.equal(JSON.parse(e.stdout).top1, j.top1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prune on bad input: the fractions, the importance and a quantized model name the problem, never crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-cli-prune-'));
  try {
    const TRAIN = path('models/data/fmnist-train-5k-images-idx3-ubyte.gz');
    // Few images, so that a case failing only after the importance is measured stays quick.
    const base = ['prune', '--model', HF, '--train', TRAIN, '--eval', DATA, '--train-limit', '100', '--importance-images', '8', '--epochs', '0'];
    const cases = [
      [[...base, '--keep-heads', '0'], 2, /prune: --keep-heads must be a fraction in \(0, 1\], found 0/],
      [[...base, '--keep-heads', '1.5'], 2, /prune: --keep-heads must be a fraction in \(0, 1\], found 1\.5/],
      [[...base, '--keep-heads', 'abc'], 2, /--keep-heads must be a fraction in \(0, 1\], found 'abc'/],
      [[...base, '--keep-mlp', '0.001'], 1, /prune: keeping 0\.001 of the 128 MLP units of layer 0 leaves none \(at least one must stay; keep at least 0\.00390625\)/],
      [[...base, '--keep-heads', '0.1'], 1, /prune: keeping 0\.1 of the 4 heads of layer 0 leaves none/],
      [base, 2, /bitlens prune: give --keep-heads F and\/or --keep-mlp F/],
      [[...base, '--keep-heads', '0.5', '--importance', 'foo'], 2, /prune: importance 'foo' is not known \(expected taylor or mask\)/],
      [[...base.slice(0, -2), '--keep-heads', '0.5', '--epochs', '-1'], 2, /--epochs must be an integer from 0 to 1000, found '-1'/],
      [[...base, '--keep-heads', '0.5', '--wbits', '4'], 2, /unknown option --wbits for 'bitlens prune'/],
      [['prune', '--model', HF, '--eval', DATA, '--keep-heads', '0.5'], 2, /bitlens prune: missing --train/],
    ];
    for (const [args, status, message] of cases) {
      const r = run(...args);
      assert.equal(r.status, status, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr, /^bitlens: /);
    }
    // A quantized export is refused as a starting point.
    let r = run('quantize', '--model', HF, '--calib', DATA, '--wbits', '4', '--abits', '4', '--calib-size', '8', '--out', join(dir, 'q'));
    assert.equal(r.status, 0, r.stderr);
    r = run('prune', '--model', join(dir, 'q'), '--train', TRAIN, '--eval', DATA, '--keep-heads', '0.5');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /bitlens prune: .*model\.safetensors is already quantized; start from its FP32\/FP16 original/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
