// The float64 checking path's gemm (ops/gemm_f64.hpp, through xtensor-blas): blas::gemm<double> against a naive
// triple loop for every transpose pair, with alpha and beta, odd sizes, beta 0 over garbage, k = 0, and a refused
// padded leading dimension. The float path is tested in test_gemm_backend.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/gemm_f64.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using funnel::testing::random_vec;

namespace {

// C = alpha · op(A) · op(B) + beta · C, element by element from the definitions of the row-major layouts.
void naive(bool ta, bool tb, int m, int n, int k, double alpha, const std::vector<double>& a,
           const std::vector<double>& b, double beta, std::vector<double>& c) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        const double av = ta ? a[static_cast<std::size_t>(p * m + i)] : a[static_cast<std::size_t>(i * k + p)];
        const double bv = tb ? b[static_cast<std::size_t>(j * k + p)] : b[static_cast<std::size_t>(p * n + j)];
        s += av * bv;
      }
      double& cv = c[static_cast<std::size_t>(i * n + j)];
      cv = alpha * s + (beta == 0.0 ? 0.0 : beta * cv);
    }
}

}  // namespace

TEST_CASE("gemm_f64: double gemm matches a naive product for every transpose pair", "[gemm_f64]") {
  struct Size {
    int m, n, k;
  };
  const Size sizes[] = {{1, 1, 1}, {3, 5, 7}, {17, 4, 9}, {64, 33, 20}, {130, 80, 200}};
  set_num_threads(2);  // the double path does not split, whatever the thread count
  std::uint64_t seed = 1;
  for (const Size& sz : sizes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      for (double alpha : {1.0, -0.5})
        for (double beta : {0.0, 1.0, 0.25}) {
          const auto a = random_vec<double>(static_cast<std::size_t>(sz.m * sz.k), seed++);
          const auto b = random_vec<double>(static_cast<std::size_t>(sz.k * sz.n), seed++);
          auto c0 = random_vec<double>(static_cast<std::size_t>(sz.m * sz.n), seed++);
          auto want = c0;
          naive(ta, tb, sz.m, sz.n, sz.k, alpha, a, b, beta, want);
          auto got = c0;
          blas::gemm(ta, tb, sz.m, sz.n, sz.k, alpha, a.data(), ta ? sz.m : sz.k, b.data(), tb ? sz.k : sz.n, beta,
                     got.data(), sz.n);
          double worst = 0;
          for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
          INFO("m=" << sz.m << " n=" << sz.n << " k=" << sz.k << " ta=" << ta << " tb=" << tb << " alpha=" << alpha
                    << " beta=" << beta);
          CHECK(worst < 1e-12 * sz.k);
        }
    }
  set_num_threads(1);
}

TEST_CASE("gemm_f64: beta 0 overwrites garbage, k = 0 scales C, padded rows are refused", "[gemm_f64]") {
  const auto a = random_vec<double>(6, 11), b = random_vec<double>(6, 12);
  std::vector<double> c(4, std::numeric_limits<double>::quiet_NaN());
  blas::gemm_f64(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2);
  std::vector<double> want(4, 0.0);
  naive(false, false, 2, 2, 3, 1.0, a, b, 0.0, want);
  for (std::size_t i = 0; i < 4; ++i) CHECK(c[i] == Approx(want[i]).epsilon(1e-14));

  std::vector<double> d{1.0, 2.0, 3.0, 4.0};
  blas::gemm_f64(false, false, 2, 2, 0, 1.0, a.data(), 1, b.data(), 2, 0.5, d.data(), 2);
  CHECK(d == std::vector<double>{0.5, 1.0, 1.5, 2.0});
  blas::gemm_f64(false, false, 2, 2, 0, 1.0, a.data(), 1, b.data(), 2, 0.0, d.data(), 2);
  CHECK(d == std::vector<double>{0.0, 0.0, 0.0, 0.0});

  std::vector<double> e(4, 0.0);
  CHECK_THROWS_AS(blas::gemm_f64(false, false, 2, 2, 2, 1.0, a.data(), 3, b.data(), 2, 0.0, e.data(), 2), Error);
}
