// sigmoid: values by hand, saturation at ±100 and ±1000 stays finite in float and double, dx = dy·y·(1−y).
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEST_CASE("sigmoid forward and backward by hand", "[ops][sigmoid]") {
  Graph g;
  Var x = param(g, "x", Shape{1, 3}, Init::zeros());
  Var y = sigmoid(x);
  Var loss = sum(y);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {0, 2, -2});
  ex.forward();
  const double s2 = 0.8807970779778823;  // 1/(1+e^-2)
  check_near(values(ex.value(y.id)), {0.5, s2, 1 - s2}, 1e-15);
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {0.25, s2 * (1 - s2), s2 * (1 - s2)}, 1e-15);
}

TEMPLATE_TEST_CASE("sigmoid saturates without overflow", "[ops][sigmoid]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{4}, Init::zeros());
  Var y = sigmoid(x);
  Var loss = sum(y);
  Executor<TestType> ex(g);  // finite checks on: a NaN or Inf output would throw
  ex.set_batch(1);
  fill(ex.param(x.id), {100, -100, 1000, -1000});
  REQUIRE_NOTHROW(ex.forward());
  auto v = values(ex.value(y.id));
  CHECK(v[0] == 1.0);
  CHECK(v[2] == 1.0);
  CHECK(v[1] >= 0.0);
  CHECK(v[1] < 1e-40);
  CHECK(v[3] == 0.0);
  ex.backward(loss.id);
  for (double gx : values(ex.grad(x.id))) {
    CHECK(std::isfinite(gx));
    CHECK(std::abs(gx) < 1e-40);
  }
}
