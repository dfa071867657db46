// The instruction sets the package picks from (issue 16): bitlens-relaxed.wasm as built (clang-19), read but never
// run here — Node 20's relaxed SIMD gives wrong dot products, so the package never loads it under Node (the real
// instruction is tested in Chromium: tests/e2e/relaxed.test.mjs); it must live inside the main module's memory
// without owning any of it. And bitlens-core-scalar.wasm, for engines without SIMD128: the same glue drives it,
// and it gives the SIMD128 module's numbers bit for bit — forced, and picked by a V8 with SIMD really off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createBitLens, relaxedSimdSupported } from '../../web/bitlens.js';
import { path } from './helpers.mjs';
import { runModel } from './backend-run.mjs';

const FILE = path('web/lib/bitlens-relaxed.wasm');

// The sections of a module: [{ id, body }], and the names of its imports and exports.
function sections(b) {
  let p = 8;
  const leb = () => { let r = 0, s = 0, x; do { x = b[p++]; r += (x & 127) * 2 ** s; s += 7; } while (x & 128); return r; };
  const out = [];
  while (p < b.length) {
    const id = b[p++], n = leb();
    out.push({ id, start: p, end: p + n });
    p += n;
  }
  const name = () => { const n = leb(); const s = new TextDecoder().decode(b.subarray(p, p + n)); p += n; return s; };
  const imports = [], exports = [];
  for (const s of out) {
    p = s.start;
    if (s.id === 2) {
      for (let i = leb(); i > 0; i--) {
        const mod = name(), field = name(), kind = b[p++];
        imports.push(`${mod}.${field}:${kind}`);
        if (kind === 2) { const flags = b[p++]; leb(); if (flags & 1) leb(); } else throw new Error('only a memory import expected');
      }
    } else if (s.id === 7) {
      for (let i = leb(); i > 0; i--) { exports.push(name()); p++; leb(); }
    }
  }
  return { ids: out.map((s) => s.id), imports, exports };
}

test('bitlens-relaxed.wasm imports only env.memory, has no data section, exports the two relaxed GEMMs and uses relaxed opcodes', { skip: existsSync(FILE) ? false : 'no bitlens-relaxed.wasm (clang-19 missing)' }, () => {
  const b = readFileSync(FILE);
  const { ids, imports, exports } = sections(b);
  assert.deepEqual(imports, ['env.memory:2']);
  assert.ok(!ids.includes(11), 'a data section would overwrite the main module\'s memory');
  for (const f of ['bl_qs8_gemm_2x4c16_wasmrelaxed', 'bl_qs8_qc4w_gemm_2x4c16_wasmrelaxed']) assert.ok(exports.includes(f), f);
  // Not valid without relaxed SIMD: Node 20 (flag off) rejects it, as it rejects the loader's probe.
  assert.equal(WebAssembly.validate(b), false);
});

test('under Node the package runs the SIMD128 kernels: backend simd128, relaxed-simd refused with the reason', async () => {
  assert.equal(relaxedSimdSupported(), false);
  const bl = await createBitLens();
  assert.equal(bl.backend, 'simd128');
  await assert.rejects(createBitLens({ backend: 'relaxed-simd' }), /not offered under Node \(its relaxed SIMD gives wrong dot products\)/);
  await assert.rejects(createBitLens({ backend: 'avx' }), TypeError);
});

test('bitlens-core-scalar.wasm has the SIMD128 module\'s imports and exports (one glue drives both)', () => {
  const names = (f) => {
    const m = new WebAssembly.Module(readFileSync(path(`web/lib/${f}`)));
    return [WebAssembly.Module.imports(m).map((x) => `${x.module}.${x.name}:${x.kind}`), WebAssembly.Module.exports(m).map((x) => `${x.name}:${x.kind}`)];
  };
  assert.deepEqual(names('bitlens-core-scalar.wasm'), names('bitlens-core.wasm'));
});

test('backend scalar: logits and evaluations bit-identical to simd128 (FP32, W4A4 integer, W8A8 and W3A3 SULQ simulated)', async () => {
  const simd = await runModel('simd128'), scalar = await runModel('scalar');
  assert.equal(simd.backend, 'simd128');
  assert.equal(scalar.backend, 'scalar');
  assertSameRuns(scalar, simd);
});

function assertSameRuns(a, b) {
  assert.deepEqual(a.fp32, b.fp32);
  for (const [i, r] of b.runs.entries()) {
    assert.deepEqual(a.runs[i].logits, r.logits, `run ${i}: logits bit for bit`);
    assert.deepEqual(a.runs[i].evaluate, r.evaluate, `run ${i}: evaluation`);
  }
}

// SIMD really off: V8 compiles Wasm SIMD only on CPUs with SSE4.1 (CpuFeatures::SupportsWasmSimd128), and
// --no-enable-sse4-1 hides it, so that engine rejects every SIMD module as an engine without SIMD does.
test('a V8 with Wasm SIMD off (node --no-enable-sse4-1): the package picks the scalar module by itself, refuses simd128, and gives the SIMD128 logits and evaluations bit for bit', async () => {
  const r = spawnSync(process.execPath, ['--no-enable-sse4-1', path('tests/node/backend-run.mjs')], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, r.stderr);
  const off = JSON.parse(r.stdout);
  assert.equal(off.coreValidates, false, 'the flag must really switch SIMD off: bitlens-core.wasm still validated');
  assert.equal(off.simdSupported, false);
  assert.match(off.simd128, /does not validate WebAssembly SIMD; use 'scalar'/);
  assert.equal(off.backend, 'scalar');
  assertSameRuns(off, await runModel('simd128'));
});
