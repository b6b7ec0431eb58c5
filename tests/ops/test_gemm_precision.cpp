// The bf16 gemm-input precision: rounding to bfloat16 (nearest, ties to even; Inf and NaN kept) and gemms whose
// results are those of bf16 inputs with fp32 sums, for every transpose; fp32 is untouched by having been in bf16.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ops/gemm_backend.hpp"

using namespace funnel;

namespace {

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

// Restores the precision a test changed, also when it fails.
struct PrecisionGuard {
  GemmPrecision saved = gemm_precision();
  ~PrecisionGuard() { set_gemm_precision(saved); }
};

// op(A)·op(B) in double from the stored operands, each element mapped through `f` first.
template <class F>
std::vector<double> reference(bool ta, bool tb, int m, int n, int k, const std::vector<float>& a,
                              const std::vector<float>& b, F f) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        const float x = ta ? a[static_cast<std::size_t>(p * m + i)] : a[static_cast<std::size_t>(i * k + p)];
        const float y = tb ? b[static_cast<std::size_t>(j * k + p)] : b[static_cast<std::size_t>(p * n + j)];
        s += static_cast<double>(f(x)) * static_cast<double>(f(y));
      }
      c[static_cast<std::size_t>(i * n + j)] = s;
    }
  return c;
}

}  // namespace

TEST_CASE("round_to_bf16 rounds to the nearest bfloat16, ties to even, and keeps Inf and NaN", "[ops][bf16]") {
  CHECK(round_to_bf16(1.0f) == 1.0f);
  CHECK(round_to_bf16(-2.5f) == -2.5f);
  const float ulp = std::ldexp(1.0f, -7);  // bf16 spacing at 1 (8 significant bits)
  CHECK(round_to_bf16(1.0f + ulp / 2) == 1.0f);                    // tie: to even (1.0)
  CHECK(round_to_bf16(1.0f + 3 * ulp / 2) == 1.0f + 2 * ulp);      // tie: to even (1 + 2 ulp)
  CHECK(round_to_bf16(1.0f + ulp / 2 + std::ldexp(1.0f, -20)) == 1.0f + ulp);  // above the tie: up
  CHECK(round_to_bf16(1.0f + ulp / 2 - std::ldexp(1.0f, -20)) == 1.0f);        // below: down
  CHECK((bits(round_to_bf16(0.1f)) & 0xffffu) == 0u);
  CHECK(std::fabs(round_to_bf16(0.1f) - 0.1f) <= 0.1f * std::ldexp(1.0f, -9));
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(round_to_bf16(inf) == inf);
  CHECK(round_to_bf16(-inf) == -inf);
  CHECK(round_to_bf16(std::numeric_limits<float>::max()) == inf);  // beyond bf16's largest finite number
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  float snan_low;  // a NaN whose payload is only in the low 16 bits must not become Inf
  const std::uint32_t u = 0x7f800001u;
  std::memcpy(&snan_low, &u, sizeof u);
  CHECK(std::isnan(round_to_bf16(snan_low)));
  CHECK(parse_gemm_precision("bf16") == GemmPrecision::bf16);
  CHECK(parse_gemm_precision("fp32") == GemmPrecision::fp32);
  CHECK_FALSE(parse_gemm_precision("fp16"));
}

TEST_CASE("bf16 gemms compute bf16 inputs with fp32 sums, for every transpose and leading dimension",
          "[ops][bf16]") {
  PrecisionGuard guard;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 1.0f);
  const int m = 37, n = 29, k = 64;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      INFO("ta=" << ta << " tb=" << tb);
      std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
      for (auto& x : a) x = d(rng);
      for (auto& x : b) x = d(rng);
      const int lda = ta ? m : k, ldb = tb ? k : n;
      std::vector<float> c32(static_cast<std::size_t>(m * n)), c16(c32.size()), again(c32.size());
      set_gemm_precision(GemmPrecision::fp32);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c32.data(), n);
      set_gemm_precision(GemmPrecision::bf16);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c16.data(), n);
      set_gemm_precision(GemmPrecision::fp32);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, again.data(), n);
      const auto r16 = reference(ta, tb, m, n, k, a, b, [](float x) { return round_to_bf16(x); });
      const auto r32 = reference(ta, tb, m, n, k, a, b, [](float x) { return x; });
      double worst16 = 0, worst32 = 0, moved = 0;
      for (std::size_t i = 0; i < c16.size(); ++i) {
        worst16 = std::max(worst16, std::fabs(c16[i] - r16[i]));   // fp32 summation error only
        worst32 = std::max(worst32, std::fabs(c32[i] - r32[i]));
        moved = std::max(moved, std::fabs(static_cast<double>(c16[i]) - c32[i]));
        CHECK(bits(again[i]) == bits(c32[i]));  // fp32 afterwards is the same as before
      }
      CHECK(worst16 < 1e-4);
      CHECK(worst32 < 1e-4);
      CHECK(moved > 1e-3);   // the rounding happened: bf16 inputs move results by ~2^-9 relative
      CHECK(moved < 0.25);   // and no more than bf16's precision allows at these sizes
    }
  // beta accumulates into C in fp32 also under bf16, and C itself is never rounded.
  set_gemm_precision(GemmPrecision::bf16);
  const float one = 1.0f;
  float c = 1.0f + std::ldexp(1.0f, -20);  // not a bf16 number
  sgemm_one_thread(false, false, 1, 1, 1, 1.0f, &one, 1, &one, 1, 1.0f, &c, 1);
  CHECK(c == 2.0f + std::ldexp(1.0f, -20));
}
