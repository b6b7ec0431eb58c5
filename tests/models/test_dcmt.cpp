// DCMT (models/dcmt.cpp): the factual + counterfactual risk and the soft constraint by hand, and what each loss
// may train (never the CTR tower through the propensities).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/gradflow.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;

TEST_CASE("DCMT risk and constraint by hand", "[models][dcmt]") {
  ModelConfig c = small("dcmt");
  c.options = {{"propensity_clip", 0.2}, {"constraint_weight", 0.5}};
  Graph g;
  ModelHandle h = build_model(g, c);
  REQUIRE(h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_causal", "constraint"});
  Executor<double> ex(g);
  ex.init_params(11);
  feed(ex, h, c, 8, 6);
  ex.forward();
  const auto& ctr = ex.value(h.column("pctr"));
  const auto& cvr = ex.value(h.column("pcvr"));
  const auto& cf = ex.value(h.column("counterfactual_cvr"));
  const auto& click = ex.input(h.labels[0]);
  const auto& conv = ex.input(h.labels[1]);
  double risk = 0, con = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    const double o = click(r, 0), y = conv(r, 0);
    risk += o * bce(cvr(r, 0), y) / std::max(0.2, ctr(r, 0)) +
            (1 - o) * bce(cf(r, 0), 1 - y) / std::max(0.2, 1 - ctr(r, 0));
    con += std::abs(1 - cvr(r, 0) - cf(r, 0));
  }
  CHECK(ex.scalar(h.losses[2]) == Approx(risk / 8).epsilon(1e-10));
  CHECK(ex.scalar(h.losses[3]) == Approx(0.5 * con / 8).epsilon(1e-10));
}

TEST_CASE("DCMT gradient flow", "[models][dcmt]") {
  Graph g;
  ModelHandle h = build_model(g, small("dcmt"));
  const GradFlow gf = structural_grad_flow(g);
  auto reaches = [&](NodeId l, const std::string& scope) {
    for (NodeId p : g.params())
      if (in_scope(g, p, scope) && gf.at(p, l).structural) return true;
    return false;
  };
  for (std::size_t k : {2u, 3u}) {
    INFO(h.loss_names[k]);
    CHECK_FALSE(reaches(h.losses[k], "ctr_tower"));
    CHECK(reaches(h.losses[k], "cvr_tower"));
    CHECK(reaches(h.losses[k], "counterfactual_cvr_tower"));
  }
  CHECK_FALSE(reaches(h.losses[0], "counterfactual_cvr_tower"));
}
