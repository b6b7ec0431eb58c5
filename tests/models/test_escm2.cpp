// ESCM²-IPS and ESCM²-DR (models/escm2_ips.cpp, models/escm2_dr.cpp): the counterfactual risks recomputed by hand
// from the model's own outputs, and which parameters each loss may train (no gradient through the propensity;
// DR's risk and imputation loss train disjoint towers).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/gradflow.hpp"
#include "core/error.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;
using Catch::Matchers::Contains;

TEST_CASE("ESCM²-IPS: ESMM's losses plus the inverse-propensity CVR risk, by hand", "[models][escm2]") {
  ForwardRun f("escm2-ips", {{"cvr_weight", 0.5}, {"propensity_clip", 0.3}}, 8, 7, 3);
  CHECK(f.h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_ips"});
  double risk = 0;
  for (std::size_t r = 0; r < 8; ++r)
    risk += f.click(r) * bce(f.col("pcvr", r), f.conv(r)) / std::max(0.3, f.col("pctr", r));
  CHECK(f.loss("cvr_ips") == Approx(0.5 * risk / 8).epsilon(1e-10));
  CHECK(f.col("pctcvr", 0) == f.col("pctr", 0) * f.col("pcvr", 0));
}

TEST_CASE("ESCM²-IPS: the risk trains the CVR tower and the embedding, never the CTR tower", "[models][escm2]") {
  Graph g;
  ModelHandle h = build_model(g, small("escm2-ips"));
  const GradFlow gf = structural_grad_flow(g);
  CHECK_FALSE(loss_reaches(g, gf, h.losses[2], "ctr_tower"));
  CHECK(loss_reaches(g, gf, h.losses[2], "cvr_tower"));
  CHECK(loss_reaches(g, gf, h.losses[2], "embedding"));
  CHECK(loss_reaches(g, gf, h.losses[0], "ctr_tower"));  // ESMM's CTR loss still does
}

TEST_CASE("ESCM²-DR: risk and imputation loss by hand, and the towers each trains", "[models][escm2]") {
  ForwardRun f("escm2-dr", {{"propensity_clip", 0.25}, {"imputation_weight", 2.0}}, 8, 9, 4);
  REQUIRE(f.h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_dr", "imputation"});
  double dr = 0, il = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    const double w = f.click(r) / std::max(0.25, f.col("pctr", r));
    const double e = bce(f.col("pcvr", r), f.conv(r)), eh = bce(f.col("pcvr", r), f.col("imputed_cvr", r));
    dr += eh + w * (e - eh);
    il += w * (e - eh) * (e - eh);
  }
  CHECK(f.loss("cvr_dr") == Approx(dr / 8).epsilon(1e-10));
  CHECK(f.loss("imputation") == Approx(2.0 * il / 8).epsilon(1e-10));

  const Graph& g = f.g;
  const ModelHandle& h = f.h;
  const GradFlow gf = structural_grad_flow(g);
  CHECK(loss_reaches(g, gf, h.losses[2], "cvr_tower"));
  CHECK_FALSE(loss_reaches(g, gf, h.losses[2], "imputation_tower"));
  CHECK_FALSE(loss_reaches(g, gf, h.losses[2], "ctr_tower"));
  CHECK(loss_reaches(g, gf, h.losses[3], "imputation_tower"));
  CHECK_FALSE(loss_reaches(g, gf, h.losses[3], "cvr_tower"));
  CHECK_FALSE(loss_reaches(g, gf, h.losses[3], "ctr_tower"));
}

TEST_CASE("ESCM² options are checked", "[models][escm2]") {
  for (const char* kind : {"escm2-ips", "escm2-dr"}) {
    ModelConfig c = small(kind);
    c.options = {{"propensity_clip", 0.0}};
    Graph g;
    CHECK_THROWS_WITH(build_model(g, c), Contains(kind) && Contains("propensity_clip"));
    c.options = {{"cvr_weight", -1.0}};
    Graph g2;
    CHECK_THROWS_WITH(build_model(g2, c), Contains("cvr_weight"));
  }
}
