// --precision bf16 on a whole model: one ESMM training step in bf16 stays close to the fp32 step (the bound
// below), and is not the fp32 step; the trained parameters differ only by what bf16 gemm inputs explain.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <vector>

#include "data/synthetic.hpp"
#include "support/alloc_counter.hpp"
#include "ops/gemm_backend.hpp"
#include "train/model.hpp"
#include "train/optimizer.hpp"

using namespace funnel;

namespace {

struct PrecisionGuard {
  GemmPrecision saved = gemm_precision();
  ~PrecisionGuard() { set_gemm_precision(saved); }
};

struct Run {
  std::vector<float> losses;
  std::vector<std::vector<float>> grads;   // dense gradients after the first step
  std::vector<std::vector<float>> params;  // after all steps
};

Run train(const Dataset& d, GemmPrecision p, int steps) {
  set_gemm_precision(p);
  ModelConfig c;
  c.kind = "esmm";
  c.num_fields = d.num_fields;
  c.vocab = d.vocab;
  c.dim = 8;
  c.hidden = {64, 32};
  Model m(c);
  m.params().init(4);
  auto opt = make_optimizer<float>("adam", OptimizerConfig{.lr = 0.002});
  Run r;
  const std::int64_t B = 256;
  std::vector<std::int64_t> rows(static_cast<std::size_t>(B));
  for (int s = 0; s < steps; ++s) {
    std::iota(rows.begin(), rows.end(), static_cast<std::int64_t>(s) * B);
    m.bind(d, rows);
    m.compute_gradients();
    r.losses.push_back(m.last_losses()[0] + m.last_losses()[1]);
    if (s == 0)
      for (NodeId id : m.params().ids())
        if (!m.params().is_sparse(id)) {
          const auto& g = m.params().grad(id);
          r.grads.emplace_back(g.begin(), g.end());
        }
    opt->step(m.params());
  }
  for (NodeId id : m.params().ids()) {
    const auto& v = m.params().value(id);
    r.params.emplace_back(v.begin(), v.end());
  }
  return r;
}

double rel_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      num += std::pow(static_cast<double>(a[i][j]) - b[i][j], 2);
      den += std::pow(static_cast<double>(a[i][j]), 2);
    }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("a bf16 training step stays within bf16's precision of the fp32 step", "[train][bf16]") {
  PrecisionGuard guard;
  SyntheticConfig sc;
  sc.rows = 256 * 10;
  sc.fields = 6;
  sc.vocab_per_field = 50;
  sc.ctr = 0.2;
  sc.ctcvr = 0.05;
  const Dataset d = make_synthetic(sc);
  const Run f32 = train(d, GemmPrecision::fp32, 10);
  const Run b16 = train(d, GemmPrecision::bf16, 10);
  // One step's dense gradients: bf16 inputs carry a relative error of at most 2^-9 each, so the gradients move by
  // about that much (measured ~3e-3); 2e-2 leaves room and still catches a wrong operand or a missed transpose.
  const double g = rel_diff(f32.grads, b16.grads);
  CHECK(g > 1e-5);  // bf16 was in effect
  CHECK(g < 2e-2);
  // Ten Adam steps: the losses agree to a few parts in a thousand, the parameters to ~1%.
  for (std::size_t s = 0; s < f32.losses.size(); ++s) {
    INFO("step " << s);
    CHECK(std::fabs(f32.losses[s] - b16.losses[s]) < 1e-2 * f32.losses[s]);
  }
  CHECK(rel_diff(f32.params, b16.params) < 2e-2);
}

TEST_CASE("a steady bf16 step does not allocate", "[train][bf16][alloc]") {
  PrecisionGuard guard;
  set_gemm_precision(GemmPrecision::bf16);
  SyntheticConfig sc;
  sc.rows = 64 * 6;
  sc.fields = 4;
  sc.vocab_per_field = 30;
  const Dataset d = make_synthetic(sc);
  ModelConfig c;
  c.kind = "esmm";
  c.num_fields = d.num_fields;
  c.vocab = d.vocab;
  c.dim = 4;
  c.hidden = {16, 8};
  Model m(c);
  m.params().init(1);
  auto opt = make_optimizer<float>("adam", {});
  std::vector<std::int64_t> rows(64);
  auto step = [&](int s) {
    std::iota(rows.begin(), rows.end(), static_cast<std::int64_t>(s) * 64);
    m.bind(d, rows);
    m.compute_gradients();
    opt->step(m.params());
  };
  for (int s = 0; s < 3; ++s) step(s);  // warm-up: buffers, plans, the bf16 scratch and optimizer slots
  test::prime_backtrace();
  test::CountAllocs count;
  for (int s = 3; s < 6; ++s) step(s);
  const long n = count.stop();
  if (n != 0) test::print_traces(n);
  CHECK(n == 0);
}
