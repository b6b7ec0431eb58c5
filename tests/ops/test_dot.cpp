// dot: per-row dot products by hand for rank 3 (B×E×d -> B×E) and rank 2 (B×d -> B×1), the VJP, dot(x, x),
// and the shape rule.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("dot over the last axis of rank-3 tensors by hand", "[ops][dot]", float, double) {
  Graph g;
  Var b = param(g, "b", Shape{2, 2, 3}, Init::zeros());
  Var w = input(g, "w", Shape{2, 2});  // weights of each score in the loss
  Var a2 = param(g, "a2", Shape{2, 2, 3}, Init::zeros());
  Var y = dot(a2, b);
  Var loss = sum(mul(y, stop_gradient(w)));
  Executor<TestType> ex(g);
  ex.set_batch(2);
  fill(ex.param(a2.id), {1, 2, 3, 0, 1, 0, -1, 0, 1, 2, 2, 2});
  fill(ex.param(b.id), {1, 1, 1, 5, 6, 7, 3, 4, 5, 0.5, 0, -1});
  fill(ex.input(w.id), {1, 2, -1, 10});
  ex.forward();
  check_near(values(ex.value(y.id)), {6, 6, 2, -1});
  ex.backward(loss.id);
  // da[r, :] = w[r]·b[r, :], db[r, :] = w[r]·a[r, :]
  check_near(values(ex.grad(a2.id)), {1, 1, 1, 10, 12, 14, -3, -4, -5, 5, 0, -10});
  check_near(values(ex.grad(b.id)), {1, 2, 3, 0, 2, 0, 1, 0, -1, 20, 20, 20});
}

TEST_CASE("dot of rank-2 tensors keeps a column, dot(x, x) is the squared norm", "[ops][dot]") {
  Graph g;
  Var x = param(g, "x", Shape{2, 3}, Init::zeros());
  Var y = dot(x, x);
  Var loss = sum(y);
  REQUIRE(y.shape() == Shape{2, 1});
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2, 2, -3, 0, 4});
  ex.forward();
  check_near(values(ex.value(y.id)), {9, 25});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {2, 4, 4, -6, 0, 8});
}

TEST_CASE("dot shape rule", "[ops][dot]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 2, 4});
  Var b = input(g, "b", Shape{kBatch, 2, 5});
  CHECK_THROWS_WITH(dot(a, b, "score"), Contains("'score'") && Contains("B\u00d72\u00d74") && Contains("B\u00d72\u00d75"));
  Var v = param(g, "v", Shape{4}, Init::zeros());
  CHECK_THROWS_WITH(dot(v, v, "flat"), Contains("'flat'") && Contains("rank"));
  CHECK(dot(a, a).shape() == Shape{kBatch, 2});
}
