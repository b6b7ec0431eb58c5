// DIVISION (models/division.cpp): separate CTR and CTCVR models, pCVR = clip(pCTCVR / pCTR, 0, 1).
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

TEST_CASE("DIVISION: two embedding tables, CTR and CTCVR losses, pCVR a clipped ratio", "[models][division]") {
  Graph g;
  ModelHandle h = build_model(g, small("division"));
  CHECK(names(g, tables(g)) == std::vector<std::string>{"embedding_ctr/table", "embedding_ctcvr/table"});
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr"});
  for (NodeId t : tables(g)) CHECK(g.consumers(t).size() == 1);
  const NodeId pcvr = h.column("pcvr");
  CHECK(g.node(pcvr).op == "divide");
  CHECK(g.node(pcvr).inputs == std::vector<NodeId>{h.column("pctcvr"), h.column("pctr")});
  CHECK(g.node(pcvr).attrs.get_num("lo", -1) == 0.0);
  CHECK(g.node(pcvr).attrs.get_num("hi", -1) == 1.0);
  CHECK(h.cond_probs[1] == pcvr);
}

TEST_CASE("DIVISION forward numerics", "[models][division]") { check_forward_numerics("division"); }

TEST_CASE("DIVISION clips pCVR to [0, 1] when pCTCVR exceeds pCTR", "[models][division]") {
  ModelConfig c = small("division");
  Graph g;
  ModelHandle h = build_model(g, c);
  Executor<double> ex(g);
  ex.init_params(1);
  // Push the CTCVR logit up and the CTR logit down.
  ex.param("ctcvr_tower/logit/b").fill(6.0);
  ex.param("ctr_tower/logit/b").fill(-6.0);
  feed(ex, h, c, 6, 4);
  ex.forward({h.column("pcvr")});
  for (std::size_t r = 0; r < 6; ++r) {
    CHECK(ex.value(h.column("pctcvr"))(r, 0) > ex.value(h.column("pctr"))(r, 0));
    CHECK(ex.value(h.column("pcvr"))(r, 0) == 1.0);
  }
}


