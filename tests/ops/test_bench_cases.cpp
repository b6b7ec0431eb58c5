// funnel-bench covers every registered op: bench/op_cases.hpp has at least one case per op, and every case builds
// and runs forward and backward (at a small batch, untimed) with finite results.
#include <catch2/catch.hpp>

#include <cmath>

#include "bench/op_cases.hpp"

using namespace funnel;

TEST_CASE("every registered op has a benchmark case", "[ops][bench]") {
  const auto cases = bench::op_cases();
  for (const auto& name : op_names()) {
    if (name.rfind("test_", 0) == 0) continue;  // registered by another test case of this binary for itself
    INFO("op " << name << " has no case in bench/op_cases.hpp");
    CHECK(std::any_of(cases.begin(), cases.end(), [&](const bench::OpCase& c) { return c.op == name; }));
  }
}

TEST_CASE("every benchmark case runs forward and backward", "[ops][bench]") {
  for (const auto& oc : bench::op_cases()) {
    INFO("op " << oc.op << " " << oc.label);
    bench::OpRun r(oc, 4);
    r.forward();
    r.backward();
    for (float v : r.out()) CHECK(std::isfinite(v));
    CHECK(r.fwd_bytes() > 0);
    CHECK(r.bwd_bytes() > 0);
  }
}
