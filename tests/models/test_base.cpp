// BASE (models/base.cpp): a CTR model and a CVR model trained on clicked impressions only.
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

TEST_CASE("BASE: two embedding tables, a CTR loss and a CVR loss masked by the click label", "[models][base]") {
  Graph g;
  ModelHandle h = build_model(g, small("base"));
  CHECK(names(g, tables(g)) == std::vector<std::string>{"embedding_ctr/table", "embedding_cvr/table"});
  CHECK(ops_named(g, "embedding").size() == 2);
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/cvr_on_clicks"});
  CHECK(h.loss_names == std::vector<std::string>{"ctr", "cvr_on_clicks"});
  for (NodeId t : tables(g)) CHECK(g.consumers(t).size() == 1);
  // The CVR loss is the BCE of pcvr (read as log pcvr from the CVR logit) against the ctcvr label, weighted by the
  // click label.
  const Node& cvr_loss = g.node(h.losses[1]);
  CHECK(cvr_loss.op == "bce_logprob");
  CHECK(cvr_loss.inputs == std::vector<NodeId>{g.at("loss/log_pcvr"), h.labels[1], h.labels[0]});
  CHECK(g.node(g.at("loss/log_pcvr")).inputs == std::vector<NodeId>{g.at("cvr_tower/logit/bias_add")});
  CHECK(h.cond_probs == std::vector<NodeId>{h.column("pctr"), h.column("pcvr")});
  CHECK(h.stage_probs == std::vector<NodeId>{h.column("pctr"), h.column("pctcvr")});
}

TEST_CASE("BASE forward numerics: the CVR loss averages over clicked rows", "[models][base]") {
  check_forward_numerics("base");
}

TEST_CASE("BASE has two stages only", "[models][base]") {
  ModelConfig c = small("base");
  c.num_stages = 3;
  Graph g;
  CHECK_THROWS_WITH(build_model(g, c), Contains("'base'") && Contains("2 stages"));
}
