// sum: total of a batch-carrying tensor and its broadcast gradient.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("sum forward and backward by hand", "[ops][sum]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{2, 3}, Init::zeros());
  Var s = sum(x);
  CHECK(s.shape() == Shape{});
  Var loss = mul(s, s);  // ds = 2s
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {1, 2, 3, 4, 5, -5});
  ex.forward();
  CHECK(ex.scalar(s.id) == 10);
  ex.backward(loss.id);
  check_near(values(ex.grad(x.id)), {20, 20, 20, 20, 20, 20});
}
