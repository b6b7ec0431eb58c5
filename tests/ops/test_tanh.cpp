// tanh: values by hand, dx = dy·(1 − y²), saturation stays finite.
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("tanh forward and backward by hand", "[ops][tanh]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{1, 4}, Init::zeros());
  Var y = tanh(x);
  Var loss = sum(scale(y, 3.0));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {0, 0.5, -1, 30});
  ex.forward();
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-15;
  const double t5 = std::tanh(0.5), t1 = std::tanh(1.0);
  check_near(values(ex.value(y.id)), {0, t5, -t1, 1}, tol);
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {3, 3 * (1 - t5 * t5), 3 * (1 - t1 * t1), 0}, 10 * tol);
}

TEST_CASE("dense layers take a tanh activation", "[ops][tanh]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  Var h = dense(x, 2, "layer", Act::Tanh);
  CHECK(h.node().op == "tanh");
  CHECK(h.name() == "layer/tanh");
}
