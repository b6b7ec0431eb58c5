// bias_add: broadcast over rows by hand, db = column sums of dy, shape-rule errors.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("bias_add forward and backward by hand", "[ops][bias_add]", float, double) {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  Var w = param(g, "w", Shape{3, 3}, Init::zeros());
  Var b = param(g, "b", Shape{3}, Init::zeros());
  Var y = bias_add(matmul(x, w), b);
  Var loss = sum(mul(y, y));  // dy = 2y
  Executor<TestType> ex(g);
  ex.set_batch(2);
  fill(ex.input(x.id), {1, 2, 3, 4, 5, 6});
  fill(ex.param(w.id), {1, 0, 0, 0, 1, 0, 0, 0, 1});  // identity: y = x + b
  fill(ex.param(b.id), {10, 20, 30});
  ex.forward();
  check_near(values(ex.value(y.id)), {11, 22, 33, 14, 25, 36});
  ex.backward(loss.id);
  check_near(values(ex.grad(b.id)), {2 * (11 + 14), 2 * (22 + 25), 2 * (33 + 36)});
  // dx = dy passes through to the matmul: dW = xᵀ·dy.
  check_near(values(ex.grad(w.id)), {2 * (1 * 11 + 4 * 14), 2 * (1 * 22 + 4 * 25), 2 * (1 * 33 + 4 * 36),
                                     2 * (2 * 11 + 5 * 14), 2 * (2 * 22 + 5 * 25), 2 * (2 * 33 + 5 * 36),
                                     2 * (3 * 11 + 6 * 14), 2 * (3 * 22 + 6 * 25), 2 * (3 * 33 + 6 * 36)});
}

TEST_CASE("bias_add shape rule", "[ops][bias_add]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  CHECK(bias_add(x, param(g, "b", Shape{3}, Init::zeros())).shape() == Shape{kBatch, 3});
  CHECK_THROWS_WITH(bias_add(x, param(g, "b4", Shape{4}, Init::zeros()), "ba"),
                    Contains("'ba'") && Contains("B\u00d73") && Contains("4"));
  CHECK_THROWS_AS(bias_add(x, param(g, "b13", Shape{1, 3}, Init::zeros())), ShapeError);
  CHECK_THROWS_AS(bias_add(input(g, "x3", Shape{kBatch, 2, 3}), param(g, "b3", Shape{3}, Init::zeros())),
                  ShapeError);
}
