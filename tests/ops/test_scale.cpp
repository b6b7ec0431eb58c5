// scale: y = w·x and dx = w·dy by hand; a weighted sum of two losses.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("scale forward and backward by hand", "[ops][scale]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{3}, Init::zeros());
  Var y = scale(x, -2.0);
  Var loss = sum(mul(y, y));  // Σ 4x² -> 8x
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, -0.5, 3});
  ex.forward();
  check_near(values(ex.value(y.id)), {-2, 1, -6});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {8, -4, 24});
}

TEST_CASE("scale weights one loss against another", "[ops][scale]") {
  Graph g;
  Var x = param(g, "x", Shape{2}, Init::zeros());
  Var loss = add(scale(sum(x), 0.25), scale(sum(mul(x, x)), 3.0));  // 0.25 Σx + 3 Σx²
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2});
  ex.forward();
  CHECK(ex.scalar(loss.id) == Approx(0.25 * 3 + 3 * 5));
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {0.25 + 6, 0.25 + 12});
}
