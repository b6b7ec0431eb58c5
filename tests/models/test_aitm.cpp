// AITM (models/aitm.cpp): the behaviour calibrator and the losses by hand, the attention weights form a
// distribution, pCVR is the clipped ratio, and the conversion loss reaches the click tower through the transfer
// while the click loss never reaches the conversion tower.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/gradflow.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;

TEST_CASE("AITM losses and calibrator by hand", "[models][aitm]") {
  ModelConfig c = small("aitm");
  c.options = {{"calibrator_weight", 2.0}};
  Graph g;
  ModelHandle h = build_model(g, c);
  REQUIRE(h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "calibrator"});
  Executor<double> ex(g);
  ex.init_params(3);
  feed(ex, h, c, 8, 5);
  ex.forward();
  const auto& ctr = ex.value(h.column("pctr"));
  const auto& cvr = ex.value(h.column("pcvr"));
  const auto& ctcvr = ex.value(h.column("pctcvr"));
  const auto& click = ex.input(h.labels[0]);
  const auto& conv = ex.input(h.labels[1]);
  double l0 = 0, l1 = 0, cal = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    l0 += bce(ctr(r, 0), click(r, 0));
    l1 += bce(ctcvr(r, 0), conv(r, 0));
    cal += std::max(0.0, ctcvr(r, 0) - ctr(r, 0));
    CHECK(cvr(r, 0) == Approx(std::min(1.0, ctcvr(r, 0) / ctr(r, 0))).epsilon(1e-12));
  }
  CHECK(ex.scalar(h.losses[0]) == Approx(l0 / 8).epsilon(1e-10));
  CHECK(ex.scalar(h.losses[1]) == Approx(l1 / 8).epsilon(1e-10));
  CHECK(ex.scalar(h.losses[2]) == Approx(2.0 * cal / 8).epsilon(1e-10));
  const auto& att = ex.value("ctcvr_tower/ait/attention");
  REQUIRE(att.shape()[1] == 2);
  for (std::size_t r = 0; r < 8; ++r) CHECK(att(r, 0) + att(r, 1) == Approx(1.0).epsilon(1e-12));
}

TEST_CASE("AITM gradient flow: the transfer carries the conversion loss into the click tower", "[models][aitm]") {
  Graph g;
  ModelHandle h = build_model(g, small("aitm"));
  const GradFlow gf = structural_grad_flow(g);
  bool ctcvr_reaches_ctr = false, ctr_reaches_ctcvr = false;
  for (NodeId p : g.params()) {
    if (in_scope(g, p, "ctr_tower") && gf.at(p, h.losses[1]).structural) ctcvr_reaches_ctr = true;
    if (in_scope(g, p, "ctcvr_tower") && gf.at(p, h.losses[0]).structural) ctr_reaches_ctcvr = true;
  }
  CHECK(ctcvr_reaches_ctr);
  CHECK_FALSE(ctr_reaches_ctcvr);
}
