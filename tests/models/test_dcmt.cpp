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
  ForwardRun f("dcmt", {{"propensity_clip", 0.2}, {"constraint_weight", 0.5}}, 8, 11, 6);
  REQUIRE(f.h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_causal", "constraint"});
  double risk = 0, con = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    const double o = f.click(r), y = f.conv(r), ctr = f.col("pctr", r), cvr = f.col("pcvr", r);
    const double cf = f.col("counterfactual_cvr", r);
    risk += o * bce(cvr, y) / std::max(0.2, ctr) + (1 - o) * bce(cf, 1 - y) / std::max(0.2, 1 - ctr);
    con += std::abs(1 - cvr - cf);
  }
  CHECK(f.loss("cvr_causal") == Approx(risk / 8).epsilon(1e-10));
  CHECK(f.loss("constraint") == Approx(0.5 * con / 8).epsilon(1e-10));
}

TEST_CASE("DCMT gradient flow", "[models][dcmt]") {
  Graph g;
  ModelHandle h = build_model(g, small("dcmt"));
  const GradFlow gf = structural_grad_flow(g);
  auto reaches = [&](NodeId l, const std::string& scope) { return loss_reaches(g, gf, l, scope); };
  for (std::size_t k : {2u, 3u}) {
    INFO(h.loss_names[k]);
    CHECK_FALSE(reaches(h.losses[k], "ctr_tower"));
    CHECK(reaches(h.losses[k], "cvr_tower"));
    CHECK(reaches(h.losses[k], "counterfactual_cvr_tower"));
  }
  CHECK_FALSE(reaches(h.losses[0], "counterfactual_cvr_tower"));
}
