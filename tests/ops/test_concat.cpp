// concat: joining along axis 1 and an inner axis, gradients routed back to their slices, shape-rule errors.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("concat along axis 1 by hand", "[ops][concat]", float, double) {
  Graph g;
  Var a = param(g, "a", Shape{2, 2}, Init::zeros());
  Var b = param(g, "b", Shape{2, 1}, Init::zeros());
  Var y = concat({a, b});
  CHECK(y.shape() == Shape{2, 3});
  Var r = input(g, "r", Shape{2, 3});
  Var loss = sum(mul(y, r));  // dy = r
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {1, 2, 3, 4});
  fill(ex.param(b.id), {5, 6});
  fill(ex.input(r.id), {10, 20, 30, 40, 50, 60});
  ex.forward();
  check_near(values(ex.value(y.id)), {1, 2, 5, 3, 4, 6});
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {10, 20, 40, 50});
  check_near(values(ex.grad(b.id)), {30, 60});
}

TEST_CASE("concat of batch inputs along an inner axis, one node twice", "[ops][concat]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 1, 2});
  Var b = input(g, "b", Shape{kBatch, 2, 2});
  Var y = concat({a, b, a}, 1);
  CHECK(y.shape() == Shape{kBatch, 4, 2});
  Var yl = concat({a, b}, -2);  // -2 is axis 1 for rank 3
  CHECK(yl.shape() == Shape{kBatch, 3, 2});
  Executor<double> ex(g);
  ex.set_batch(2);
  fill(ex.input(a.id), {1, 2, 3, 4});
  fill(ex.input(b.id), {10, 11, 12, 13, 20, 21, 22, 23});
  ex.forward();
  check_near(values(ex.value(y.id)), {1, 2, 10, 11, 12, 13, 1, 2, 3, 4, 20, 21, 22, 23, 3, 4});

  // Gradient when one parameter fills two slots: both slices add up.
  Graph h;
  Var p = param(h, "p", Shape{1, 2}, Init::zeros());
  Var q = param(h, "q", Shape{1, 1}, Init::zeros());
  Var z = concat({p, q, p});
  Var r = input(h, "r", Shape{1, 5});
  Var loss = sum(mul(z, r));
  Executor<double> ez(h);
  ez.set_batch(1);
  fill(ez.param(p.id), {1, 2});
  fill(ez.param(q.id), {3});
  fill(ez.input(r.id), {1, 2, 3, 4, 5});
  ez.forward();
  check_near(values(ez.value(z.id)), {1, 2, 3, 1, 2});
  ez.backward(loss.id);
  check_near(values(ez.grad(p.id)), {1 + 4, 2 + 5});
  check_near(values(ez.grad(q.id)), {3});
}

TEST_CASE("concat shape rule", "[ops][concat]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 2});
  Var b = input(g, "b", Shape{kBatch, 3});
  Var c3 = input(g, "c3", Shape{kBatch, 2, 3});
  Var fixed = input(g, "fixed", Shape{4, 3});
  Var v = input(g, "v", Shape{3});
  CHECK(concat({a, b}).shape() == Shape{kBatch, 5});
  CHECK(concat({a}).shape() == Shape{kBatch, 2});
  CHECK_THROWS_WITH(concat({a, c3}, 1, "cat"), Contains("'cat'") && Contains("rank"));
  CHECK_THROWS_WITH(concat({a, fixed}, 1, "cat"), Contains("'cat'") && Contains("B\u00d72") && Contains("4\u00d73"));
  CHECK_THROWS_WITH(concat({a, b}, 0), Contains("batch"));
  CHECK_THROWS_WITH(concat({a, b}, 2), Contains("out of range"));
  CHECK_THROWS_WITH(concat({a, b}, -3), Contains("out of range"));
  CHECK_THROWS_WITH(concat({v, v}), Contains("rank >= 2"));
  // Other dims must agree: B×2×3 with B×2×4 along axis 1 fails, along axis 2 works.
  Var c4 = input(g, "c4", Shape{kBatch, 2, 4});
  CHECK_THROWS_WITH(concat({c3, c4}, 1), Contains("dimension 2"));
  CHECK(concat({c3, c4}, 2).shape() == Shape{kBatch, 2, 7});
}
