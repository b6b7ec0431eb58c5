// Adam's and Adagrad's SIMD kernels (train/optimizer_kernels.hpp): every ISA's dense and row updates give exactly the
// bits of a scalar reference written here (the same float operations in the same order), for lengths that cover
// full registers and masked tails; rows not listed stay untouched. An ISA this CPU lacks is skipped with the reason.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/parallel.hpp"
#include "core/simd.hpp"
#include "support/isa_cases.hpp"
#include "train/optimizer.hpp"
#include "train/optimizer_kernels.hpp"

using namespace funnel;

namespace {

void ref_adam(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStepF& k) {
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = std::fma(k.wd, p[i], g[i]);
    m[i] = std::fma(k.b1, m[i], k.a1 * gi);
    v[i] = std::fma(k.b2, v[i], (k.a2 * gi) * gi);
    p[i] = p[i] - (k.step_size * m[i]) / std::fma(std::sqrt(v[i]), k.inv_sqrt_bc2, k.eps);
  }
}

void ref_adagrad(float* p, const float* g, float* acc, std::size_t n, const AdagradStepF& k) {
  for (std::size_t i = 0; i < n; ++i) {
    const float gi = std::fma(k.wd, p[i], g[i]);
    acc[i] = std::fma(gi, gi, acc[i]);
    p[i] = p[i] - (k.lr * gi) / (std::sqrt(acc[i]) + k.eps);
  }
}

std::vector<float> randn(std::size_t n, std::mt19937& rng, float scale = 1.0f, bool positive = false) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(n);
  for (float& e : x) e = positive ? std::abs(nd(rng)) : nd(rng);
  return x;
}

void check_isa(SimdIsa isa) {
  const OptimizerKernels& kern = optimizer_kernels(isa);
  std::mt19937 rng(5);
  for (float wd : {0.0f, 0.01f}) {
    // Step 3 of Adam with lr 0.01 (constants as train/optimizer.cpp makes them).
    const double bc1 = 1.0 - std::pow(0.9, 3.0), bc2 = 1.0 - std::pow(0.999, 3.0);
    const AdamStepF ak{0.9f, 0.999f, 0.1f, 0.001f, static_cast<float>(0.01 / bc1),
                       static_cast<float>(1.0 / std::sqrt(bc2)), 1e-8f, wd};
    const AdagradStepF gk{0.05f, 1e-10f, wd};
    for (std::size_t n : {1u, 5u, 8u, 16u, 18u, 37u, 100u}) {
      INFO("n=" << n << " wd=" << wd);
      auto p = randn(n, rng), g = randn(n, rng, 0.1f), m = randn(n, rng, 0.01f), v = randn(n, rng, 0.001f, true);
      auto p2 = p, m2 = m, v2 = v;
      kern.adam(p.data(), g.data(), m.data(), v.data(), n, ak);
      ref_adam(p2.data(), g.data(), m2.data(), v2.data(), n, ak);
      CHECK(p == p2);
      CHECK(m == m2);
      CHECK(v == v2);
      auto q = randn(n, rng), acc = randn(n, rng, 0.1f, true);
      auto q2 = q, acc2 = acc;
      kern.adagrad(q.data(), g.data(), acc.data(), n, gk);
      ref_adagrad(q2.data(), g.data(), acc2.data(), n, gk);
      CHECK(q == q2);
      CHECK(acc == acc2);
    }
    // Rows: 25 of a 60-row table, in a shuffled order; the other rows keep their bits.
    for (std::size_t dim : {1u, 7u, 16u, 18u, 40u}) {
      INFO("dim=" << dim << " wd=" << wd);
      const std::size_t V = 60, rows = 25;
      std::vector<std::int64_t> idx(V);
      std::iota(idx.begin(), idx.end(), 0);
      std::shuffle(idx.begin(), idx.end(), rng);
      idx.resize(rows);
      auto p = randn(V * dim, rng), g = randn(rows * dim, rng, 0.1f), m = randn(V * dim, rng, 0.01f),
           v = randn(V * dim, rng, 0.001f, true);
      auto p2 = p, m2 = m, v2 = v;
      kern.adam_rows(p.data(), g.data(), idx.data(), rows, dim, m.data(), v.data(), ak);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t o = static_cast<std::size_t>(idx[r]) * dim;
        ref_adam(p2.data() + o, g.data() + r * dim, m2.data() + o, v2.data() + o, dim, ak);
      }
      CHECK(p == p2);
      CHECK(m == m2);
      CHECK(v == v2);
      auto acc = randn(V * dim, rng, 0.1f, true);
      auto q2 = p, acc2 = acc;
      kern.adagrad_rows(p.data(), g.data(), idx.data(), rows, dim, acc.data(), gk);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t o = static_cast<std::size_t>(idx[r]) * dim;
        ref_adagrad(q2.data() + o, g.data() + r * dim, acc2.data() + o, dim, gk);
      }
      CHECK(p == q2);
      CHECK(acc == acc2);
    }
  }
}

}  // namespace

FUNNEL_ISA_TEST_CASES("optimizer kernels", "Adam and Adagrad equal the scalar reference exactly", "[train][simd]",
                      check_isa)

TEST_CASE("sparse Adam over two threads (row ranges) equals one thread bit for bit", "[train][simd]") {
  // 3000 touched rows of a 5000 × 18 table: above the grain, so two threads each take a range of rows.
  const std::size_t V = 5000, dim = 18, rows = 3000;
  std::mt19937 rng(9);
  std::vector<std::int64_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), rng);
  idx.resize(rows);
  const auto g = randn(rows * dim, rng, 0.1f);
  const auto p0 = randn(V * dim, rng);
  OptimizerConfig oc;
  oc.lr = 0.01;
  auto opt = make_optimizer<float>("adam", oc);
  std::vector<std::vector<float>> result;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    auto p = p0;
    std::vector<float> m(V * dim, 0.0f), v(V * dim, 0.0f);
    float* slots[2] = {m.data(), v.data()};
    for (std::int64_t t = 1; t <= 3; ++t) opt->update_rows(p.data(), g.data(), idx.data(), rows, dim, slots, t);
    result.push_back(p);
  }
  set_num_threads(1);
  CHECK(result[0] == result[1]);
  CHECK(result[0] != p0);
}
