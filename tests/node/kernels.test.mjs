// The kernel, quantizer and training-part tests of tests/cpp (test_kernels.cpp, test_quant.cpp,
// test_train_parts.cpp), compiled to WASM SIMD
// with the module's flags (CMakeLists.txt: bitlens_kernel_tests) and run here in Node: every SIMD
// kernel against its scalar reference over the edge shapes, on the real target rather than through SIMDe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { path } from './helpers.mjs';

test('the kernel tests pass as WebAssembly SIMD in Node (every kernel bit-identical to its reference)', () => {
  const bin = path('build/wasm/bitlens_kernel_tests.cjs');
  assert.ok(existsSync(bin), `${bin} is missing: run \`npm run build:wasm\``);
  // --no-experimental-fetch: Emscripten 3.1.6's loader reads the .wasm with fs only when fetch is absent.
  const r = spawnSync(process.execPath, ['--no-experimental-fetch', bin, '--no-colors', '--no-version'], { encoding: 'utf8' });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-4000));
  const m = /test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed/.exec(out);
  assert.ok(m, out.slice(-2000));
  assert.equal(Number(m[3]), 0);
  assert.ok(Number(m[1]) >= 20, `only ${m[1]} test cases ran`);
  assert.match(out, /Status: SUCCESS!/);
  // Every kernel family is among the cases that ran.
  const list = spawnSync(process.execPath, ['--no-experimental-fetch', bin, '--no-colors', '--list-test-cases'], { encoding: 'utf8' }).stdout;
  for (const family of ['f32 GEMM', 'qs8 GEMM', 'uniform quantize kernels', 'softmax', 'layernorm', 'gelu', 'FastFake', 'f32 GEMM nn/tn (backward)', 'layernorm backward', 'gelu backward', 'softmax backward', 'adamw', 'loss:', 'qtrain:']) {
    assert.ok(list.includes(family), `no ${family} test case in the WASM build`);
  }
});
