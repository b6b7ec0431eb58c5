// ESMM-MMoE and ESMM-PLE (models/esmm_mmoe.cpp, models/esmm_ple.cpp): the expert and gate structure follows the
// options, gates are distributions, ESMM's head (pCTCVR = pCTR × pCVR, its two losses) is kept, and in PLE the
// click loss never reaches the conversion task's own experts.
#include <catch2/catch.hpp>

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
std::size_t count_scope(const Graph& g, const std::string& scope, const std::string& op) {
  std::size_t n = 0;
  for (NodeId v : ops_named(g, op)) n += in_scope(g, v, scope);
  return n;
}
}  // namespace

TEST_CASE("ESMM-MMoE: experts from the option, one softmax gate per task, ESMM's head", "[models][mmoe]") {
  check_forward_numerics("esmm-mmoe");
  ModelConfig c = small("esmm-mmoe");
  c.options = {{"experts", 3}};
  Graph g;
  ModelHandle h = build_model(g, c);
  CHECK(count_scope(g, "experts", "relu") == 3);
  CHECK(ops_named(g, "softmax").size() == 2);
  CHECK(ops_named(g, "weighted_sum").size() == 2);
  Executor<double> ex(g);
  ex.init_params(4);
  feed(ex, h, c, 5, 2);
  ex.forward();
  for (const char* gate : {"ctr_gate/weights", "cvr_gate/weights"}) {
    const auto& w = ex.value(gate);
    REQUIRE(w.shape()[1] == 3);
    for (std::size_t r = 0; r < 5; ++r) CHECK(w(r, 0) + w(r, 1) + w(r, 2) == Approx(1.0).epsilon(1e-12));
  }
  c.options = {{"experts", 0}};
  Graph g2;
  CHECK_THROWS_WITH(build_model(g2, c), Contains("experts"));
}

TEST_CASE("ESMM-PLE: task and shared experts per level, a shared gate between levels", "[models][ple]") {
  check_forward_numerics("esmm-ple");
  ModelConfig c = small("esmm-ple");
  c.options = {{"levels", 2}, {"task_experts", 1}, {"shared_experts", 3}};
  Graph g;
  ModelHandle h = build_model(g, c);
  for (const char* lvl : {"level_0", "level_1"}) {
    CHECK(count_scope(g, std::string(lvl) + "/ctr_experts", "relu") == 1);
    CHECK(count_scope(g, std::string(lvl) + "/cvr_experts", "relu") == 1);
    CHECK(count_scope(g, std::string(lvl) + "/shared_experts", "relu") == 3);
  }
  CHECK(count_scope(g, "level_0/shared_gate", "softmax") == 1);
  CHECK(count_scope(g, "level_1/shared_gate", "softmax") == 0);  // no level above the last
  CHECK(g.node(g.at("level_0/ctr_gate/weights")).shape == Shape{kBatch, 4});
  CHECK(g.node(g.at("level_0/shared_gate/weights")).shape == Shape{kBatch, 5});

  // One level (CGC): the click loss cannot reach the conversion task's own experts; the CTCVR loss reaches all.
  Graph g1;
  ModelHandle h1 = build_model(g1, small("esmm-ple"));
  const GradFlow gf = structural_grad_flow(g1);
  for (NodeId p : g1.params()) {
    INFO(g1.node(p).name);
    if (in_scope(g1, p, "level_0/cvr_experts")) CHECK_FALSE(gf.at(p, h1.losses[0]).structural);
    CHECK(gf.at(p, h1.losses[1]).structural);
  }
  (void)h;
}
