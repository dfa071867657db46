// Kernel tests, run natively (kernels through SIMDe) and as WASM in Node (tests/node/kernels.test.mjs):
// every optimised kernel in wasm_kernels/ against its scalar reference (bit-identical,
// including on strided/padded buffers whose padding must stay untouched), every reference against a
// double-precision version (named tolerances), and the bl_* math functions against std:: in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"
#include "mathfn.h"
#include "quant.h"
#include "simd.h"

using namespace bitlens;
using namespace bitlens::kernels;

namespace {

// ---- named tolerances ------------------------------------------------------------------------
constexpr double kExpRelTol = 2e-7;        // bl_expf relative error on [-87, 88.7]
constexpr double kTanhAbsTol = 1e-6;       // bl_tanhf absolute error on R
constexpr double kGemmRelTol = 1e-5;       // |C_ref - C_double| / (Σ_k |a·w| + |bias|), K ≤ 768
constexpr double kSoftmaxAbsTol = 1e-6;    // |softmax_ref - softmax_double|
constexpr double kSoftmaxSumTol = 1e-6;    // |Σ softmax_ref - 1|
constexpr double kLayerNormRelTol = 1e-5;  // |y_ref - y_double| / max(1, |y_double|)
constexpr double kGeluTol = 1e-6;          // |y_ref - y_double| / max(1, |y_double|)

// Value written into padding / out-of-range areas: kernels must neither read it into results
// (it is a NaN, so any read shows up) nor overwrite it.
const float kSentinel = bl_u2f(0x7FC0DEADu);

// ---- deterministic inputs (no std:: distributions: their output is implementation-defined) -----
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<uint32_t>(s >> 32);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next() >> 8) * (1.0f / 16777216.0f); }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  // (memcmp of 0 bytes from an empty vector's null data() is undefined: UBSan says so.)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}
size_t first_diff(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (bl_f2u(a[i]) != bl_f2u(b[i])) return i;
  return a.size();
}

// A rows × cols matrix with row stride ld ≥ cols; the padding (and one extra guard row) holds kSentinel.
struct Strided {
  size_t rows, cols, ld;
  std::vector<float> buf;
  Strided(size_t r, size_t c, size_t l) : rows(r), cols(c), ld(l), buf((r + 1) * l, kSentinel) {}
  float* data() { return buf.data(); }
  float& at(size_t r, size_t c) { return buf[r * ld + c]; }
  void fill(Rng& rng, float lo, float hi) {
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) at(r, c) = rng.uniform(lo, hi);
  }
  bool padding_intact() const {
    for (size_t i = 0; i < buf.size(); ++i)
      if ((i / ld >= rows || i % ld >= cols) && bl_f2u(buf[i]) != bl_f2u(kSentinel)) return false;
    return true;
  }
};

// LayerNorm inputs: x = offset + scale·U(−1, 1) per element, gamma ∈ U(0.5, 1.5), beta ∈ U(−0.5, 0.5).
void layernorm_inputs(Rng& rng, Strided& x, float offset, float scale, std::vector<float>& gamma, std::vector<float>& beta) {
  for (size_t r = 0; r < x.rows; ++r)
    for (size_t i = 0; i < x.cols; ++i) x.at(r, i) = offset + scale * rng.uniform(-1.0f, 1.0f);
  gamma.resize(x.cols), beta.resize(x.cols);
  for (auto& g : gamma) g = rng.uniform(0.5f, 1.5f);
  for (auto& v : beta) v = rng.uniform(-0.5f, 0.5f);
}

// ---- the shared tester: one entry point per kernel family, each running the optimised kernels
// against the reference on the same inputs and checking the reference against double precision.
struct KernelTester {
  using Gemm = void (*)(size_t, size_t, size_t, const float*, size_t, const float*, const float*, float*, size_t);
  using Softmax = void (*)(size_t, size_t, float*, size_t);
  using LayerNorm = void (*)(size_t, size_t, const float*, size_t, const float*, const float*, float, float*, size_t);
  using Gelu = void (*)(size_t, float*);
  struct GemmImpl { const char* name; Gemm fn; };

  std::vector<GemmImpl> gemms = {{"f32_gemm_4x8_wasmsimd", f32_gemm_4x8_wasmsimd}};

  // C[M,N] = A[M,K] · W[N,K]ᵀ (+bias). W comes from a row-major [N][K] source (stride_n = ldw,
  // stride_k = 1) or, if `transposed`, from a [K][N] source (stride_n = 1, stride_k = ldw).
  void gemm(size_t M, size_t N, size_t K, size_t lda, size_t ldc, bool with_bias, bool transposed,
            uint64_t seed, float a_lo = -1.0f, float a_hi = 1.0f) {
    CAPTURE(M);
    CAPTURE(N);
    CAPTURE(K);
    CAPTURE(lda);
    CAPTURE(ldc);
    CAPTURE(with_bias);
    CAPTURE(transposed);
    Rng rng(seed);
    Strided A(M, K, lda);
    A.fill(rng, a_lo, a_hi);
    Strided W = transposed ? Strided(K, N, N + 2) : Strided(N, K, K + 1);
    W.fill(rng, -1.0f, 1.0f);
    auto w_at = [&](size_t n, size_t k) { return transposed ? W.at(k, n) : W.at(n, k); };
    std::vector<float> bias(N);
    for (auto& b : bias) b = rng.uniform(-1.0f, 1.0f);

    const size_t packed_n = f32_gemm_packed_floats(N, K);
    REQUIRE(packed_n == (N + F32_GEMM_NR - 1) / F32_GEMM_NR * F32_GEMM_NR * K);
    std::vector<float> packed(packed_n + 16, kSentinel);
    if (transposed)
      f32_gemm_pack(N, K, W.data(), 1, W.ld, packed.data());
    else
      f32_gemm_pack(N, K, W.data(), W.ld, 1, packed.data());
    // Layout and zero padding exactly as documented in kernels.h; nothing written past the end.
    bool layout_ok = true;
    const size_t n_padded = (N + F32_GEMM_NR - 1) / F32_GEMM_NR * F32_GEMM_NR;
    for (size_t n = 0; n < n_padded; ++n)
      for (size_t k = 0; k < K; ++k) {
        const float expect = n < N ? w_at(n, k) : 0.0f;
        const float got = packed[(n / F32_GEMM_NR) * K * F32_GEMM_NR + k * F32_GEMM_NR + n % F32_GEMM_NR];
        if (bl_f2u(got) != bl_f2u(expect)) layout_ok = false;
      }
    for (size_t i = packed_n; i < packed.size(); ++i)
      if (bl_f2u(packed[i]) != bl_f2u(kSentinel)) layout_ok = false;
    CHECK_MESSAGE(layout_ok, "f32_gemm_pack layout / zero padding / bounds");

    const float* b = with_bias ? bias.data() : nullptr;
    Strided Cref(M, N, ldc);
    f32_gemm_ref(M, N, K, A.data(), lda, packed.data(), b, Cref.data(), ldc);
    CHECK_MESSAGE(Cref.padding_intact(), "f32_gemm_ref wrote outside C[M,N]");

    // Reference vs double precision, error relative to Σ|a·w| + |bias| (the natural scale).
    double worst = 0.0;
    for (size_t m = 0; m < M; ++m)
      for (size_t n = 0; n < N; ++n) {
        double acc = 0.0, mag = 0.0;
        for (size_t k = 0; k < K; ++k) {
          acc += double(A.at(m, k)) * double(w_at(n, k));
          mag += std::fabs(double(A.at(m, k)) * double(w_at(n, k)));
        }
        if (b) {
          acc += b[n];
          mag += std::fabs(double(b[n]));
        }
        const double err = std::fabs(double(Cref.at(m, n)) - acc) / (mag > 0 ? mag : 1.0);
        if (err > worst) worst = err;
      }
    CHECK(worst <= kGemmRelTol);

    for (const auto& impl : gemms) {
      CAPTURE(impl.name);
      Strided C(M, N, ldc);
      impl.fn(M, N, K, A.data(), lda, packed.data(), b, C.data(), ldc);
      const size_t d = first_diff(C.buf, Cref.buf);
      CAPTURE(d);
      CHECK_MESSAGE(same_bits(C.buf, Cref.buf), "not bit-identical to f32_gemm_ref (incl. untouched padding)");
    }
  }

  // Softmax over `rows` rows of length n with row stride ld; returns the rows after the reference.
  void softmax(const std::vector<Softmax>& impls, size_t rows, size_t n, size_t ld, const std::vector<float>& in) {
    CAPTURE(rows);
    CAPTURE(n);
    CAPTURE(ld);
    Strided ref(rows, n, ld);
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < n; ++i) ref.at(r, i) = in[r * n + i];
    Strided orig = ref;
    f32_softmax_ref(rows, n, ref.data(), ld);
    CHECK(ref.padding_intact());
    double worst = 0.0, worst_sum = 0.0;
    bool finite = true;
    for (size_t r = 0; r < rows; ++r) {
      double mx = -std::numeric_limits<double>::infinity();
      for (size_t i = 0; i < n; ++i) mx = std::fmax(mx, double(orig.at(r, i)));
      double s = 0.0;
      for (size_t i = 0; i < n; ++i) s += std::exp(double(orig.at(r, i)) - mx);
      double got_sum = 0.0;
      for (size_t i = 0; i < n; ++i) {
        const double expect = std::exp(double(orig.at(r, i)) - mx) / s;
        finite = finite && std::isfinite(ref.at(r, i));
        worst = std::fmax(worst, std::fabs(double(ref.at(r, i)) - expect));
        got_sum += ref.at(r, i);
      }
      worst_sum = std::fmax(worst_sum, std::fabs(got_sum - 1.0));
    }
    CHECK(finite);
    CHECK(worst <= kSoftmaxAbsTol);
    CHECK(worst_sum <= kSoftmaxSumTol);
    for (auto fn : impls) {
      Strided got = orig;
      fn(rows, n, got.data(), ld);
      CAPTURE(first_diff(got.buf, ref.buf));
      CHECK_MESSAGE(same_bits(got.buf, ref.buf), "softmax kernel not bit-identical to f32_softmax_ref");
    }
  }

  void layernorm(const std::vector<LayerNorm>& impls, size_t rows, size_t n, size_t ldx, size_t ldy,
                 uint64_t seed, float offset, float scale) {
    CAPTURE(rows);
    CAPTURE(n);
    CAPTURE(offset);
    CAPTURE(scale);
    Rng rng(seed);
    Strided x(rows, n, ldx);
    std::vector<float> gamma, beta;
    layernorm_inputs(rng, x, offset, scale, gamma, beta);
    const float eps = 1e-6f;
    Strided ref(rows, n, ldy);
    f32_layernorm_ref(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, ref.data(), ldy);
    CHECK(ref.padding_intact());
    double worst = 0.0;
    for (size_t r = 0; r < rows; ++r) {
      double mean = 0.0, var = 0.0;
      for (size_t i = 0; i < n; ++i) mean += x.at(r, i);
      mean /= double(n);
      for (size_t i = 0; i < n; ++i) var += (x.at(r, i) - mean) * (x.at(r, i) - mean);
      var /= double(n);
      const double rstd = 1.0 / std::sqrt(var + double(eps));
      for (size_t i = 0; i < n; ++i) {
        const double expect = (x.at(r, i) - mean) * rstd * gamma[i] + beta[i];
        worst = std::fmax(worst, std::fabs(double(ref.at(r, i)) - expect) / std::fmax(1.0, std::fabs(expect)));
      }
    }
    CHECK(worst <= kLayerNormRelTol);
    for (auto fn : impls) {
      Strided got(rows, n, ldy);
      fn(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, got.data(), ldy);
      CAPTURE(first_diff(got.buf, ref.buf));
      CHECK_MESSAGE(same_bits(got.buf, ref.buf), "layernorm kernel not bit-identical to f32_layernorm_ref");
    }
  }

  // GELU on a buffer with one sentinel guard on each side; `exact` is the double-precision formula.
  template <class Exact>
  void gelu(Gelu ref_fn, const std::vector<Gelu>& impls, const std::vector<float>& in, Exact exact) {
    CAPTURE(in.size());
    std::vector<float> ref(in.size() + 2, kSentinel);
    std::copy(in.begin(), in.end(), ref.begin() + 1);
    const std::vector<float> orig = ref;
    ref_fn(in.size(), ref.data() + 1);
    CHECK(bl_f2u(ref.front()) == bl_f2u(kSentinel));
    CHECK(bl_f2u(ref.back()) == bl_f2u(kSentinel));
    double worst = 0.0;
    for (size_t i = 0; i < in.size(); ++i) {
      const double expect = exact(double(in[i]));
      worst = std::fmax(worst, std::fabs(double(ref[i + 1]) - expect) / std::fmax(1.0, std::fabs(expect)));
    }
    CHECK(worst <= kGeluTol);
    for (auto fn : impls) {
      std::vector<float> got = orig;
      fn(in.size(), got.data() + 1);
      CAPTURE(first_diff(got, ref));
      CHECK_MESSAGE(same_bits(got, ref), "gelu kernel not bit-identical to its reference");
    }
  }
};

const size_t kGemmM[] = {1, 2, 3, 4, 5, 7, 8, 13, 17, 50};
const size_t kGemmN[] = {1, 7, 8, 9, 15, 16, 17, 24, 33, 64};
const size_t kGemmK[] = {1, 2, 3, 7, 8, 16, 64, 65};
const size_t kRowSizes[] = {1, 3, 4, 5, 8, 17, 50, 64, 197};

double gelu_exact_d(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_d(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

// Evaluates a scalar function and its x4 twin on `xs` (padded to a multiple of 4) and compares
// bits. NaNs only have to be NaN on both sides: WebAssembly leaves the sign/payload of a NaN
// produced by arithmetic nondeterministic (V8 gives 0x7FC00000 from f32x4 ops, 0xFFC00000 from
// scalar f32 ops on x64), so NaN bits can legitimately differ between the two forms.
template <class S, class V>
bool scalar_matches_x4(const std::vector<float>& xs, S scalar, V vec) {
  for (size_t i = 0; i < xs.size(); i += 4) {
    float in[4], out[4];
    for (size_t l = 0; l < 4; ++l) in[l] = xs[i + l < xs.size() ? i + l : 0];
    wasm_v128_store(out, vec(wasm_v128_load(in)));
    for (size_t l = 0; l < 4; ++l) {
      const float s = scalar(in[l]);
      if (std::isnan(s) && std::isnan(out[l])) continue;
      if (bl_f2u(out[l]) != bl_f2u(s)) return false;
    }
  }
  return true;
}

std::vector<float> grid(double lo, double hi, double step) {
  std::vector<float> xs;
  for (double x = lo; x <= hi; x += step) xs.push_back(static_cast<float>(x));
  return xs;
}

const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

// ---------------------------------------------------------------------------------------------
// math functions

TEST_CASE("bl_expf: relative error <= 2e-7 vs std::exp(double) on a dense grid over [-87, 88.7]") {
  double worst = 0.0;
  float at = 0.0f;
  for (float x : grid(-87.0, 88.7, 1.0 / 1024 + 1e-7)) {
    const double r = std::exp(double(x));
    const double e = std::fabs(double(bl_expf(x)) - r) / r;
    if (e > worst) worst = e, at = x;
  }
  CAPTURE(at);
  CHECK(worst <= kExpRelTol);
}

TEST_CASE("bl_expf_x4_le88 is bl_expf_x4 bit for bit on [-200, 88] (dense), below the flush point, at -0/+0/-inf and for NaN") {
  std::vector<float> xs = grid(-200.0, 88.0, 1.0 / 512 + 1e-9);
  for (float x : grid(-88.0, -86.0, 1e-5)) xs.push_back(x);
  xs.insert(xs.end(), {0.0f, -0.0f, -kInf, kNaN, -87.33654f, std::nextafter(-87.33654f, -1e9f), std::nextafter(-87.33654f, 0.0f), 88.0f,
                       1e-30f, -1e-30f, -1e30f});
  xs.resize((xs.size() + 3) / 4 * 4, 0.0f);
  for (size_t i = 0; i < xs.size(); i += 4) {
    float a[4], b[4];
    wasm_v128_store(a, bl_expf_x4(wasm_v128_load(&xs[i])));
    wasm_v128_store(b, bl_expf_x4_le88(wasm_v128_load(&xs[i])));
    for (size_t l = 0; l < 4; ++l) {
      CAPTURE(xs[i + l]);
      if (std::isnan(a[l])) CHECK(std::isnan(b[l]));
      else CHECK(bl_f2u(a[l]) == bl_f2u(b[l]));
    }
  }
}

TEST_CASE("bl_expf: special values (0 -> 1 exactly, underflow to 0, overflow to inf, NaN -> NaN)") {
  CHECK(bl_expf(0.0f) == 1.0f);
  CHECK(bl_expf(-0.0f) == 1.0f);
  CHECK(bl_expf(-87.4f) == 0.0f);
  CHECK(bl_expf(-1000.0f) == 0.0f);
  CHECK(bl_expf(-kInf) == 0.0f);
  CHECK(bl_expf(88.72f) == doctest::Approx(std::exp(double(88.72f))).epsilon(kExpRelTol));
  CHECK(bl_expf(88.8f) == kInf);
  CHECK(bl_expf(1000.0f) == kInf);
  CHECK(bl_expf(kInf) == kInf);
  CHECK(std::isnan(bl_expf(kNaN)));
}

TEST_CASE("bl_tanhf: absolute error <= 1e-6 vs std::tanh(double) on a dense grid over [-20, 20], odd, saturates") {
  double worst = 0.0;
  float at = 0.0f;
  for (float x : grid(-20.0, 20.0, 1.0 / 4096)) {
    const double e = std::fabs(double(bl_tanhf(x)) - std::tanh(double(x)));
    if (e > worst) worst = e, at = x;
  }
  CAPTURE(at);
  CHECK(worst <= kTanhAbsTol);
  CHECK(bl_tanhf(0.0f) == 0.0f);
  CHECK(bl_tanhf(kInf) == 1.0f);
  CHECK(bl_tanhf(-kInf) == -1.0f);
  CHECK(std::isnan(bl_tanhf(kNaN)));
  for (float x : grid(0.0, 10.0, 0.01)) CHECK(bl_tanhf(-x) == -bl_tanhf(x));
}

TEST_CASE("bl_expf/bl_tanhf: scalar and x4 versions are bit-identical (NaN == NaN) on dense grids, special values and random bit patterns") {
  std::vector<float> specials = {0.0f, -0.0f, kInf, -kInf, kNaN, 1e-30f, -1e-30f, 1e-45f, 88.72f, 88.8f,
                                 -87.33654f, -87.4f, 0.625f, -0.625f, 1.0f, -1.0f, 9.0f, 10.0f, 3e38f, -3e38f};
  auto with = [&](std::vector<float> g) {
    g.insert(g.end(), specials.begin(), specials.end());
    return g;
  };
  CHECK(scalar_matches_x4(with(grid(-100.0, 100.0, 1.0 / 512 + 1e-7)), bl_expf, bl_expf_x4));
  CHECK(scalar_matches_x4(with(grid(-20.0, 20.0, 1.0 / 2048 + 1e-8)), bl_tanhf, bl_tanhf_x4));
  // random bit patterns: every finite float class
  Rng rng(7);
  std::vector<float> rnd;
  for (int i = 0; i < 40000; ++i) rnd.push_back(bl_u2f(rng.next()));
  CHECK(scalar_matches_x4(rnd, bl_expf, bl_expf_x4));
  CHECK(scalar_matches_x4(rnd, bl_tanhf, bl_tanhf_x4));
}

// ---------------------------------------------------------------------------------------------
// GEMM

TEST_CASE("f32 GEMM: optimised kernels bit-identical to f32_gemm_ref over edge shapes (M/N/K tails, strided A/C, bias, transposed pack); ref within 1e-5 of double GEMM") {
  KernelTester t;
  uint64_t seed = 1;
  for (size_t M : kGemmM)
    for (size_t N : kGemmN)
      for (size_t K : kGemmK) {
        // strided A (lda > K) and C (ldc > N), all four bias / source-layout combinations
        for (int v = 0; v < 4; ++v) t.gemm(M, N, K, K + 3, N + 5, v & 1, v & 2, seed++);
        // tight strides
        t.gemm(M, N, K, K, N, true, false, seed++);
      }
}

TEST_CASE("f32 GEMM: ViT-sized shapes (197x192x768, 197x768x64 via transposed pack) bit-identical to the reference") {
  KernelTester t;
  t.gemm(197, 768, 192, 192, 768, true, false, 99);
  t.gemm(197, 64, 197, 200, 64, false, true, 100);
}

TEST_CASE("f32 GEMM: accumulation starts at +0 (all-(-0) products give +0), K = 0 gives bias / +0") {
  const size_t M = 5, N = 9, K = 3;
  std::vector<float> A(M * K, -0.0f), W(N * K, 1.0f), bias(N, -0.0f);
  std::vector<float> packed(f32_gemm_packed_floats(N, K));
  f32_gemm_pack(N, K, W.data(), K, 1, packed.data());
  for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
    std::vector<float> Cref(M * N, kSentinel), C(M * N, kSentinel);
    f32_gemm_ref(M, N, K, A.data(), K, packed.data(), b, Cref.data(), N);
    f32_gemm_4x8_wasmsimd(M, N, K, A.data(), K, packed.data(), b, C.data(), N);
    for (float v : Cref) CHECK(bl_f2u(v) == 0u);  // +0: 0 + (-0) = +0, and +0 + (-0) bias = +0
    CHECK(same_bits(C, Cref));
  }
  std::vector<float> bias2 = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> Cref(M * N, kSentinel), C(M * N, kSentinel);
  f32_gemm_ref(M, N, 0, A.data(), 0, packed.data(), bias2.data(), Cref.data(), N);
  f32_gemm_4x8_wasmsimd(M, N, 0, A.data(), 0, packed.data(), bias2.data(), C.data(), N);
  CHECK(Cref[N + 8] == 9.0f);
  CHECK(same_bits(C, Cref));
}

// ---------------------------------------------------------------------------------------------
// softmax / layernorm / gelu

TEST_CASE("softmax: wasmsimd bit-identical to ref for n in {1..197} with strided rows; ref within 1e-6 of double; rows sum to 1") {
  KernelTester t;
  uint64_t seed = 11;
  for (size_t n : kRowSizes) {
    const size_t rows = 5;
    Rng rng(seed++);
    std::vector<float> in(rows * n);
    for (auto& v : in) v = rng.uniform(-10.0f, 10.0f);
    t.softmax({f32_softmax_wasmsimd}, rows, n, n + 3, in);
    t.softmax({f32_softmax_wasmsimd}, rows, n, n, in);
  }
}

TEST_CASE("softmax: robust to large inputs (x = +-1000, mixed): no NaN/inf, exact one-hot/uniform rows") {
  KernelTester t;
  for (size_t n : kRowSizes) {
    std::vector<float> in;
    for (size_t i = 0; i < n; ++i) in.push_back(1000.0f);                             // all equal, large
    for (size_t i = 0; i < n; ++i) in.push_back(-1000.0f);                            // all equal, very negative
    for (size_t i = 0; i < n; ++i) in.push_back(i == n / 2 ? 1000.0f : -1000.0f);     // one-hot
    for (size_t i = 0; i < n; ++i) in.push_back(i % 2 ? 1000.0f : 999.0f);           // large, close
    t.softmax({f32_softmax_wasmsimd}, 4, n, n + 1, in);
    std::vector<float> x = in;
    f32_softmax_wasmsimd(4, n, x.data(), n);
    CHECK(x[2 * n + n / 2] == 1.0f);
    CHECK(x[n + n - 1] == doctest::Approx(1.0 / double(n)).epsilon(1e-6));
  }
}

TEST_CASE("layernorm: wasmsimd bit-identical to ref for n in {1..197} with strided rows; ref within 1e-5 (rel) of double two-pass") {
  KernelTester t;
  uint64_t seed = 21;
  for (size_t n : kRowSizes) {
    t.layernorm({f32_layernorm_wasmsimd}, 4, n, n + 2, n + 5, seed++, 0.0f, 1.0f);
    t.layernorm({f32_layernorm_wasmsimd}, 4, n, n, n, seed++, 3.0f, 2.0f);      // offset mean
    t.layernorm({f32_layernorm_wasmsimd}, 3, n, n + 1, n, seed++, 20.0f, 1.0f);   // |mean| >> std
    // (The float Σx/n has error ~ eps·|mean|·√n, amplified by |mean|/std in y; a mean of 50 with
    // spread 0.01 gives ~1e-3, an inherent limit of the specified single-precision formula.)
  }
}

TEST_CASE("gelu (erf and tanh forms): wasmsimd bit-identical to ref for n in {1..197} and a dense grid; ref within 1e-6 of double") {
  KernelTester t;
  uint64_t seed = 31;
  for (size_t n : kRowSizes) {
    Rng rng(seed++);
    std::vector<float> in(n);
    for (auto& v : in) v = rng.uniform(-8.0f, 8.0f);
    t.gelu(f32_gelu_ref, {f32_gelu_wasmsimd}, in, gelu_exact_d);
    t.gelu(f32_gelu_tanh_ref, {f32_gelu_tanh_wasmsimd}, in, gelu_tanh_d);
  }
  const std::vector<float> g = grid(-12.0, 12.0, 1.0 / 1024 + 1e-8);
  t.gelu(f32_gelu_ref, {f32_gelu_wasmsimd}, g, gelu_exact_d);
  t.gelu(f32_gelu_tanh_ref, {f32_gelu_tanh_wasmsimd}, g, gelu_tanh_d);
  // Special values, through the SIMD lanes and the scalar tail (5 values): NaN stays NaN, +inf stays
  // +inf, zero stays zero, far negative inputs give (−)0 and far positive ones themselves.
  for (auto fn : {f32_gelu_ref, f32_gelu_wasmsimd}) {
    float v[5] = {kNaN, kInf, 0.0f, -30.0f, 1e30f};
    fn(5, v);
    CHECK(std::isnan(v[0]));
    CHECK(v[1] == kInf);
    CHECK(v[2] == 0.0f);
    CHECK(v[3] == 0.0f);
    CHECK(v[4] == 1e30f);
    float tail[5] = {1.0f, 1.0f, 1.0f, 1.0f, kNaN};
    fn(5, tail);
    CHECK(std::isnan(tail[4]));
  }
}

// ---------------------------------------------------------------------------------------------
// training (backward pass): unpacked nn / tn GEMMs, LayerNorm with saved statistics and its backward,
// GELU and softmax backward

namespace {

constexpr double kLayerNormStatTol = 1e-6;    // saved mean / rstd vs double, relative to max(1, |value|)
constexpr double kLayerNormBwdTol = 2e-5;     // |grad_ref − central difference| / max(1, |difference|), n ≤ 197
constexpr double kGeluBwdTol = 5e-6;          // |GELU'_ref − central difference of the double formula| / max(1, ·)
constexpr double kSoftmaxBwdTol = 1e-6;       // |dx_ref − central difference| (|dy| ≤ 1, so dx is O(1))
constexpr double kFdStep = 1e-4;              // central-difference step (in double: O(h²) ≈ 1e-8 error)

using GemmNN = void (*)(size_t, size_t, size_t, const float*, size_t, const float*, size_t, float*, size_t, bool);

// One nn (C = A·B, A: M×K) or tn (C = Aᵀ·B, A: K×M) shape with strided, sentinel-padded A, B and C.
// accumulate: C starts random and must come out C + A·B; otherwise C's interior starts as the sentinel
// (a NaN, so reading it shows up) and must come out A·B.
void check_gemm_bw(bool tn, size_t M, size_t N, size_t K, size_t lda, size_t ldb, size_t ldc, bool accumulate,
                   uint64_t seed) {
  CAPTURE(tn);
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(lda);
  CAPTURE(ldb);
  CAPTURE(ldc);
  CAPTURE(accumulate);
  Rng rng(seed);
  Strided A = tn ? Strided(K, M, lda) : Strided(M, K, lda);
  A.fill(rng, -1.0f, 1.0f);
  Strided B(K, N, ldb);
  B.fill(rng, -1.0f, 1.0f);
  Strided C0(M, N, ldc);
  if (accumulate) C0.fill(rng, -2.0f, 2.0f);
  auto a_at = [&](size_t m, size_t k) { return tn ? A.at(k, m) : A.at(m, k); };
  const GemmNN ref = tn ? f32_gemm_tn_ref : f32_gemm_nn_ref;
  const GemmNN simd = tn ? f32_gemm_tn_4x8_wasmsimd : f32_gemm_nn_4x8_wasmsimd;
  const Strided A0 = A, B0 = B;

  Strided Cref = C0;
  ref(M, N, K, A.data(), lda, B.data(), ldb, Cref.data(), ldc, accumulate);
  CHECK_MESSAGE(Cref.padding_intact(), "reference wrote outside C[M,N]");
  double worst = 0.0;
  for (size_t m = 0; m < M; ++m)
    for (size_t n = 0; n < N; ++n) {
      double acc = 0.0, mag = 0.0;
      for (size_t k = 0; k < K; ++k) {
        acc += double(a_at(m, k)) * double(B.at(k, n));
        mag += std::fabs(double(a_at(m, k)) * double(B.at(k, n)));
      }
      if (accumulate) {
        acc += double(C0.at(m, n));
        mag += std::fabs(double(C0.at(m, n)));
      }
      worst = std::fmax(worst, std::fabs(double(Cref.at(m, n)) - acc) / (mag > 0 ? mag : 1.0));
    }
  CHECK(worst <= kGemmRelTol);

  Strided C = C0;
  simd(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate);
  CAPTURE(first_diff(C.buf, Cref.buf));
  CHECK_MESSAGE(same_bits(C.buf, Cref.buf), "not bit-identical to the reference (incl. untouched padding)");
  CHECK_MESSAGE((same_bits(A.buf, A0.buf) && same_bits(B.buf, B0.buf)), "inputs modified");
}

// Double-precision LayerNorm of one row (the formula of kernels.h, biased variance, two passes).
void layernorm_row_d(size_t n, const double* x, const double* gamma, const double* beta, double eps, double* y,
                     double* mean_out = nullptr, double* rstd_out = nullptr) {
  double mean = 0.0, var = 0.0;
  for (size_t i = 0; i < n; ++i) mean += x[i];
  mean /= double(n);
  for (size_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= double(n);
  const double rstd = 1.0 / std::sqrt(var + eps);
  for (size_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  if (mean_out) *mean_out = mean;
  if (rstd_out) *rstd_out = rstd;
}

// f32_layernorm_fwd_{ref,wasmsimd}: y bit-identical to f32_layernorm_ref, mean / rstd (between sentinel
// guards) equal to the double statistics, the SIMD form bit-identical to the reference, null stats allowed.
void check_layernorm_fwd(size_t rows, size_t n, size_t ldx, size_t ldy, uint64_t seed, float offset, float scale) {
  CAPTURE(rows);
  CAPTURE(n);
  Rng rng(seed);
  Strided x(rows, n, ldx);
  std::vector<float> gamma, beta;
  layernorm_inputs(rng, x, offset, scale, gamma, beta);
  const float eps = 1e-6f;
  Strided y0(rows, n, ldy);
  f32_layernorm_ref(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, y0.data(), ldy);

  Strided yref(rows, n, ldy);
  std::vector<float> mref(rows + 2, kSentinel), rref(rows + 2, kSentinel);
  f32_layernorm_fwd_ref(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, yref.data(), ldy, mref.data() + 1,
                        rref.data() + 1);
  CHECK_MESSAGE(same_bits(yref.buf, y0.buf), "f32_layernorm_fwd_ref's y differs from f32_layernorm_ref");
  CHECK((bl_f2u(mref.front()) == bl_f2u(kSentinel) && bl_f2u(mref.back()) == bl_f2u(kSentinel)));
  CHECK((bl_f2u(rref.front()) == bl_f2u(kSentinel) && bl_f2u(rref.back()) == bl_f2u(kSentinel)));
  double worst = 0.0;
  std::vector<double> xd(n), gd(gamma.begin(), gamma.end()), bd(beta.begin(), beta.end()), yd(n);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < n; ++i) xd[i] = x.at(r, i);
    double mean, rstd;
    layernorm_row_d(n, xd.data(), gd.data(), bd.data(), double(eps), yd.data(), &mean, &rstd);
    worst = std::fmax(worst, std::fabs(double(mref[r + 1]) - mean) / std::fmax(1.0, std::fabs(mean)));
    worst = std::fmax(worst, std::fabs(double(rref[r + 1]) - rstd) / std::fmax(1.0, std::fabs(rstd)));
  }
  CHECK(worst <= kLayerNormStatTol);

  Strided y(rows, n, ldy);
  std::vector<float> m(rows + 2, kSentinel), rs(rows + 2, kSentinel);
  f32_layernorm_fwd_wasmsimd(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, y.data(), ldy, m.data() + 1,
                             rs.data() + 1);
  CHECK_MESSAGE(same_bits(y.buf, yref.buf), "f32_layernorm_fwd_wasmsimd's y not bit-identical");
  CHECK(same_bits(m, mref));
  CHECK(same_bits(rs, rref));
  Strided y2(rows, n, ldy);
  f32_layernorm_fwd_wasmsimd(rows, n, x.data(), ldx, gamma.data(), beta.data(), eps, y2.data(), ldy, nullptr, nullptr);
  CHECK(same_bits(y2.buf, yref.buf));
}

// f32_layernorm_bwd: the SIMD form bit-identical to the reference (dx, dgamma, dbeta accumulate into
// random starting values; padding and guards untouched), and the reference's gradients of
// L = Σ dy ⊙ LayerNorm(x) equal central differences of the double-precision forward (x, gamma and beta).
void check_layernorm_bwd(size_t rows, size_t n, size_t ld, uint64_t seed, float offset, float scale) {
  CAPTURE(rows);
  CAPTURE(n);
  CAPTURE(ld);
  CAPTURE(offset);
  CAPTURE(scale);
  Rng rng(seed);
  Strided x(rows, n, ld), dy(rows, n, ld + 1), dx0(rows, n, ld + 2);
  std::vector<float> gamma, beta, dg0(n + 1, kSentinel), db0(n + 1, kSentinel);
  layernorm_inputs(rng, x, offset, scale, gamma, beta);
  dy.fill(rng, -1.0f, 1.0f);
  dx0.fill(rng, -1.0f, 1.0f);
  for (size_t i = 0; i < n; ++i) dg0[i] = rng.uniform(-1.0f, 1.0f), db0[i] = rng.uniform(-1.0f, 1.0f);
  const float eps = 1e-5f;
  Strided y(rows, n, n);
  std::vector<float> mean(rows), rstd(rows);
  f32_layernorm_fwd_ref(rows, n, x.data(), ld, gamma.data(), beta.data(), eps, y.data(), n, mean.data(), rstd.data());

  Strided dxr = dx0;
  std::vector<float> dgr = dg0, dbr = db0;
  f32_layernorm_bwd_ref(rows, n, dy.data(), dy.ld, x.data(), ld, gamma.data(), mean.data(), rstd.data(), dxr.data(),
                        dxr.ld, dgr.data(), dbr.data());
  CHECK(dxr.padding_intact());
  CHECK(bl_f2u(dgr[n]) == bl_f2u(kSentinel));
  CHECK(bl_f2u(dbr[n]) == bl_f2u(kSentinel));
  Strided dxs = dx0;
  std::vector<float> dgs = dg0, dbs = db0;
  f32_layernorm_bwd_wasmsimd(rows, n, dy.data(), dy.ld, x.data(), ld, gamma.data(), mean.data(), rstd.data(), dxs.data(),
                             dxs.ld, dgs.data(), dbs.data());
  CAPTURE(first_diff(dxs.buf, dxr.buf));
  CHECK_MESSAGE(same_bits(dxs.buf, dxr.buf), "f32_layernorm_bwd_wasmsimd's dx not bit-identical");
  CHECK_MESSAGE(same_bits(dgs, dgr), "f32_layernorm_bwd_wasmsimd's dgamma not bit-identical");
  CHECK_MESSAGE(same_bits(dbs, dbr), "f32_layernorm_bwd_wasmsimd's dbeta not bit-identical");

  // Central differences. The reference's gradient is its output minus the starting value, computed in
  // double (exact: both are floats of similar size... the subtraction's rounding is within the tolerance).
  std::vector<double> gd(gamma.begin(), gamma.end()), bd(beta.begin(), beta.end()), xd(n), yp(n), ym(n);
  std::vector<double> fd_g(n, 0.0), fd_b(n, 0.0);
  auto loss = [&](size_t r, const std::vector<double>& xr, const std::vector<double>& g, const std::vector<double>& b,
                  std::vector<double>& out) {
    layernorm_row_d(n, xr.data(), g.data(), b.data(), double(eps), out.data());
    double L = 0.0;
    for (size_t i = 0; i < n; ++i) L += double(dy.at(r, i)) * out[i];
    return L;
  };
  const double h = kFdStep;
  double worst = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < n; ++i) xd[i] = x.at(r, i);
    for (size_t i = 0; i < n; ++i) {
      std::vector<double> xp = xd, xm = xd;
      xp[i] += h;
      xm[i] -= h;
      const double fd = (loss(r, xp, gd, bd, yp) - loss(r, xm, gd, bd, ym)) / (2 * h);
      const double got = double(dxr.at(r, i)) - double(dx0.at(r, i));
      worst = std::fmax(worst, std::fabs(got - fd) / std::fmax(1.0, std::fabs(fd)));
      std::vector<double> gp = gd, gm = gd, bp = bd, bm = bd;
      gp[i] += h;
      gm[i] -= h;
      bp[i] += h;
      bm[i] -= h;
      fd_g[i] += (loss(r, xd, gp, bd, yp) - loss(r, xd, gm, bd, ym)) / (2 * h);
      fd_b[i] += (loss(r, xd, gd, bp, yp) - loss(r, xd, gd, bm, ym)) / (2 * h);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    worst = std::fmax(worst, std::fabs(double(dgr[i]) - double(dg0[i]) - fd_g[i]) / std::fmax(1.0, std::fabs(fd_g[i])));
    worst = std::fmax(worst, std::fabs(double(dbr[i]) - double(db0[i]) - fd_b[i]) / std::fmax(1.0, std::fabs(fd_b[i])));
  }
  CHECK(worst <= kLayerNormBwdTol);
}

// The forwards' formulas in double with the kernels' own float coefficients (gelu.cpp), for central
// differences: E is the same rational function with the same clamp.
double gelu_erf_formula_d(double x) {
  const double P[] = {7.9788446426e-01f, 6.7376807332e-02f, 9.3333953992e-03f, 3.3427093877e-04f, 1.2677490304e-05f,
                      4.5719410480e-08f};
  const double Q[] = {1.0, 2.5111031532e-01f, 2.8550649062e-02f, 1.8747417489e-03f, 7.3100985901e-05f,
                      1.1997843785e-06f};
  double e;
  if (std::fabs(x) >= 5.5) {
    e = x > 0 ? 1.0 : -1.0;
  } else {
    const double t = x * x;
    double p = P[5], q = Q[5];
    for (int i = 4; i >= 0; --i) p = p * t + P[i], q = q * t + Q[i];
    e = std::fmax(-1.0, std::fmin(1.0, x * p / q));
  }
  return 0.5 * x * (1.0 + e);
}
double gelu_tanh_formula_d(double x) {
  return 0.5 * x * (1.0 + std::tanh(double(0.79788456080286536f) * (x + double(0.044715f) * x * x * x)));
}

// dx = dy · GELU'(x) on buffers with a sentinel guard on each side: the SIMD form bit-identical to the
// reference (also with dx aliasing dy), GELU' within kGeluBwdTol of a central difference of the double
// formula (skipping the points whose stencil straddles the erf form's clamp at ±5.5, where the formula
// steps by its last-bit error).
void check_gelu_bwd(bool tanh_form, const std::vector<float>& xs, uint64_t seed) {
  CAPTURE(tanh_form);
  CAPTURE(xs.size());
  using Bwd = void (*)(size_t, const float*, const float*, float*);
  const Bwd ref = tanh_form ? f32_gelu_tanh_bwd_ref : f32_gelu_bwd_ref;
  const Bwd simd = tanh_form ? f32_gelu_tanh_bwd_wasmsimd : f32_gelu_bwd_wasmsimd;
  const size_t n = xs.size();
  Rng rng(seed);
  std::vector<float> x(n + 2, kSentinel), dy(n + 2, kSentinel), ones(n + 2, kSentinel);
  for (size_t i = 0; i < n; ++i) x[i + 1] = xs[i], dy[i + 1] = rng.uniform(-2.0f, 2.0f), ones[i + 1] = 1.0f;
  std::vector<float> dref(n + 2, kSentinel), dsimd(n + 2, kSentinel);
  ref(n, x.data() + 1, dy.data() + 1, dref.data() + 1);
  simd(n, x.data() + 1, dy.data() + 1, dsimd.data() + 1);
  CHECK((bl_f2u(dref.front()) == bl_f2u(kSentinel) && bl_f2u(dref.back()) == bl_f2u(kSentinel)));
  CAPTURE(first_diff(dsimd, dref));
  CHECK_MESSAGE(same_bits(dsimd, dref), "GELU backward kernel not bit-identical to its reference");
  std::vector<float> alias = dy;
  simd(n, x.data() + 1, alias.data() + 1, alias.data() + 1);
  CHECK_MESSAGE(same_bits(alias, dref), "GELU backward with dx == dy");
  alias = dy;
  ref(n, x.data() + 1, alias.data() + 1, alias.data() + 1);
  CHECK(same_bits(alias, dref));

  std::vector<float> d(n + 2, kSentinel);  // GELU' itself (dy = 1)
  ref(n, x.data() + 1, ones.data() + 1, d.data() + 1);
  double worst = 0.0;
  float at = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    const double xi = xs[i];
    const double h = kFdStep * std::fmax(1.0, std::fabs(xi));  // relative beyond 1 (x ± h ≠ x)
    if (!std::isfinite(xi) || (!tanh_form && std::fabs(std::fabs(xi) - 5.5) <= h)) continue;
    const double fd = tanh_form ? (gelu_tanh_formula_d(xi + h) - gelu_tanh_formula_d(xi - h)) / (2 * h)
                                : (gelu_erf_formula_d(xi + h) - gelu_erf_formula_d(xi - h)) / (2 * h);
    const double err = std::fabs(double(d[i + 1]) - fd) / std::fmax(1.0, std::fabs(fd));
    if (err > worst) worst = err, at = xs[i];
  }
  CAPTURE(at);
  CHECK(worst <= kGeluBwdTol);
}

// Softmax backward over rows with strides: SIMD bit-identical to the reference (also with dx aliasing dy),
// and the reference (p from f32_softmax_ref) within kSoftmaxBwdTol of central differences of
// L = Σ dy ⊙ softmax(x) in double.
void check_softmax_bwd(size_t rows, size_t n, size_t ld, uint64_t seed, float range) {
  CAPTURE(rows);
  CAPTURE(n);
  CAPTURE(ld);
  Rng rng(seed);
  Strided x(rows, n, ld), p(rows, n, ld + 1), dy(rows, n, ld + 2);
  x.fill(rng, -range, range);
  dy.fill(rng, -1.0f, 1.0f);
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) p.at(r, i) = x.at(r, i);
  f32_softmax_ref(rows, n, p.data(), p.ld);
  Strided dref(rows, n, ld + 3), dsimd(rows, n, ld + 3);
  f32_softmax_bwd_ref(rows, n, p.data(), p.ld, dy.data(), dy.ld, dref.data(), dref.ld);
  f32_softmax_bwd_wasmsimd(rows, n, p.data(), p.ld, dy.data(), dy.ld, dsimd.data(), dsimd.ld);
  CHECK(dref.padding_intact());
  CAPTURE(first_diff(dsimd.buf, dref.buf));
  CHECK_MESSAGE(same_bits(dsimd.buf, dref.buf), "softmax backward kernel not bit-identical to its reference");
  Strided alias = dy;
  f32_softmax_bwd_wasmsimd(rows, n, p.data(), p.ld, alias.data(), alias.ld, alias.data(), alias.ld);
  Strided alias_ref = dy;
  f32_softmax_bwd_ref(rows, n, p.data(), p.ld, alias_ref.data(), alias_ref.ld, alias_ref.data(), alias_ref.ld);
  CHECK(same_bits(alias.buf, alias_ref.buf));
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) CHECK(bl_f2u(alias.at(r, i)) == bl_f2u(dref.at(r, i)));

  auto loss = [&](size_t r, const std::vector<double>& xr) {
    double mx = -std::numeric_limits<double>::infinity(), s = 0.0, L = 0.0;
    for (double v : xr) mx = std::fmax(mx, v);
    for (double v : xr) s += std::exp(v - mx);
    for (size_t i = 0; i < n; ++i) L += double(dy.at(r, i)) * std::exp(xr[i] - mx) / s;
    return L;
  };
  const double h = kFdStep;
  double worst = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    std::vector<double> xd(n);
    for (size_t i = 0; i < n; ++i) xd[i] = x.at(r, i);
    for (size_t i = 0; i < n; ++i) {
      std::vector<double> xp = xd, xm = xd;
      xp[i] += h;
      xm[i] -= h;
      const double fd = (loss(r, xp) - loss(r, xm)) / (2 * h);
      worst = std::fmax(worst, std::fabs(double(dref.at(r, i)) - fd));
    }
  }
  CHECK(worst <= kSoftmaxBwdTol);
}

const size_t kBwdDims[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17};

}  // namespace

TEST_CASE("f32 GEMM nn/tn (backward): 4x8 wasmsimd bit-identical to the references for M, N, K in {1..9, 17}, strided sentinel-padded A/B/C, accumulate on/off; refs within 1e-5 of double") {
  uint64_t seed = 1000;
  for (bool tn : {false, true})
    for (size_t M : kBwdDims)
      for (size_t N : kBwdDims)
        for (size_t K : kBwdDims) {
          const size_t lda = (tn ? M : K) + 3;
          check_gemm_bw(tn, M, N, K, lda, N + 2, N + 5, seed & 1, seed);
          ++seed;
          check_gemm_bw(tn, M, N, K, tn ? M : K, N, N, !(seed & 1), seed);  // tight strides
          ++seed;
        }
}

TEST_CASE("f32 GEMM nn/tn (backward): cache blocks and K slices (M, N across 64, K across 128 and 256), ViT shapes, bit-identical with and without accumulate") {
  uint64_t seed = 5000;
  const size_t dims[][3] = {{63, 65, 127}, {64, 64, 128}, {65, 63, 129}, {67, 70, 257}, {129, 131, 300},
                            {5, 9, 1000},  {197, 64, 197}, {197, 192, 64}, {64, 192, 197}};
  for (bool tn : {false, true})
    for (const auto& d : dims)
      for (bool acc : {false, true}) {
        const size_t M = d[0], N = d[1], K = d[2];
        check_gemm_bw(tn, M, N, K, (tn ? M : K) + 1, N + 3, N + 1, acc, seed++);
      }
}

TEST_CASE("f32 GEMM nn/tn (backward): accumulation starts at +0 (all-(-0) products give +0); K = 0 gives +0 or C + 0") {
  const size_t M = 5, N = 9, K = 3;
  std::vector<float> A(M * K, -0.0f), B(K * N, 1.0f);
  for (bool tn : {false, true}) {
    const GemmNN ref = tn ? f32_gemm_tn_ref : f32_gemm_nn_ref;
    const GemmNN simd = tn ? f32_gemm_tn_4x8_wasmsimd : f32_gemm_nn_4x8_wasmsimd;
    const size_t lda = tn ? M : K;
    std::vector<float> Cref(M * N, kSentinel), C(M * N, kSentinel);
    ref(M, N, K, A.data(), lda, B.data(), N, Cref.data(), N, false);
    simd(M, N, K, A.data(), lda, B.data(), N, C.data(), N, false);
    for (float v : Cref) CHECK(bl_f2u(v) == 0u);
    CHECK(same_bits(C, Cref));
    for (bool acc : {false, true}) {
      std::vector<float> C0(M * N);
      for (size_t i = 0; i < C0.size(); ++i) C0[i] = i % 3 == 0 ? -0.0f : float(i);
      std::vector<float> r = C0, s = C0;
      ref(M, N, 0, A.data(), lda, B.data(), N, r.data(), N, acc);
      simd(M, N, 0, A.data(), lda, B.data(), N, s.data(), N, acc);
      CHECK(same_bits(s, r));
      for (size_t i = 0; i < C0.size(); ++i) CHECK(bl_f2u(r[i]) == bl_f2u(acc ? C0[i] + 0.0f : 0.0f));
    }
  }
}

TEST_CASE("layernorm fwd with saved mean/rstd: y bit-identical to f32_layernorm_ref, stats within 1e-6 of double, wasmsimd bit-identical, null stats allowed") {
  uint64_t seed = 41;
  for (size_t n : kRowSizes) {
    check_layernorm_fwd(4, n, n + 2, n + 5, seed++, 0.0f, 1.0f);
    check_layernorm_fwd(3, n, n, n, seed++, 3.0f, 2.0f);
  }
}

TEST_CASE("layernorm backward: wasmsimd bit-identical to ref (dx, dgamma, dbeta accumulate; strided rows) for n in {1..197}; ref within 2e-5 of central differences of the double forward") {
  uint64_t seed = 51;
  for (size_t n : kRowSizes) {
    check_layernorm_bwd(3, n, n + 1, seed++, 0.0f, 1.0f);
    check_layernorm_bwd(2, n, n, seed++, 2.0f, 0.5f);
  }
}

TEST_CASE("gelu backward (erf and tanh forms): wasmsimd bit-identical to ref (also dx == dy) for n in {1..197} and a dense grid; GELU' within 5e-6 of central differences of the double formula; special values") {
  uint64_t seed = 61;
  for (size_t n : kRowSizes) {
    Rng rng(seed++);
    std::vector<float> in(n);
    for (auto& v : in) v = rng.uniform(-8.0f, 8.0f);
    check_gelu_bwd(false, in, seed++);
    check_gelu_bwd(true, in, seed++);
  }
  std::vector<float> g = grid(-12.0, 12.0, 1.0 / 1024 + 1e-8);
  for (float v : {5.5f, -5.5f, std::nextafter(5.5f, 0.0f), std::nextafter(-5.5f, 0.0f), 99.0f, 100.0f, 101.0f, -100.0f,
                  1e20f, -1e20f, 0.0f, -0.0f})
    g.push_back(v);
  check_gelu_bwd(false, g, seed++);
  check_gelu_bwd(true, g, seed++);
  // Special values through the SIMD lanes and the scalar tail: GELU' is 1 at +inf and for large x, 0 at
  // −inf and for very negative x, 0.5 at 0; NaN stays NaN.
  using Bwd = void (*)(size_t, const float*, const float*, float*);
  for (Bwd fn : {f32_gelu_bwd_ref, f32_gelu_bwd_wasmsimd, f32_gelu_tanh_bwd_ref, f32_gelu_tanh_bwd_wasmsimd}) {
    const float x[9] = {kInf, -kInf, 1e30f, -1e30f, 0.0f, 30.0f, -30.0f, kNaN, kNaN};
    float dy[9], d[9];
    for (float& v : dy) v = 1.0f;
    fn(9, x, dy, d);
    CHECK(d[0] == 1.0f);
    CHECK(d[1] == 0.0f);
    CHECK(d[2] == 1.0f);
    CHECK(d[3] == 0.0f);
    CHECK(d[4] == 0.5f);
    CHECK(d[5] == 1.0f);
    CHECK(d[6] == 0.0f);
    CHECK(std::isnan(d[7]));
    CHECK(std::isnan(d[8]));
  }
}

TEST_CASE("softmax backward: wasmsimd bit-identical to ref (strided rows, dx == dy) for n in {1..197}; ref within 1e-6 of central differences of the double forward") {
  uint64_t seed = 71;
  for (size_t n : kRowSizes) {
    check_softmax_bwd(3, n, n + 1, seed++, 4.0f);
    check_softmax_bwd(2, n, n, seed++, 10.0f);
  }
}

// ---- the integer path's kernels ----------------------------------------------------------------

namespace {
// One integer GEMM shape: `ref` and `simd` (each C[M, N] with row stride ldc) must agree exactly, equal
// an int64 dot product of A (row stride lda) and W [N, K], and leave the padding columns untouched.
template <class Ref, class Simd>
void check_int_gemm(size_t M, size_t N, size_t K, const std::vector<int8_t>& A, size_t lda, const std::vector<int8_t>& W,
                    Ref&& ref_gemm, Simd&& simd_gemm) {
    const size_t ldc = N + 3;
    const int32_t sentinel = 0x5A5A5A5A;
    std::vector<int32_t> ref(M * ldc, sentinel), simd(M * ldc, sentinel);
    ref_gemm(ref.data(), ldc);
    simd_gemm(simd.data(), ldc);
    REQUIRE(simd == ref);
    for (size_t m = 0; m < M; ++m) {
        for (size_t n = 0; n < N; ++n) {
            int64_t s = 0;
            for (size_t k = 0; k < K; ++k) s += int64_t(A[m * lda + k]) * int64_t(W[n * K + k]);
            REQUIRE(int64_t(ref[m * ldc + n]) == s);
        }
        for (size_t n = N; n < ldc; ++n) REQUIRE(ref[m * ldc + n] == sentinel);
    }
}
}  // namespace

TEST_CASE("qs8 GEMM: qs8_gemm_2x4c8_wasmsimd equals qs8_gemm_ref exactly (and an int64 dot product) over edge shapes with -128 and 127") {
    std::mt19937 g(11);
    std::uniform_int_distribution<int> d(-128, 127);
    for (auto kernel : {qs8_gemm_2x4c8_wasmsimd})
        for (size_t M : {1, 2, 3, 5})
            for (size_t N : {1, 3, 4, 5, 8, 13})
                for (size_t K : {1, 7, 8, 9, 16, 33})
                    for (int fill = 0; fill < 3; ++fill) {  // random, all -128 (the largest products), random with extremes
                        CAPTURE(M);
                        CAPTURE(N);
                        CAPTURE(K);
                        CAPTURE(fill);
                        const size_t Kp = qs8_gemm_kp(K), lda = Kp + (M % 2 ? 8 : 0);
                        auto value = [&](size_t i) -> int8_t {
                            if (fill == 1) return -128;
                            if (fill == 2 && i % 5 == 0) return i % 10 == 0 ? -128 : 127;
                            return int8_t(d(g));
                        };
                        std::vector<int8_t> A(M * lda, 0), W(N * K);
                        for (size_t m = 0; m < M; ++m)
                            for (size_t k = 0; k < K; ++k) A[m * lda + k] = value(m * K + k);  // A[m][K..Kp) stays 0
                        for (size_t i = 0; i < W.size(); ++i) W[i] = value(i + 3);
                        std::vector<int16_t> packed(N * Kp);
                        qs8_gemm_pack(N, K, W.data(), packed.data());
                        check_int_gemm(M, N, K, A, lda, W,
                                       [&](int32_t* C, size_t ldc) { qs8_gemm_ref(M, N, K, A.data(), lda, packed.data(), C, ldc); },
                                       [&](int32_t* C, size_t ldc) { kernel(M, N, K, A.data(), lda, packed.data(), C, ldc); });
                    }
}

TEST_CASE("qs8×qc4w GEMM: int4 weights packed two per byte, unpacked in registers: 2x4c8 wasmsimd (panel unpacked once) equals the reference and an int64 dot product over edge shapes with -8, 7 and -128") {
    std::mt19937 g(12);
    std::uniform_int_distribution<int> da(-128, 127), dw(-8, 7);
    for (size_t M : {1, 2, 3, 5})
        for (size_t N : {1, 3, 4, 5, 8, 13})
            for (size_t K : {1, 7, 8, 15, 16, 17, 33, 64})
                for (int fill = 0; fill < 3; ++fill) {  // random, extremes (-128 × -8), random with extremes
                    CAPTURE(M);
                    CAPTURE(N);
                    CAPTURE(K);
                    CAPTURE(fill);
                    const size_t Kp = qs4_gemm_kp(K), lda = Kp + (M % 2 ? 16 : 0);
                    REQUIRE(Kp % 16 == 0);
                    std::vector<int8_t> A(M * lda, 0), W(N * K);
                    for (size_t m = 0; m < M; ++m)
                        for (size_t k = 0; k < K; ++k) A[m * lda + k] = int8_t(fill == 1 ? -128 : fill == 2 && k % 3 == 0 ? 127 : da(g));
                    for (size_t i = 0; i < W.size(); ++i) W[i] = int8_t(fill == 1 ? -8 : fill == 2 && i % 4 == 0 ? 7 : dw(g));
                    std::vector<uint8_t> packed(N * Kp / 2, 0xEE);
                    qs4_gemm_pack(N, K, W.data(), packed.data());
                    check_int_gemm(M, N, K, A, lda, W,
                                   [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_ref(M, N, K, A.data(), lda, packed.data(), C, ldc); },
                                   [&](int32_t* C, size_t ldc) { qs8_qc4w_gemm_2x4c8_wasmsimd(M, N, K, A.data(), lda, packed.data(), C, ldc); });
                }
}

TEST_CASE("uniform quantize kernels: f32_vfakequant and f32_qs8_vcvt (ref and wasmsimd) equal Quantizer::fake/code on ties, NaN, inf and every tail length; i32_dequant_f32 wasmsimd equals its ref") {
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.0f, 1.5f);
    std::vector<float> sample(4000);
    for (float& v : sample) v = nd(g);
    for (int bits : {8, 4, 3})
        for (bool symmetric : {true, false}) {
            CAPTURE(bits);
            CAPTURE(symmetric);
            const Quantizer q = fit_uniform(sample, bits, symmetric, RangeMethod::MinMax);
            const int32_t shift = q.qmin >= 0 ? 128 : 0;
            // Random values, exact ties between levels, and the awkward ones.
            std::vector<float> x;
            for (int i = 0; i < 300; ++i) x.push_back(nd(g) * 1.3f);
            for (int32_t c = q.qmin - 2; c <= q.qmax + 2; ++c) x.push_back((float(c - q.zero) + 0.5f) * q.scale);
            for (float v : {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), 1e30f, -1e30f, 4194304.5f * q.scale, -4194304.5f * q.scale})
                x.push_back(v);
            for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(4), size_t(7), size_t(8), size_t(9), size_t(17), x.size()}) {
                CAPTURE(n);
                std::vector<float> ref(x.begin(), x.begin() + std::ptrdiff_t(n)), simd = ref, expect = ref;
                for (float& v : expect) v = q.fake(v);
                f32_vfakequant_ref(n, ref.data(), q.scale, q.zero, q.qmin, q.qmax);
                f32_vfakequant_wasmsimd(n, simd.data(), q.scale, q.zero, q.qmin, q.qmax);
                REQUIRE(same_bits(ref, expect));
                REQUIRE(same_bits(simd, expect));
                if (bits == 8 || shift == 0) {
                    std::vector<int8_t> cr(n + 1, 99), cs(n + 1, 99), ce(n + 1, 99);
                    for (size_t i = 0; i < n; ++i) ce[i] = int8_t(q.code(x[i]) - shift);
                    f32_qs8_vcvt_ref(n, x.data(), q.scale, q.zero, q.qmin, q.qmax, shift, cr.data());
                    f32_qs8_vcvt_wasmsimd(n, x.data(), q.scale, q.zero, q.qmin, q.qmax, shift, cs.data());
                    REQUIRE(cr == ce);  // including the untouched byte after the row
                    REQUIRE(cs == ce);
                }
            }
        }
    std::uniform_int_distribution<int32_t> di(-100000, 100000);
    for (size_t N : {1, 3, 4, 5, 8, 13})
        for (bool with_bias : {true, false}) {
            const size_t rows = 3, ld = N + 2;
            std::vector<int32_t> acc(rows * ld), offset(N);
            std::vector<float> scale(N), bias(N), yr(rows * ld, -7.0f), ys(rows * ld, -7.0f);
            for (int32_t& v : acc) v = di(g);
            for (size_t n = 0; n < N; ++n) offset[n] = di(g), scale[n] = std::abs(nd(g)) * 1e-3f, bias[n] = nd(g);
            i32_dequant_f32_ref(rows, N, acc.data(), ld, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, yr.data(), ld);
            i32_dequant_f32_wasmsimd(rows, N, acc.data(), ld, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, ys.data(), ld);
            REQUIRE(std::memcmp(yr.data(), ys.data(), yr.size() * sizeof(float)) == 0);
            CHECK(yr[N] == -7.0f);  // the padding is untouched
            CHECK(yr[0] == scale[0] * float(acc[0] - offset[0]) + (with_bias ? bias[0] : 0.0f));
        }
}

TEST_CASE("threshold codes kernel: i32_dequant_tcodes_qs8 wasmsimd equals its ref, which is i32_dequant_f32's value counted against up and down thresholds (NaN and -inf: special; zones: computed), on every tail length and stride") {
    std::mt19937 g(11);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_int_distribution<int32_t> di(-3000, 3000);
    const std::vector<float> up{-0.5f, -0.1f, 0.0f, 0.2f, 0.45f, 0.9f, 1.5f, 2.5f}, down{-3.0f, -1.25f};
    const std::vector<float> zlo{0.2f, -1.3f}, zhi{0.45f, -1.25f};
    auto exact = [](float v, const void* ctx) { return int32_t(v < 0.0f ? 50 : 55) + *static_cast<const int32_t*>(ctx); };
    const int32_t ctx = 1;
    for (uint32_t nz : {0u, 2u})
    for (uint32_t nu : {0u, 3u, 8u})
        for (uint32_t ndn : {0u, 2u})
            for (size_t N : {size_t(1), size_t(5), size_t(15), size_t(16), size_t(17), size_t(33), size_t(64)})
                for (bool with_bias : {true, false}) {
                    CAPTURE(nu);
                    CAPTURE(ndn);
                    CAPTURE(N);
                    const size_t rows = 3, ldacc = N + 3, ldo = N + 5;
                    const ThresholdCodes tc{up.data(), nu, down.data(), ndn, -4, 77, zlo.data(), zhi.data(), nz, exact, &ctx};
                    std::vector<int32_t> acc(rows * ldacc), offset(N);
                    std::vector<float> scale(N), bias(N);
                    for (int32_t& v : acc) v = di(g);
                    for (size_t n = 0; n < N; ++n) offset[n] = di(g) / 10, scale[n] = std::abs(nd(g)) * 1e-3f, bias[n] = nd(g);
                    scale[0] = std::numeric_limits<float>::quiet_NaN();      // column 0: NaN
                    if (N > 1) scale[1] = std::numeric_limits<float>::infinity(), offset[1] = 0, acc[1] = -5;  // row 0, col 1: -inf
                    if (N > 2) scale[2] = 1.0f, bias[2] = 0.0f, offset[2] = 0, acc[2] = 0;  // value 0: on a threshold
                    if (N > 3) scale[3] = 0.1f, bias[3] = 0.0f, offset[3] = 0, acc[ldacc + 3] = 3;  // row 1: 0.3, in zone 0
                    std::vector<int8_t> cr(rows * ldo, 99), cs(rows * ldo, 99), ce(rows * ldo, 99);
                    std::vector<float> y(rows * N);
                    i32_dequant_f32_ref(rows, N, acc.data(), ldacc, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, y.data(), N);
                    for (size_t r = 0; r < rows; ++r)
                        for (size_t n = 0; n < N; ++n) {
                            const float v = y[r * N + n];
                            if ((nz && zlo[0] <= v && v <= zhi[0]) || (nz && zlo[1] <= v && v <= zhi[1])) {
                                ce[r * ldo + n] = int8_t(exact(v, &ctx));
                                continue;
                            }
                            int32_t c = tc.base;
                            for (uint32_t j = 0; j < nu; ++j) c += up[j] <= v;
                            for (uint32_t j = 0; j < ndn; ++j) c += v <= down[j];
                            ce[r * ldo + n] = int8_t(v > -std::numeric_limits<float>::infinity() ? c : tc.special);
                        }
                    i32_dequant_tcodes_qs8_ref(rows, N, acc.data(), ldacc, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, tc, cr.data(), ldo);
                    i32_dequant_tcodes_qs8_wasmsimd(rows, N, acc.data(), ldacc, offset.data(), scale.data(), with_bias ? bias.data() : nullptr, tc, cs.data(), ldo);
                    REQUIRE(cr == ce);  // the bytes between rows untouched too
                    REQUIRE(cs == ce);
                    CHECK(ce[0] == 77);
                    if (N > 1 && !with_bias) CHECK(ce[1] == 77);
                    if (nz && N > 3) CHECK(ce[ldo + 3] == 56);  // the value in a zone, computed
                }
}

TEST_CASE("sum threshold codes kernel: i32_tcodes_qs8 wasmsimd equals its ref, which counts the int16-clamped sum against each channel's up (>) and down (<) thresholds, sentinels never counted, on every row count, tail length and stride") {
    std::mt19937 g(12);
    std::uniform_int_distribution<int32_t> di(-40000, 40000), dt(-32768, 32767);
    for (uint32_t nu : {0u, 1u, 9u, 20u})
        for (uint32_t ndn : {0u, 2u})
            for (size_t N : {size_t(1), size_t(7), size_t(15), size_t(16), size_t(17), size_t(40), size_t(64)})
                for (size_t rows : {size_t(1), size_t(2), size_t(5)}) {
                    CAPTURE(nu);
                    CAPTURE(ndn);
                    CAPTURE(N);
                    CAPTURE(rows);
                    const size_t ldacc = N + 3, ldo = N + 5;
                    std::vector<int16_t> up(sum_threshold_size(N, nu)), down(sum_threshold_size(N, ndn));
                    for (int16_t& t : up) t = int16_t(dt(g) / 4);
                    for (int16_t& t : down) t = int16_t(dt(g) / 4);
                    if (nu) up[sum_threshold_index(0, 0, nu)] = 32767;        // channel 0: never above it
                    if (ndn) down[sum_threshold_index(0, 0, ndn)] = -32768;  // nor below this
                    if (nu && N > 1) up[sum_threshold_index(1, 0, nu)] = -32768;  // channel 1: above it unless clamped to −32768
                    std::vector<int32_t> acc(rows * ldacc);
                    for (int32_t& v : acc) v = di(g);  // some beyond int16: clamped
                    acc[0] = 32767;
                    if (rows > 1) acc[ldacc] = 1 << 20;  // channel 0 at and beyond the top: still never above 32767
                    if (N > 1) acc[1] = -(1 << 20);
                    if (N > 1 && rows > 1) acc[ldacc + 1] = -32767;
                    const SumThresholdCodes tc{up.data(), nu, down.data(), ndn, -3};
                    std::vector<int8_t> cr(rows * ldo, 99), cs(rows * ldo, 99), ce(rows * ldo, 99);
                    for (size_t r = 0; r < rows; ++r)
                        for (size_t n = 0; n < N; ++n) {
                            const int64_t a = std::clamp<int64_t>(acc[r * ldacc + n], -32768, 32767);
                            int32_t c = tc.base;
                            for (uint32_t j = 0; j < nu; ++j) c += a > up[sum_threshold_index(n, j, nu)];
                            for (uint32_t j = 0; j < ndn; ++j) c += a < down[sum_threshold_index(n, j, ndn)];
                            ce[r * ldo + n] = int8_t(c);
                        }
                    i32_tcodes_qs8_ref(rows, N, acc.data(), ldacc, tc, cr.data(), ldo);
                    i32_tcodes_qs8_wasmsimd(rows, N, acc.data(), ldacc, tc, cs.data(), ldo);
                    REQUIRE(cr == ce);  // the bytes between rows untouched too
                    REQUIRE(cs == ce);
                    // the clamp: channel 1's sum −2^20 is −32768, not above up = −32768; −32767 is
                    if (nu && N > 1 && rows > 1) CHECK(ce[ldo + 1] - ce[1] >= 1);
                }
}

TEST_CASE("table quantize kernel: f32_vtablequant ref and wasmsimd (bucketed, and counting ≤ 15 thresholds) equal Quantizer::fake for log2, SULQ and power-of-two grids (2-8 bits) on every tail length, and leave the value after the row alone") {
    std::mt19937 g(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> w(3000), p(3000);
    for (float& v : w) v = nd(g) * 0.05f;
    for (float& v : p) v = std::exp(nd(g) * 2.0f) / 200.0f;
    for (QType type : {QType::Log2, QType::Sulq, QType::Pow2})
        for (int bits = 2; bits <= 8; ++bits) {
            CAPTURE(qtype_name(type));
            CAPTURE(bits);
            const Quantizer q = fit(type, type == QType::Pow2 ? w : p, bits, false, RangeMethod::MinMax);
            const FastFake f(q);
            CHECK((f.index().thresholds != nullptr) == (q.thresholds.size() <= kSmallThresholds));  // both SIMD paths run
            // First, 16-value steps (the SIMD kernel's) whose largest value is just below or exactly at each threshold,
            // in a lane that moves; a NaN among small values too.
            std::vector<float> x;
            for (size_t k = 0; k < q.thresholds.size() && q.thresholds.size() <= kSmallThresholds; ++k) {
                const float th = q.thresholds[k], low = q.thresholds[0] > 0 ? q.thresholds[0] * 0.5f : q.thresholds[0] - 1.0f;
                for (int lane = 0; lane < 16; ++lane) x.push_back(lane == int(k) ? std::nextafter(th, -kInf) : low);
                for (int lane = 0; lane < 16; ++lane) x.push_back(lane == int(15 - k) ? th : lane == 3 && k == 2 ? kNaN : low);
            }
            x.insert(x.end(), type == QType::Pow2 ? w.begin() : p.begin(), (type == QType::Pow2 ? w.begin() : p.begin()) + 200);
            for (float th : q.thresholds) x.insert(x.end(), {th, std::nextafter(th, 0.0f), -th});
            x.insert(x.end(), {0.0f, -0.0f, kInf, -kInf, kNaN, 1e30f, -1e-40f});
            for (size_t n : {size_t(0), size_t(1), size_t(3), size_t(4), size_t(5), size_t(7), size_t(8), size_t(9), size_t(17), x.size()}) {
                CAPTURE(n);
                std::vector<float> ref(x.begin(), x.begin() + std::ptrdiff_t(n)), expect = ref;
                ref.push_back(kSentinel);
                std::vector<float> simd = ref;
                for (float& v : expect) v = q.fake(v);
                f32_vtablequant_ref(n, ref.data(), f.index());
                f32_vtablequant_wasmsimd(n, simd.data(), f.index());
                REQUIRE(same_bits(std::vector<float>(ref.begin(), ref.begin() + std::ptrdiff_t(n)), expect));
                REQUIRE(same_bits(std::vector<float>(simd.begin(), simd.begin() + std::ptrdiff_t(n)), expect));
                CHECK(bl_f2u(ref[n]) == bl_f2u(kSentinel));
                CHECK(bl_f2u(simd[n]) == bl_f2u(kSentinel));
            }
        }
}
