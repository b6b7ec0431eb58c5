// Every registered op has at least one example, and every example's VJP matches central finite differences
// in double precision (relative error < 1e-6 away from kinks).
#include <catch2/catch.hpp>

#include "autodiff/gradcheck.hpp"
#include "ops/op.hpp"

using namespace funnel;

TEST_CASE("every registered op has a gradient-check example", "[ops][gradcheck]") {
  for (const auto& name : op_names()) {
    if (name.rfind("test_", 0) == 0) continue;  // registered by another test case of this binary for itself
    INFO("op " << name);
    CHECK_FALSE(op_examples(name).empty());
  }
}

TEST_CASE("every op's VJP matches finite differences in double precision", "[ops][gradcheck]") {
  GradCheckOptions opt;
  opt.eps = 1e-6;
  opt.atol = 1e-8;
  opt.rtol = 1e-6;
  for (const auto& ex : all_op_examples()) {
    for (std::uint64_t seed : {1u, 2u}) {
      opt.seed = seed;
      auto res = check_op_example(ex, opt);
      INFO("op " << ex.op << " (" << ex.label << "), seed " << seed);
      CHECK(res.repeat_identical);
      REQUIRE_FALSE(res.rows.empty());
      for (auto& r : res.rows) {
        INFO("param " << r.param << " worst " << r.worst << " max_rel " << r.max_rel);
        CHECK(r.pass);
        CHECK(r.checked > 0);
      }
    }
  }
}
