// The float gemm backends (ops/gemm_backend.hpp): each one against a double reference for every transpose pair,
// with alpha, beta and padded leading dimensions; the row cuts of ops/blas.hpp give the same bits as one call for
// each backend; names parse and unknown ones are refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "core/parallel.hpp"
#include "ops/blas.hpp"
#include "ops/gemm_backend.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using funnel::testing::random_vec;

namespace {

std::vector<GemmBackend> backends() {
  std::vector<GemmBackend> v{GemmBackend::openblas};
  if (onednn_available()) v.push_back(GemmBackend::onednn);
  return v;
}

// Restores the backend and one thread after a test.
struct Restore {
  GemmBackend b = gemm_backend();
  ~Restore() {
    set_gemm_backend(b);
    set_num_threads(1);
  }
};

}  // namespace

TEST_CASE("float gemm backends match a double reference for every transpose pair", "[ops][gemm]") {
  Restore restore;
  const int m = 37, n = 29, k = 53, pad = 3;
  for (GemmBackend be : backends()) {
    set_gemm_backend(be);
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO(gemm_backend_name(be) << " ta=" << ta << " tb=" << tb);
        // op(A) is m×k, op(B) is k×n; stored row-major with padded leading dimensions.
        const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        const auto a = random_vec<float>(static_cast<std::size_t>((ta ? k : m) * lda), 1);
        const auto b = random_vec<float>(static_cast<std::size_t>((tb ? n : k) * ldb), 2);
        auto c = random_vec<float>(static_cast<std::size_t>(m * ldc), 3);
        const auto c0 = c;
        const float alpha = 0.75f, beta = -0.5f;
        sgemm_one_thread(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        double worst = 0;
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < ldc; ++j) {
            const std::size_t at = static_cast<std::size_t>(i * ldc + j);
            if (j >= n) {  // padding untouched
              CHECK(c[at] == c0[at]);
              continue;
            }
            double s = 0;
            for (int p = 0; p < k; ++p) {
              const double av = ta ? a[static_cast<std::size_t>(p * lda + i)] : a[static_cast<std::size_t>(i * lda + p)];
              const double bv = tb ? b[static_cast<std::size_t>(j * ldb + p)] : b[static_cast<std::size_t>(p * ldb + j)];
              s += av * bv;
            }
            const double want = alpha * s + beta * static_cast<double>(c0[at]);
            worst = std::max(worst, std::abs(want - static_cast<double>(c[at])));
          }
        CHECK(worst < 1e-4);
      }
  }
}

TEST_CASE("gemm row cuts over threads give the same bits as one call, for each backend", "[ops][gemm][parallel]") {
  Restore restore;
  // ESMM-like shapes, big enough to be cut (≥ 2^18 multiply-adds, ≥ 2·kGemmRowBlock rows): forward, dX and dW.
  struct Case { bool ta, tb; int m, n, k; };
  const Case cases[] = {{false, false, 1000, 200, 360}, {false, true, 1000, 360, 200}, {true, false, 360, 200, 1000},
                        {false, false, 1000, 80, 200}, {true, false, 200, 80, 1000}};
  for (GemmBackend be : backends()) {
    set_gemm_backend(be);
    for (const Case& cs : cases) {
      INFO(gemm_backend_name(be) << " ta=" << cs.ta << " tb=" << cs.tb << " " << cs.m << "x" << cs.n << "x" << cs.k);
      const int lda = cs.ta ? cs.m : cs.k, ldb = cs.tb ? cs.k : cs.n;
      const auto a = random_vec<float>(static_cast<std::size_t>(cs.m * cs.k), 4);
      const auto b = random_vec<float>(static_cast<std::size_t>(cs.k * cs.n), 5);
      std::vector<float> one(static_cast<std::size_t>(cs.m * cs.n)), many(one.size());
      set_num_threads(1);
      blas::gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, one.data(), cs.n);
      for (int t : {2, 3}) {
        set_num_threads(t);
        blas::gemm(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, many.data(), cs.n);
        std::size_t diff = 0;
        for (std::size_t i = 0; i < one.size(); ++i) diff += one[i] != many[i];
        CHECK(diff == 0);
      }
    }
  }
}

TEST_CASE("gemm row cuts keep the bits at batch sizes whose rows are not whole blocks, on 2-4 threads",
          "[ops][gemm][parallel]") {
  Restore restore;
  // Batch sizes where a short tail block (or oneDNN's size-dependent A·Bᵀ order) changed the bits before: 128 rows
  // on 3 threads (a 32-row call), 136-184 and 256 rows on 2 threads, 1000 rows (a 40-row tail).
  struct Layer { int k, n; };
  const Layer layers[] = {{360, 200}, {200, 80}};
  for (GemmBackend be : backends()) {
    set_gemm_backend(be);
    for (int rows : {96, 128, 136, 152, 176, 184, 256, 512, 1000, 1024})
      for (const Layer& l : layers)
        for (int which = 0; which < 3; ++which) {
          // 0: forward Y = X·W (rows×n), 1: dX = dY·Wᵀ (rows×k), 2: dW = Xᵀ·dY (k×n, inner dimension rows)
          const bool ta = which == 2, tb = which == 1;
          const int m = which == 2 ? l.k : rows, n = which == 1 ? l.k : l.n;
          const int k = which == 0 ? l.k : which == 1 ? l.n : rows;
          INFO(gemm_backend_name(be) << " ta=" << ta << " tb=" << tb << " " << m << "x" << n << "x" << k);
          const int lda = ta ? m : k, ldb = tb ? k : n;
          const auto a = random_vec<float>(static_cast<std::size_t>(m * k), 6);
          const auto b = random_vec<float>(static_cast<std::size_t>(k * n), 7);
          std::vector<float> one(static_cast<std::size_t>(m * n)), many(one.size());
          set_num_threads(1);
          blas::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, one.data(), n);
          for (int t : {2, 3, 4}) {
            INFO("threads " << t);
            set_num_threads(t);
            blas::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, many.data(), n);
            std::size_t diff = 0;
            for (std::size_t i = 0; i < one.size(); ++i) diff += one[i] != many[i];
            CHECK(diff == 0);
          }
        }
  }
  set_num_threads(1);
}

TEST_CASE("gemm backend names", "[ops][gemm]") {
  Restore restore;
  CHECK(parse_gemm_backend("openblas") == GemmBackend::openblas);
  CHECK(parse_gemm_backend("onednn") == GemmBackend::onednn);
  CHECK_FALSE(parse_gemm_backend("mkl").has_value());
  CHECK_FALSE(parse_gemm_backend("").has_value());
  CHECK(std::string(gemm_backend_name(GemmBackend::onednn)) == "onednn");
  if (onednn_available()) {
    set_gemm_backend(GemmBackend::onednn);
    CHECK(gemm_backend() == GemmBackend::onednn);
  } else {
    CHECK_THROWS_AS(set_gemm_backend(GemmBackend::onednn), std::invalid_argument);
  }
  set_gemm_backend(GemmBackend::openblas);
  CHECK(gemm_backend() == GemmBackend::openblas);
}
