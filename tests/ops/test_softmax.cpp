// softmax: values by hand, rows sum to 1, large logits stay finite (max shift), the VJP by hand, rank-3 rows,
// and the shape rule.
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("softmax forward and backward by hand", "[ops][softmax]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{2, 3}, Init::zeros());
  Var y = softmax(x);
  Var r = param(g, "r", Shape{2, 3}, Init::zeros());  // upstream gradient dy = r
  Var loss = sum(mul(y, stop_gradient(r)));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(x.id), {0, std::log(2.0), std::log(5.0), 1, 1, 1});
  fill(ex.param(r.id), {1, 0, 0, 0, 2, -1});
  ex.forward();
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;
  check_near(values(ex.value(y.id)), {1.0 / 8, 2.0 / 8, 5.0 / 8, 1.0 / 3, 1.0 / 3, 1.0 / 3}, tol);
  ex.backward(loss.id);
  // dx_j = y_j (r_j − Σ r·y): row 0: Σ = 1/8; row 1: Σ = 1/3.
  const double s0 = 1.0 / 8, s1 = 1.0 / 3;
  check_near(values(ex.grad(x.id)),
             {1.0 / 8 * (1 - s0), 2.0 / 8 * (0 - s0), 5.0 / 8 * (0 - s0), s1 * (0 - s1), s1 * (2 - s1),
              s1 * (-1 - s1)},
             tol);
  // The gradient of each row sums to zero (softmax is invariant to a shift of the row).
  auto gx = values(ex.grad(x.id));
  CHECK(std::abs(gx[0] + gx[1] + gx[2]) < tol);
  CHECK(std::abs(gx[3] + gx[4] + gx[5]) < tol);
}

TEMPLATE_TEST_CASE("softmax of huge logits is finite and exact", "[ops][softmax]", float, double) {
  Graph g;
  Var x = param(g, "x", Shape{1, 3}, Init::zeros());
  Var y = softmax(x);
  Executor<TestType> ex(g);  // a NaN or Inf would throw
  ex.set_batch(1);
  fill(ex.param(x.id), {1000, 1000, -1000});
  REQUIRE_NOTHROW(ex.forward());
  check_near(values(ex.value(y.id)), {0.5, 0.5, 0.0}, 1e-7);
}

TEST_CASE("softmax runs over the last axis of a rank-3 tensor", "[ops][softmax]") {
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 2, 2});
  Var y = softmax(x);
  Executor<double> ex(g);
  ex.set_batch(2);
  fill(ex.input(x.id), {0, 0, 0, std::log(3.0), std::log(4.0), 0, 7, 7});
  ex.forward();
  check_near(values(ex.value(y.id)), {0.5, 0.5, 0.25, 0.75, 0.8, 0.2, 0.5, 0.5}, 1e-14);
}

TEST_CASE("softmax shape rule", "[ops][softmax]") {
  Graph g;
  Var v = param(g, "v", Shape{4}, Init::zeros());
  CHECK_THROWS_WITH(softmax(v, "gate"), Contains("'gate'") && Contains("rank"));
  Var x = input(g, "x", Shape{kBatch, 5});
  CHECK(softmax(x).shape() == Shape{kBatch, 5});
}
