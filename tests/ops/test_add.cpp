// add: forward by hand, both slots get dy, add(x, x) accumulates, shape mismatch is rejected.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("add forward and backward by hand", "[ops][add]", float, double) {
  Graph g;
  Var a = param(g, "a", Shape{1, 3}, Init::zeros());
  Var b = param(g, "b", Shape{1, 3}, Init::zeros());
  Var y = a + b;
  Var loss = sum(mul(y, y));  // dy = 2y
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {1, 2, 3});
  fill(ex.param(b.id), {10, -20, 0.5});
  ex.forward();
  check_near(values(ex.value(y.id)), {11, -18, 3.5});
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {22, -36, 7});
  check_near(values(ex.grad(b.id)), {22, -36, 7});
}

TEST_CASE("add of one node with itself doubles the gradient", "[ops][add]") {
  Graph g;
  Var a = param(g, "a", Shape{2}, Init::zeros());
  Var loss = sum(mul(add(a, a), a));  // Σ 2a² -> 4a
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {1.5, -2});
  ex.forward();
  CHECK(ex.scalar(loss.id) == Approx(2 * (2.25 + 4)));
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {6, -8});
}

TEST_CASE("add rejects different shapes", "[ops][add]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 3});
  Var b = input(g, "b", Shape{kBatch, 4});
  CHECK_THROWS_AS(add(a, b, "sum_ab"), ShapeError);
  CHECK_THROWS_WITH(add(a, b, "sum_ab"), Contains("'sum_ab'") && Contains("B\u00d73") && Contains("B\u00d74"));
}
