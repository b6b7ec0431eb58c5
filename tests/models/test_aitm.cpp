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
#include "train/trainer.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;

TEST_CASE("AITM losses and calibrator by hand", "[models][aitm]") {
  ForwardRun f("aitm", {{"calibrator_weight", 2.0}}, 8, 3, 5);
  REQUIRE(f.h.loss_names == std::vector<std::string>{"ctr", "ctcvr", "calibrator"});
  double l0 = 0, l1 = 0, cal = 0;
  for (std::size_t r = 0; r < 8; ++r) {
    const double ctr = f.col("pctr", r), ctcvr = f.col("pctcvr", r);
    l0 += bce(ctr, f.click(r));
    l1 += bce(ctcvr, f.conv(r));
    cal += std::max(0.0, ctcvr - ctr);
    CHECK(f.col("pcvr", r) == Approx(std::min(1.0, ctcvr / ctr)).epsilon(1e-12));
  }
  CHECK(f.loss("ctr") == Approx(l0 / 8).epsilon(1e-10));
  CHECK(f.loss("ctcvr") == Approx(l1 / 8).epsilon(1e-10));
  CHECK(f.loss("calibrator") == Approx(2.0 * cal / 8).epsilon(1e-10));
  const auto& att = f.ex.value("ctcvr_tower/ait/attention");
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

// The stage losses are taken on the logits. With a BCE on the probability, whose clamp at eps is flat, a tower
// whose sigmoid saturates below eps gets no gradient from its loss (and none from the calibrator, which is 0 when
// pCTCVR < pCTR): after Adam's early overshoot AITM's pCTCVR tower stayed at 0. A saturated pCTCVR must still get
// the gradient mean(p − y) on its logit.
TEST_CASE("AITM: a saturated pCTCVR still gets the gradient of its loss", "[models][aitm]") {
  Fed<double> f(small("aitm"), 8, 3, 5);
  Executor<double>& ex = f.ex;
  const ModelHandle& h = f.h;
  for (auto& b : ex.param("ctcvr_tower/logit/b")) b = -40.0;  // sigmoid(-40) ≈ 4e-18, below the BCE clamp
  ex.forward();
  ex.backward(h.losses[1]);
  const auto& y = ex.input(h.labels[1]);
  const auto& p = ex.value(h.column("pctcvr"));
  double expect = 0;
  for (std::size_t r = 0; r < 8; ++r) expect += (p(r, 0) - y(r, 0)) / 8;
  REQUIRE(expect < -0.1);  // the feeder gives row 0 a conversion
  CHECK(ex.grad("ctcvr_tower/logit/b")(0) == Approx(expect).epsilon(1e-9));
}

// The same on real training: pCTCVR pushed into saturation at the start, then a short training run on synthetic
// data must bring its mean back to the observed click·conversion rate and rank it.
TEST_CASE("AITM: pCTCVR recovers from saturation in training", "[models][aitm][train]") {
  TrainerOptions o = small_trainer("aitm", 8, {32, 16}, 256, 0.002);
  o.train.epochs = 8;
  auto data = load_train_data({.train = "synthetic:rows=30000,fields=8,vocab=200"}, ReadOptions{});
  Trainer t(o, data);
  for (auto& b : t.model().exec().param("ctcvr_tower/logit/b")) b = -40.0f;
  const TrainResult r = t.train();
  REQUIRE(r.epochs.back().has_eval);
  const FunnelMetrics& m = r.epochs.back().eval;
  INFO("mean pCTCVR " << m.mean_pctcvr << ", observed " << m.ctcvr_rate << ", CTCVR AUC " << m.ctcvr_auc);
  REQUIRE(m.ctcvr_rate > 0);
  CHECK(m.mean_pctcvr > m.ctcvr_rate / 3);
  CHECK(m.mean_pctcvr < m.ctcvr_rate * 3);
  CHECK(m.ctcvr_auc > 0.6);
}
