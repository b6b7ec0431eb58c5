// ESMM-NS (models/esmm_ns.cpp): ESMM with one embedding table per tower.
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

TEST_CASE("ESMM-NS: one embedding table per tower, ESMM's product and losses", "[models][esmm_ns]") {
  Graph g;
  ModelHandle h = build_model(g, small("esmm-ns"));
  CHECK(names(g, tables(g)) == std::vector<std::string>{"embedding_ctr_tower/table", "embedding_cvr_tower/table"});
  CHECK(ops_named(g, "embedding").size() == 2);
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr"});
  for (NodeId t : tables(g)) CHECK(g.consumers(t).size() == 1);  // each table feeds one tower
  CHECK(g.node(h.column("pctcvr")).op == "mul");
  CHECK(g.node(h.column("pctcvr")).inputs == std::vector<NodeId>{h.column("pctr"), h.column("pcvr")});
  CHECK(h.column_names() == std::vector<std::string>{"pctr", "pcvr", "pctcvr"});
}

TEST_CASE("ESMM-NS forward numerics", "[models][esmm_ns]") { check_forward_numerics("esmm-ns"); }
