// The funnel losses (models/blocks.cpp, models/counterfactual.cpp): every loss on a stage probability is computed
// from the logits in log space. No model takes a BCE of a clamped probability; a positive row keeps the gradient of
// its loss on the CVR logit however small pCTCVR gets; and a short training run with rare conversions and a high
// learning rate, where the clamped loss let the CVR tower collapse (mean pCTCVR → 0), stays calibrated.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "models/model.hpp"
#include "train/loop.hpp"
#include "train/trainer.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;

namespace {

// The models whose CVR tower is ESMM's ("cvr_tower", its product with pCTR trained by the ctcvr loss).
const std::vector<std::string> kEsmmHeads{"esmm", "esmm-ns", "esmm-mmoe", "esmm-ple", "escm2-ips", "escm2-dr", "dcmt"};

double logit_of(double p) { return std::log(p) - std::log1p(-p); }

// Sets a tower's output layer to a constant logit z: weights 0, bias z.
template <class T>
void set_logit(Executor<T>& ex, const std::string& tower, double z) {
  for (auto& w : ex.param(tower + "/logit/w")) w = T(0);
  for (auto& b : ex.param(tower + "/logit/b")) b = static_cast<T>(z);
}

}  // namespace

TEST_CASE("no funnel model takes a BCE of a probability: every stage loss reads log-probabilities from logits",
          "[models][losses]") {
  for (const std::string& kind : model_kinds()) {
    if (kind.rfind("test", 0) == 0) continue;  // registered by another test case of this binary for itself
    INFO(kind);
    Graph g;
    ModelConfig c = small(kind);
    build_model(g, c);
    CHECK(ops_named(g, "bce").empty());
    CHECK(ops_named(g, "bce_rows").empty());
    // Each log_sigmoid reads a tower's logit, the input of the sigmoid that gives the tower's probability.
    for (NodeId v : ops_named(g, "log_sigmoid")) {
      bool feeds_sigmoid = false;
      for (NodeId u : g.consumers(g.node(v).inputs[0])) feeds_sigmoid = feeds_sigmoid || g.node(u).op == "sigmoid";
      CHECK(feeds_sigmoid);
    }
  }
}

// In float, where the clamped BCE cut off at p = 1e-7: a single positive row with pCTR = 0.5 and pCVR = 2e-12
// (pCTCVR = 1e-12). d(ctcvr loss)/d(CVR logit) = −(1 − pCVR): the positive pulls the CVR logit up at full strength.
TEST_CASE("a positive row's CTCVR loss keeps its gradient on the CVR logit at pCTCVR = 1e-12", "[models][losses]") {
  for (const std::string& kind : kEsmmHeads) {
    INFO(kind);
    Fed<float> f(small(kind), 1, 5, 3);  // row 0 clicks and converts
    Executor<float>& ex = f.ex;
    const ModelHandle& h = f.h;
    REQUIRE(ex.input(h.labels[1])(0, 0) == 1.0f);
    set_logit(ex, "ctr_tower", 0.0);
    set_logit(ex, "cvr_tower", logit_of(2e-12));
    ex.forward();
    REQUIRE(static_cast<double>(ex.value(h.column("pctcvr"))(0, 0)) == Approx(1e-12).epsilon(1e-4));
    ex.backward(h.losses[1]);
    CHECK(static_cast<double>(ex.grad("cvr_tower/logit/b")(0)) == Approx(-1.0).epsilon(1e-5));
  }
}

TEST_CASE("the N-stage funnel: a positive's last-stage loss keeps its gradient at p(reach) = 1e-12",
          "[models][losses]") {
  ModelConfig c = small("esmm");
  c.num_stages = 3;
  Fed<float> f(c, 1, 5, 3);  // row 0 reaches every stage
  Executor<float>& ex = f.ex;
  const ModelHandle& h = f.h;
  REQUIRE(ex.input(h.labels[2])(0, 0) == 1.0f);
  set_logit(ex, "ctr_tower", 0.0);
  set_logit(ex, "cvr_tower", 0.0);
  set_logit(ex, "stage2_tower", logit_of(4e-12));
  ex.forward();
  REQUIRE(static_cast<double>(ex.value(h.stage_probs[2])(0, 0)) == Approx(1e-12).epsilon(1e-4));
  ex.backward(h.losses[2]);
  CHECK(static_cast<double>(ex.grad("stage2_tower/logit/b")(0)) == Approx(-1.0).epsilon(1e-5));
  CHECK(static_cast<double>(ex.grad("cvr_tower/logit/b")(0)) == Approx(-0.5).epsilon(1e-5));
}

// Rare conversions (0.05% of impressions), a learning rate 50 times Adam's default and 5 epochs: with the BCE of
// the clamped pCTCVR, once the positives fell below the clamp their gradient was 0 while the negatives kept pushing
// the CVR logits down — the mean pCTCVR on the training rows went to ~1e-9 and CTCVR AUC to 0.5. From the logits
// the positives always pull back and the mean stays near the observed rate.
TEST_CASE("ESMM with rare conversions and a high learning rate stays calibrated on its training rows",
          "[models][losses][train]") {
  TrainerOptions o = small_trainer("esmm", 8, {32, 16}, 256, 0.1);
  o.train.epochs = 5;
  auto data = load_train_data({.train = "synthetic:rows=40000,fields=8,vocab=1000,ctcvr=0.0005"}, ReadOptions{});
  Trainer t(o, data);
  t.train();
  const FunnelMetrics m = evaluate(t.model(), data->train.data, 4096);
  INFO("training rows: mean pCTCVR " << m.mean_pctcvr << ", observed " << m.ctcvr_rate << ", mean pCVR on clicks "
                                     << m.mean_pcvr_clicked << ", CTCVR AUC " << m.ctcvr_auc);
  REQUIRE(m.conversions >= 10);
  CHECK(m.mean_pctcvr > m.ctcvr_rate / 3);
  CHECK(m.mean_pctcvr < m.ctcvr_rate * 3);
}
