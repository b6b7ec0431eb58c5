// shift: y = x + c and dx = dy by hand; 1 − x from scale and shift.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("shift forward and backward by hand", "[ops][shift]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{3}, Init::zeros());
  Var y = shift(scale(x, -1.0), 1.0);  // 1 − x
  Var loss = sum(mul(y, y));           // Σ (1 − x)² -> −2(1 − x)
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {0.25, 1, -2});
  ex.forward();
  check_near(values(ex.value(y.id)), {0.75, 0, 3});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {-1.5, 0, -6});
}
