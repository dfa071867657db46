// The native CLI on bad input: every case exits non-zero with a message that names the problem (the
// option, file, tensor or field, expected vs found), and never crashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, path } from './helpers.mjs';

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
    assert.ok(r.status === 1 || r.status === 2, `${args.join(' ')}: exit ${r.status} (signal ${r.signal})`);
    assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    assert.match(r.stderr, /^bitlens: /);
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
