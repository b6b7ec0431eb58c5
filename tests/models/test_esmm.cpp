// ESMM (models/esmm.cpp): one shared embedding, CTR and CVR towers, the entire-space product and losses, and the
// N-stage funnel.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/error.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;
using Catch::Matchers::Contains;

TEST_CASE("ESMM: one shared embedding table, two towers, losses ctr and ctcvr on pctr and pctcvr", "[models][esmm]") {
  Graph g;
  ModelHandle h = build_model(g, small("esmm"));
  auto t = tables(g);
  REQUIRE(t.size() == 1);
  CHECK(g.node(t[0]).name == "embedding/table");
  CHECK(g.node(t[0]).shape == Shape{30, 3});
  CHECK(ops_named(g, "embedding").size() == 1);  // one lookup feeds both towers
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr"});
  CHECK(g.node(h.column("pctr")).name == "ctr_tower/pctr");
  CHECK(g.node(h.column("pcvr")).name == "cvr_tower/pcvr");
  CHECK(g.node(h.column("pctcvr")).name == "product/pctcvr");
  CHECK(g.node(h.column("pctcvr")).op == "mul");
  CHECK(g.node(h.column("pctcvr")).inputs == std::vector<NodeId>{h.column("pctr"), h.column("pcvr")});
  // ctr loss: BCE(pctr, click); ctcvr loss: BCE(pctcvr, click·conversion), both from the logits in log space:
  // log pctr = log_sigmoid(ctr logit), log pctcvr = log pctr + log_sigmoid(cvr logit). pcvr itself has no loss.
  const NodeId log_pctr = g.at("loss/log_pctr"), log_pcvr = g.at("loss/log_pcvr"), log_pctcvr = g.at("loss/log_pctcvr");
  CHECK(g.node(log_pctr).op == "log_sigmoid");
  CHECK(g.node(log_pctr).inputs == std::vector<NodeId>{g.at("ctr_tower/logit/bias_add")});
  CHECK(g.node(log_pcvr).inputs == std::vector<NodeId>{g.at("cvr_tower/logit/bias_add")});
  CHECK(g.node(h.column("pctr")).inputs == std::vector<NodeId>{g.at("ctr_tower/logit/bias_add")});
  CHECK(g.node(log_pctcvr).op == "add");
  CHECK(g.node(log_pctcvr).inputs == std::vector<NodeId>{log_pctr, log_pcvr});
  CHECK(g.node(h.losses[0]).op == "bce_logprob");
  CHECK(g.node(h.losses[0]).inputs == std::vector<NodeId>{log_pctr, h.labels[0]});
  CHECK(g.node(h.losses[1]).inputs == std::vector<NodeId>{log_pctcvr, h.labels[1]});
  CHECK(g.node(h.labels[0]).name == "input/click");
  CHECK(g.node(h.labels[1]).name == "input/ctcvr");
  // The towers: hidden {5, 4} then a 1-unit logit; first layer reads F·D = 9 features.
  for (const std::string tower : {"ctr_tower", "cvr_tower"}) {
    CHECK(g.node(g.at(tower + "/dense_0/w")).shape == Shape{9, 5});
    CHECK(g.node(g.at(tower + "/dense_1/w")).shape == Shape{5, 4});
    CHECK(g.node(g.at(tower + "/logit/w")).shape == Shape{4, 1});
  }
  std::size_t ctr_params = 0, cvr_params = 0;
  for (NodeId p : g.params()) {
    ctr_params += in_scope(g, p, "ctr_tower");
    cvr_params += in_scope(g, p, "cvr_tower");
  }
  CHECK(ctr_params == 6);
  CHECK(cvr_params == 6);
  CHECK(g.params().size() == 13);
}


TEST_CASE("ESMM with three stages: three towers, labels, cumulative products and losses", "[models][esmm]") {
  ModelConfig c = small("esmm");
  c.num_stages = 3;
  Graph g;
  ModelHandle h = build_model(g, c);
  REQUIRE(h.labels.size() == 3);
  CHECK(g.node(h.labels[2]).name == "input/stage2");
  REQUIRE(h.losses.size() == 3);
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr", "loss/stage2"});
  REQUIRE(h.stage_probs.size() == 3);
  CHECK(h.stage_probs[0] == h.column("pctr"));
  CHECK(h.stage_probs[1] == h.column("pctcvr"));
  const Node& reach = g.node(h.stage_probs[2]);
  CHECK(reach.op == "mul");
  CHECK(reach.inputs[0] == h.column("pctcvr"));
  CHECK(g.node(reach.inputs[1]).name == "stage2_tower/p2");
  CHECK(tables(g).size() == 1);
  // The stage-2 loss reads log p_reach2 = log pctcvr + log σ(stage-2 logit).
  const NodeId log_reach2 = g.at("loss/log_p_reach2");
  CHECK(g.node(log_reach2).inputs == std::vector<NodeId>{g.at("loss/log_pctcvr"), g.at("loss/log_p2")});
  CHECK(g.node(g.at("loss/log_p2")).inputs == std::vector<NodeId>{g.at("stage2_tower/logit/bias_add")});
  CHECK(g.node(h.losses[2]).inputs == std::vector<NodeId>{log_reach2, h.labels[2]});
  CHECK(h.loss_weights.size() == 3);

  Executor<double> ex(g);
  ex.init_params(3);
  feed(ex, h, c, 6, 1);
  ex.forward();
  for (std::size_t r = 0; r < 6; ++r)
    CHECK(ex.value(h.stage_probs[2])(r, 0) == ex.value(h.column("pctcvr"))(r, 0) * ex.value(reach.inputs[1])(r, 0));
}


TEST_CASE("ESMM forward numerics: pCTCVR = pCTR·pCVR and both losses over all impressions", "[models][esmm]") {
  check_forward_numerics("esmm");
}

TEST_CASE("ESMM is registered with a description and accepts longer funnels", "[models][esmm]") {
  const ModelDef& d = get_model("esmm");
  CHECK_THAT(d.description, Contains("shared embedding"));
  CHECK(d.multi_stage);
  CHECK(model_kinds().front() == "esmm");
}
