// mul: the ESMM product node by hand, x·x accumulation, shape rule.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("mul forward and backward by hand", "[ops][mul]", float, double) {
  Graph g;
  Var a = param(g, "pctr", Shape{3, 1}, Init::zeros());
  Var b = param(g, "pcvr", Shape{3, 1}, Init::zeros());
  Var y = a * b;
  Var r = input(g, "r", Shape{3, 1});
  Var loss = sum(mul(y, r));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {0.5, 0.25, 1});
  fill(ex.param(b.id), {0.5, 4, -2});
  fill(ex.input(r.id), {1, 2, 3});
  ex.forward();
  check_near(values(ex.value(y.id)), {0.25, 1, -2});
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {0.5, 8, -6});
  check_near(values(ex.grad(b.id)), {0.5, 0.5, 3});
}

TEST_CASE("mul of a node with itself", "[ops][mul]") {
  Graph g;
  Var a = param(g, "a", Shape{2}, Init::zeros());
  Var loss = sum(a * a);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {3, -1});
  ex.forward();
  CHECK(ex.scalar(loss.id) == 10);
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {6, -2});
}

TEST_CASE("mul shape rule", "[ops][mul]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 1});
  Var b = input(g, "b", Shape{kBatch, 2});
  CHECK_THROWS_WITH(mul(a, b, "prod"), Contains("'prod'") && Contains("B\u00d71") && Contains("B\u00d72"));
}
