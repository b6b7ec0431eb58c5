// relu: values and the gradient mask by hand (0 at the kink).
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("relu forward and backward by hand", "[ops][relu]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{4}, Init::zeros());
  Var y = relu(x);
  Var loss = sum(mul(y, x));  // Σ relu(x)·x -> 2x where x > 0
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {-1, 0, 2, 0.5});
  ex.forward();
  check_near(values(ex.value(y.id)), {0, 0, 2, 0.5});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {0, 0, 4, 1});
}
