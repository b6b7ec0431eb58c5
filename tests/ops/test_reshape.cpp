// reshape and flatten: element order kept, batch dim carried, gradient copied back, shape-rule errors.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEST_CASE("reshape of a fixed tensor keeps row-major order", "[ops][reshape]") {
  Graph g;
  Var x = param(g, "x", Shape{2, 3}, Init::zeros());
  Var y = reshape(x, Shape{3, 2});
  CHECK(y.shape() == Shape{3, 2});
  Var r = input(g, "r", Shape{3, 2});
  Var loss = sum(mul(y, r));
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2, 3, 4, 5, 6});
  fill(ex.input(r.id), {-1, -2, -3, -4, -5, -6});
  ex.forward();
  check_near(values(ex.value(y.id)), {1, 2, 3, 4, 5, 6});
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {-1, -2, -3, -4, -5, -6});
}

TEMPLATE_TEST_CASE("reshape and flatten carry the batch dim", "[ops][reshape]", float, double) {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 2, 3});
  Var f = flatten(x);
  CHECK(f.shape() == Shape{kBatch, 6});
  Var back = reshape(f, Shape{kBatch, 3, 2});
  CHECK(back.shape() == Shape{kBatch, 3, 2});
  Executor<TestType> ex(g);
  ex.set_batch(2);
  fill(ex.input(x.id), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  ex.forward();
  check_near(values(ex.value(f.id)), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  check_near(values(ex.value(back.id)), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  REQUIRE(ex.value(back.id).shape()[0] == 2);
  REQUIRE(ex.value(back.id).shape()[1] == 3);
}

TEST_CASE("reshape shape rule", "[ops][reshape]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 2, 3});
  Var p = param(g, "p", Shape{4, 3}, Init::zeros());
  CHECK_THROWS_WITH(reshape(x, Shape{kBatch, 5}, "rs"),
                    Contains("'rs'") && Contains("per-row element counts differ") && Contains("6") && Contains("5"));
  CHECK_THROWS_WITH(reshape(p, Shape{5, 2}), Contains("element counts differ") && Contains("12"));
  CHECK_THROWS_WITH(reshape(x, Shape{2, 6}), Contains("input has the batch dim"));
  CHECK_THROWS_WITH(reshape(p, Shape{kBatch, 12}), Contains("has the batch dim but the input has not"));
  CHECK_THROWS_WITH(reshape(x, Shape{6, kBatch}), Contains("must be positive"));
  CHECK_THROWS_WITH(reshape(p, Shape{0, 12}), Contains("must be positive"));
  CHECK_THROWS_WITH(g.add_op("reshape", {p.id}), Contains("missing ints attribute 'shape'"));
  CHECK(reshape(p, Shape{12}).shape() == Shape{12});
  CHECK(reshape(p, Shape{2, 2, 3}).shape() == Shape{2, 2, 3});
}
