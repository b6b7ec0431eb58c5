// clip: values by hand, gradient passes inside [lo, hi] (boundaries included) and is zero where clipped, the
// one-sided form max(x, 0), and the lo <= hi rule.
#include <catch2/catch.hpp>

#include <limits>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("clip forward and backward by hand", "[ops][clip]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{6}, Init::zeros());
  Var y = clip(x, 0.05, 1.0);
  Var loss = sum(scale(y, 2.0));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {0.01, 0.05, 0.5, 1.0, 1.5, -3});
  ex.forward();
  check_near(values(ex.value(y.id)), {0.05, 0.05, 0.5, 1.0, 1.0, 0.05}, 1e-7);
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {0, 2, 2, 2, 0, 0});
}

TEST_CASE("clip with an infinite bound is max(x, 0)", "[ops][clip]") {
  Graph g;
  Var x = param(g, "x", Shape{4}, Init::zeros());
  Var y = clip(x, 0.0, std::numeric_limits<double>::infinity());
  Var loss = sum(y);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {-1, 2, 0.5, -0.1});
  ex.forward();
  check_near(values(ex.value(y.id)), {0, 2, 0.5, 0});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {0, 1, 1, 0});
}

TEST_CASE("clip attribute rule", "[ops][clip]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 1});
  CHECK_THROWS_AS(clip(x, 1, 0, "prop"), GraphError);
  CHECK_THROWS_WITH(clip(x, 1, 0, "prop"), Contains("'prop'") && Contains("lo"));
  CHECK(clip(x, 0, 1).shape() == Shape{kBatch, 1});
}
