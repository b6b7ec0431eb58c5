// divide: quotients by hand, clipping to [lo, hi] with zero gradient where clipped, negative divisors, the
// guard against b = 0, and the lo <= hi rule.
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("divide clips to [lo, hi] and passes no gradient where clipped", "[ops][divide]", float,
                   double) {
  Graph g;
  Var a = param(g, "a", Shape{6}, Init::zeros());
  Var b = param(g, "b", Shape{6}, Init::zeros());
  Var y = divide(a, b, 0.0, 1.0, "pcvr");
  Var loss = sum(y);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  //                        inside  above   below     below(b<0) inside(b<0) above(b=0)
  fill(ex.param(a.id), {1, 3, -1, 0.5, -1, 2});
  fill(ex.param(b.id), {2, 1, 4, -1, -4, 0});
  ex.forward();
  check_near(values(ex.value(y.id)), {0.5, 1, 0, 0, 0.25, 1}, 1e-7);
  ex.backward(loss.id);
  // Inside: da = 1/b, db = -(a/b)/b.
  check_near(values(ex.grad(a.id)), {0.5, 0, 0, 0, -0.25, 0}, 1e-7);
  check_near(values(ex.grad(b.id)), {-0.25, 0, 0, 0, 0.0625, 0}, 1e-7);
}

TEST_CASE("divide by zero is guarded and stays finite", "[ops][divide]") {
  Graph g;
  Var a = param(g, "a", Shape{3}, Init::zeros());
  Var b = param(g, "b", Shape{3}, Init::zeros());
  Var y = divide(a, b, -1e30, 1e30);
  Var loss = sum(y);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {0, 1, 1});
  fill(ex.param(b.id), {0, 0, -0.0});
  REQUIRE_NOTHROW(ex.forward());
  auto v = values(ex.value(y.id));
  CHECK(v[0] == 0.0);
  CHECK(v[1] == Approx(1e12));  // b taken as +1e-12
  CHECK(v[2] == Approx(1e12));  // -0 compares equal to 0: also +1e-12
  ex.backward(loss.id);
  for (double gb : values(ex.grad(b.id))) CHECK(gb == 0.0);  // the guard is flat in b
  for (double ga : values(ex.grad(a.id))) CHECK(std::isfinite(ga));
}

TEST_CASE("divide shape and attribute rules", "[ops][divide]") {
  Graph g;
  Var a = input(g, "a", Shape{kBatch, 1});
  Var b = input(g, "b", Shape{kBatch, 2});
  CHECK_THROWS_WITH(divide(a, b, 0, 1, "div"), Contains("'div'") && Contains("B\u00d71") && Contains("B\u00d72"));
  CHECK_THROWS_AS(divide(a, a, 1, 0, "div"), GraphError);
  CHECK_THROWS_WITH(divide(a, a, 1, 0, "div"), Contains("'div'") && Contains("lo"));
  CHECK(divide(a, a, 0, 1).shape() == Shape{kBatch, 1});
}
