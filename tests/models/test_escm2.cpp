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

namespace {

// Whether loss `l` reaches (structurally, through differentiable slots) any parameter under `scope`.
bool reaches(const Graph& g, const GradFlow& gf, NodeId l, const std::string& scope) {
  for (NodeId p : g.params())
    if (in_scope(g, p, scope) && gf.at(p, l).structural) return true;
  return false;
}

}  // namespace

TEST_CASE("ESCM²-IPS: ESMM's losses plus the inverse-propensity CVR risk, by hand", "[models][escm2]") {
  ModelConfig c = small("escm2-ips");
  c.options = {{"cvr_weight", 0.5}, {"propensity_clip", 0.3}};
  Graph g;
  ModelHandle h = build_model(g, c);
  CHECK(h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_ips"});
  Executor<double> ex(g);
  ex.init_params(7);
  feed(ex, h, c, 8, 3);
  ex.forward();
  const auto& ctr = ex.value(h.column("pctr"));
  const auto& cvr = ex.value(h.column("pcvr"));
  const auto& click = ex.input(h.labels[0]);
  const auto& conv = ex.input(h.labels[1]);
  double risk = 0;
  for (std::size_t r = 0; r < 8; ++r) risk += click(r, 0) * bce(cvr(r, 0), conv(r, 0)) / std::max(0.3, ctr(r, 0));
  CHECK(ex.scalar(h.losses[2]) == Approx(0.5 * risk / 8).epsilon(1e-10));
  CHECK(ex.value(h.column("pctcvr"))(0, 0) == ctr(0, 0) * cvr(0, 0));
}

TEST_CASE("ESCM²-IPS: the risk trains the CVR tower and the embedding, never the CTR tower", "[models][escm2]") {
  Graph g;
  ModelHandle h = build_model(g, small("escm2-ips"));
  const GradFlow gf = structural_grad_flow(g);
  CHECK_FALSE(reaches(g, gf, h.losses[2], "ctr_tower"));
  CHECK(reaches(g, gf, h.losses[2], "cvr_tower"));
  CHECK(reaches(g, gf, h.losses[2], "embedding"));
  CHECK(reaches(g, gf, h.losses[0], "ctr_tower"));  // ESMM's CTR loss still does
}

TEST_CASE("ESCM²-DR: risk and imputation loss by hand, and the towers each trains", "[models][escm2]") {
  ModelConfig c = small("escm2-dr");
  c.options = {{"propensity_clip", 0.25}, {"imputation_weight", 2.0}};
  Graph g;
  ModelHandle h = build_model(g, c);
  REQUIRE(h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "cvr_dr", "imputation"});
  Executor<double> ex(g);
  ex.init_params(9);
  feed(ex, h, c, 8, 4);
  ex.forward();
  const auto& ctr = ex.value(h.column("pctr"));
  const auto& cvr = ex.value(h.column("pcvr"));
  const auto& imp = ex.value(h.column("imputed_cvr"));
  const auto& click = ex.input(h.labels[0]);
  const auto& conv = ex.input(h.labels[1]);
  double dr = 0, il = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    const double w = click(r, 0) / std::max(0.25, ctr(r, 0));
    const double e = bce(cvr(r, 0), conv(r, 0)), eh = bce(cvr(r, 0), imp(r, 0));
    dr += eh + w * (e - eh);
    il += w * (e - eh) * (e - eh);
  }
  CHECK(ex.scalar(h.losses[2]) == Approx(dr / 8).epsilon(1e-10));
  CHECK(ex.scalar(h.losses[3]) == Approx(2.0 * il / 8).epsilon(1e-10));

  const GradFlow gf = structural_grad_flow(g);
  CHECK(reaches(g, gf, h.losses[2], "cvr_tower"));
  CHECK_FALSE(reaches(g, gf, h.losses[2], "imputation_tower"));
  CHECK_FALSE(reaches(g, gf, h.losses[2], "ctr_tower"));
  CHECK(reaches(g, gf, h.losses[3], "imputation_tower"));
  CHECK_FALSE(reaches(g, gf, h.losses[3], "cvr_tower"));
  CHECK_FALSE(reaches(g, gf, h.losses[3], "ctr_tower"));
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
