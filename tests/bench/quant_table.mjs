#!/usr/bin/env node
// Prints the README's quantization table: for each shipped model, rows W8A8 … W3A3 (+ W4A8, W8A4),
// columns softmax quantizer (uniform, log2, SULQ) with uniform weights, and power-of-two weights
// (SULQ softmax): top-1 and worst-class accuracy on the full 10,000-image Fashion-MNIST test set.
//   node tests/bench/quant_table.mjs [--models a,b] [--limit N] [--seed S]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = root + 'build/native/bitlens';
const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const data = opt('--data', '/usr/share/datasets/fashion-mnist');
const calib = opt('--calib', '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz');
const limit = opt('--limit', '');
const seed = opt('--seed', '0');
const models = opt('--models', 'models/vit-fmnist-hf,models/deit-fmnist-timm').split(',');
const rows = [[8, 8], [6, 6], [4, 4], [3, 3], [4, 8], [8, 4]];
const cols = [
  { name: 'uniform softmax', a: ['--softmax', 'uniform'] },
  { name: 'log2 softmax', a: ['--softmax', 'log2'] },
  { name: 'SULQ softmax', a: ['--softmax', 'sulq'] },
  { name: 'pow2 weights (SULQ softmax)', a: ['--softmax', 'sulq', '--weights', 'pow2'] },
];
const run = (cmd, extra) => JSON.parse(execFileSync(cli, [cmd, ...extra, ...(limit ? ['--limit', limit] : []), '--json']).toString());
const pct = (x) => (100 * x).toFixed(2);

for (const m of models) {
  const fp = run('eval', ['--model', root + m, '--data', data]);
  console.log(`\n**${m}** — FP32 top-1 ${pct(fp.top1)}%, worst class ${fp.worst_class.label} ${pct(fp.worst_class.accuracy)}% (${fp.n} images)\n`);
  console.log(`| config | ${cols.map((c) => c.name).join(' | ')} |`);
  console.log(`|---|${cols.map(() => '---').join('|')}|`);
  for (const [w, a] of rows) {
    const cells = cols.map((c) => {
      const r = run('quantize', ['--model', root + m, '--calib', calib, '--eval', data, '--wbits', String(w), '--abits', String(a), '--seed', seed, ...c.a]);
      return `${pct(r.top1)} / ${r.worst_class.label} ${pct(r.worst_class.accuracy)}`;
    });
    console.log(`| W${w}A${a} | ${cells.join(' | ')} |`);
  }
}
console.log('\ncells: top-1 % / worst class and its accuracy %; 32 calibration images from the training set, seed ' + seed);
