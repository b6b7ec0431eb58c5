// matmul: forward and VJP on a 2×3 · 3×2 product by hand, float and double; shape-rule errors name the node and
// both shapes.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("matmul forward and backward by hand", "[ops][matmul]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{2, 3}, Init::zeros());
  Var w = param(g, "w", Shape{3, 2}, Init::zeros());
  Var y = matmul(x, w, "mm");
  Var loss = sum(y);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2, 3, 4, 5, 6});
  fill(ex.param(w.id), {1, 0, 0, 1, 1, 1});
  ex.forward();
  check_near(values(ex.value(y.id)), {4, 5, 10, 11});
  ex.backward(loss.id);
  // dX = 1·Wᵀ: every row holds W's row sums; dW = Xᵀ·1: every column holds X's column sums.
  check_near(values(ex.grad(x.id)), {1, 1, 2, 1, 1, 2});
  check_near(values(ex.grad(w.id)), {5, 5, 7, 7, 9, 9});
}

TEST_CASE("matmul with a batch input", "[ops][matmul]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 2});
  Var w = param(g, "w", Shape{2, 1}, Init::zeros());
  Var y = matmul(x, w);
  CHECK(y.shape() == Shape{kBatch, 1});
  Executor<double> ex(g);
  ex.set_batch(3);
  fill(ex.input(x.id), {1, 2, 3, 4, 5, 6});
  fill(ex.param(w.id), {10, -1});
  ex.forward();
  check_near(values(ex.value(y.id)), {8, 26, 44});
}

TEST_CASE("matmul inner-dimension mismatch names the node and both shapes", "[ops][matmul]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  Var w = param(g, "w", Shape{4, 2}, Init::zeros());
  {
    auto s = g.scope("tower");
    CHECK_THROWS_AS(matmul(x, w, "mm"), ShapeError);
    CHECK_THROWS_WITH(matmul(x, w, "mm"),
                      Contains("'tower/mm'") && Contains("B\u00d73") && Contains("4\u00d72") && Contains("inner"));
  }
  Var v = param(g, "v", Shape{3}, Init::zeros());
  CHECK_THROWS_WITH(matmul(x, v), Contains("matrices") && Contains("B\u00d73"));
  // The batch dim can never be the inner dimension.
  Var xt = input(g, "xt", Shape{3, kBatch});
  Var wb = input(g, "wb", Shape{kBatch, 2});
  CHECK_THROWS_AS(matmul(xt, wb), ShapeError);
}
