// Hostile inputs through the native CLI (issue 17, Found 1, 5 and 6): tiny crafted files that used to overflow
// stb_image, convert out-of-range floats to int or allocate gigabytes are errors (exit 1) naming the file, the
// field, its value and the limit (src/base/size_limits.h). BITLENS_CLI=path/to/bitlens runs another build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, path } from './helpers.mjs';

const HF = path('models/vit-fmnist-hf');
const TIMM = path('models/deit-fmnist-timm');
const run = (...args) => spawnSync(cli, args, { encoding: 'utf8' });

// The hand-written 8×8 grey baseline JPEG of tests/cpp/test_hostile.cpp (every pixel 128).
function tinyJpeg() {
  const b = [0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, ...Array(64).fill(1),
    0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00];
  for (const cls of [0x00, 0x10]) b.push(0xff, 0xc4, 0x00, 0x14, cls, 1, ...Array(15).fill(0), 0);
  b.push(0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9);
  return Buffer.from(b);
}
// The first DHT table made to declare 257 symbols (lengths consistent): stb_image would write past values[256].
function evilJpeg() {
  const good = tinyJpeg();
  const dht = good.indexOf(Buffer.from([0xff, 0xc4]));
  const head = Buffer.from(good.subarray(0, dht + 22));
  head[dht + 19] = 1; head[dht + 20] = 255;
  head.writeUInt16BE(0x14 + 256, dht + 2);
  return { bytes: Buffer.concat([head, Buffer.alloc(256), good.subarray(dht + 22)]), dht };
}

function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'bitlens-hostile-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}
function expectError(args, message) {
  const r = run(...args);
  assert.equal(r.status, 1, `${args.join(' ')}: exit ${r.status} (signal ${r.signal}): ${r.stderr.slice(0, 300)}`);
  assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
}

test('Found 1: an image folder holding a JPEG whose DHT declares 257 symbols is an error naming the file', () => withDir((dir) => {
  mkdirSync(join(dir, 'data', 'a'), { recursive: true });
  const { bytes, dht } = evilJpeg();
  writeFileSync(join(dir, 'data', 'a', 'evil.jpg'), bytes);
  expectError(['eval', '--model', HF, '--data', join(dir, 'data')],
    new RegExp(`evil\\.jpg: cannot decode image: JPEG DHT segment at byte ${dht}: its 16 code-length counts sum to 257 symbols \\(at most 256\\)`));
}));

test('Found 5 and 6: config values beyond int or beyond their limits are errors naming the field, value and limit', () => withDir((dir) => {
  const timm = (edit, message) => {
    const cfg = JSON.parse(readFileSync(join(TIMM, 'config.json'), 'utf8'));
    edit(cfg);
    mkdirSync(join(dir, 'timm'), { recursive: true });
    copyFileSync(join(TIMM, 'model.safetensors'), join(dir, 'timm', 'model.safetensors'));
    writeFileSync(join(dir, 'timm', 'config.json'), JSON.stringify(cfg));
    expectError(['info', '--model', join(dir, 'timm')], message);
  };
  timm((c) => { c.pretrained_cfg.crop_pct = 1e-300; }, /crop_pct 1e-300 resizes the 28x28 input to more than 10\^15 per side, more than the limit 4096/);
  timm((c) => { c.pretrained_cfg.crop_pct = 0.002; }, /crop_pct 0\.002 resizes the 28x28 input to 14000 per side, more than the limit 4096/);
  timm((c) => { c.pretrained_cfg.input_size = [1, 28, 1e60]; }, /input_size\[2\] is 1e\+60, allowed 1 to 4096/);
  timm((c) => { c.model_args.img_size = [1e10, 28]; }, /img_size\[0\] is 10000000000(\.0)?, allowed 1 to 4096/);

  mkdirSync(join(dir, 'hf'));
  for (const f of ['model.safetensors', 'config.json']) copyFileSync(join(HF, f), join(dir, 'hf', f));
  const pre = JSON.parse(readFileSync(join(HF, 'preprocessor_config.json'), 'utf8'));
  pre.resample = 4294967298;  // wrapped to 2 (bilinear) before
  writeFileSync(join(dir, 'hf', 'preprocessor_config.json'), JSON.stringify(pre));
  expectError(['info', '--model', join(dir, 'hf')], /preprocessor_config\.json: resample 4294967298 is not supported \(0 nearest, 2 bilinear, 3 bicubic\)/);
  const cfg = JSON.parse(readFileSync(join(HF, 'config.json'), 'utf8'));
  cfg.hidden_size = 100000;
  writeFileSync(join(dir, 'hf', 'config.json'), JSON.stringify(cfg));
  expectError(['info', '--model', join(dir, 'hf')], /config\.json: hidden size is 100000, it must be at least 1 and at most 16384/);
}));

test('Found 6: tiny files claiming huge images, datasets or decompressed sizes are refused before allocating', () => withDir((dir) => {
  // The 71-byte 1-bit BMP of 6,291,465×2.
  const bmp = Buffer.alloc(71);
  bmp.write('BM', 0, 'latin1'); bmp.writeUInt32LE(71, 2); bmp.writeUInt32LE(62, 10);
  bmp.writeUInt32LE(40, 14); bmp.writeInt32LE(6291465, 18); bmp.writeInt32LE(2, 22); bmp.writeUInt16LE(1, 26); bmp.writeUInt16LE(1, 28);
  bmp.writeUInt32LE(2, 46); bmp.writeUInt32LE(0xffffff, 58);
  mkdirSync(join(dir, 'data', 'a'), { recursive: true });
  writeFileSync(join(dir, 'data', 'a', 'wide.bmp'), bmp);
  const started = Date.now();
  expectError(['eval', '--model', TIMM, '--data', join(dir, 'data')], /wide\.bmp: image is 6291465x2, more than the limit of 16384 per side/);
  assert.ok(Date.now() - started < 5000, 'refused quickly, not after a 2.6 GB resize');

  // An IDX pair whose header says 10,000,000 images; and a gzip member whose trailer promises 1.2 GB.
  const idx = Buffer.alloc(16);
  idx.writeUInt32BE(0x803, 0); idx.writeUInt32BE(10000000, 4); idx.writeUInt32BE(1, 8); idx.writeUInt32BE(1, 12);
  const lab = Buffer.alloc(8);
  lab.writeUInt32BE(0x801, 0); lab.writeUInt32BE(10000000, 4);
  writeFileSync(join(dir, 'many-images-idx3-ubyte'), idx);
  writeFileSync(join(dir, 'many-labels-idx1-ubyte'), lab);
  expectError(['eval', '--model', HF, '--data', join(dir, 'many-images-idx3-ubyte')], /many-images-idx3-ubyte: header says 10000000 images, more than the limit 2000000/);
  // 1.2 MB of "deflate data" (deflate can expand 1032:1) and a trailer promising 1,207,959,552 bytes.
  const gz = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(1200000), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x48])]);
  writeFileSync(join(dir, 'bomb-images-idx3-ubyte.gz'), gz);
  writeFileSync(join(dir, 'bomb-labels-idx1-ubyte'), lab);
  expectError(['eval', '--model', HF, '--data', join(dir, 'bomb-images-idx3-ubyte.gz')],
    /bomb-images-idx3-ubyte\.gz: gzip: decompresses to 1207959552 bytes \(trailer\), more than the limit 1073741824/);
}));

// Found by the fuzzers (tests/fuzz): bitlens merge parsed a part without a depth limit (a part nested 100,000 deep
// overflowed the stack: exit 139), and read counts with nlohmann's get<size_t>(), undefined for 1e300.
test('bitlens merge: a part nested 100,000 deep, or holding 1e300 or -1 where a count goes, is an error naming the file and field', () => withDir((dir) => {
  const deep = join(dir, 'deep.json');
  writeFileSync(deep, '['.repeat(100000) + ']'.repeat(100000));
  expectError(['merge', deep, '--json', join(dir, 'out.json')], /deep\.json: JSON nested deeper than 64 levels/);
  const part = readFileSync(path('tests/fuzz/corpus/sweep/part-1-of-2.json'), 'utf8');
  const ok = run('merge', path('tests/fuzz/corpus/sweep/part-1-of-2.json'), path('tests/fuzz/corpus/sweep/part-2-of-2.json'),
    '--json', join(dir, 'out.json'));
  assert.equal(ok.status, 0, ok.stderr);  // the seed parts as written merge
  const cases = [
    ['"eval_n":12', '"eval_n":1e300', /huge\.json: eval_n: expected an integer in \[0, 18446744073709551615\], found a non-integer number/],
    ['"eval_n":12', '"eval_n":-1', /huge\.json: eval_n: expected an integer in \[0, 18446744073709551615\], found -1/],
  ];
  for (const [from, to, message] of cases) {
    assert.ok(part.includes(from), `the seed part has ${from}`);
    const bad = join(dir, 'huge.json');
    writeFileSync(bad, part.replace(from, to));
    expectError(['merge', bad, '--json', join(dir, 'out.json')], message);
  }
}));
