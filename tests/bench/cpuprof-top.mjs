// Self time per function from a V8 .cpuprofile (node --cpu-prof), most first: where a WASM forward loop spends its
// time, by kernel. The WASM profiler (profile.cpp, built by `npm run bench -- --profile`) keeps its function names
// (--profiling-funcs), so the rows name the C++ functions:
//   node --no-experimental-fetch --cpu-prof --cpu-prof-dir=build/bench/cpuprof --cpu-prof-interval 200 \
//     build/bench/bitlens-profile-wasm.cjs build/bench/deit-tiny --loop w8a8 --bits 4 --iters 60
//   node tests/bench/cpuprof-top.mjs build/bench/cpuprof/*.cpuprofile [--per 60] [--top 25]
// --per N divides the times by N (the loop's forward passes: ms per image). The profile also holds the loading and
// quantizing before the loop: read the kernels' rows.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let per = 1, top = 25;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--per') per = Number(args[++i]);
  else if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length !== 1 || !(per > 0) || !(top > 0)) {
  console.error('usage: node tests/bench/cpuprof-top.mjs FILE.cpuprofile [--per N] [--top N]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(files[0], 'utf8'));
if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas)) {
  console.error(`${files[0]}: not a V8 .cpuprofile (expected nodes, samples and timeDeltas)`);
  process.exit(2);
}
const name = new Map(p.nodes.map((n) => [n.id, n.callFrame.functionName || '(anonymous)']));
const self = new Map();
p.samples.forEach((id, i) => self.set(name.get(id), (self.get(name.get(id)) || 0) + p.timeDeltas[i]));
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`${(total / 1000).toFixed(0)} ms sampled${per > 1 ? `; ms columns divided by ${per}` : ''}`);
for (const [f, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${(100 * us / total).toFixed(1).padStart(5)}%  ${(us / 1000 / per).toFixed(2).padStart(8)} ms  ${f.slice(0, 110)}`);
