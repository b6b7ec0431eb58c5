// mean: value and gradient by hand, over a batch-carrying tensor.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("mean forward and backward by hand", "[ops][mean]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{2, 2}, Init::zeros());
  Var m = mean(x);
  CHECK(m.shape() == Shape{});
  Var loss = mul(m, m);  // dm = 2m
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2, 3, 6});
  ex.forward();
  CHECK(ex.scalar(m.id) == 3);
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {1.5, 1.5, 1.5, 1.5});
}

TEST_CASE("mean divides by the run-time element count", "[ops][mean]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 2});
  Var m = mean(x);
  Executor<double> ex(g);
  ex.set_batch(3);
  fill(ex.input(x.id), {1, 2, 3, 4, 5, 9});
  ex.forward();
  CHECK(ex.scalar(m.id) == Approx(4.0));
  ex.set_batch(1);
  fill(ex.input(x.id), {1, 2});
  ex.forward();
  CHECK(ex.scalar(m.id) == Approx(1.5));
}
