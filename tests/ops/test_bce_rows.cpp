// bce_rows: per-row losses by hand (no reduction), its mean equals `bce`, the VJP for p and for soft labels,
// clamping keeps p = 0 and p = 1 finite, and the shape rule.
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("bce_rows forward and backward by hand", "[ops][bce_rows]", float, double) {
  Graph g;
  Var p = param(g, "p", Shape{3, 1}, Init::zeros());
  Var y = param(g, "y", Shape{3, 1}, Init::zeros());  // soft labels, trainable
  Var l = bce_rows(p, y);
  Var loss = sum(l);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(p.id), {0.25, 0.5, 0.9});
  fill(ex.param(y.id), {1, 0, 0.3});
  ex.forward();
  const double tol = std::is_same_v<TestType, float> ? 1e-6 : 1e-14;
  check_near(values(ex.value(l.id)),
             {-std::log(0.25), -std::log(0.5), -(0.3 * std::log(0.9) + 0.7 * std::log(0.1))}, tol);
  ex.backward(loss.id);
  check_near(values(ex.grad(p.id)), {(0.25 - 1) / (0.25 * 0.75), 0.5 / 0.25, (0.9 - 0.3) / (0.9 * 0.1)}, 10 * tol);
  check_near(values(ex.grad(y.id)), {std::log(0.75 / 0.25), 0.0, std::log(0.1 / 0.9)}, 10 * tol);
}

TEST_CASE("the mean of bce_rows is bce", "[ops][bce_rows]") {
  Graph g;
  Var p = input(g, "p", Shape{kBatch, 1});
  Var y = input(g, "y", Shape{kBatch, 1});
  Var a = mean(bce_rows(p, y));
  Var b = bce(p, y);
  Executor<double> ex(g);
  ex.set_batch(4);
  fill(ex.input(p.id), {0.1, 0.7, 0.02, 0.5});
  fill(ex.input(y.id), {0, 1, 1, 0});
  ex.forward();
  CHECK(ex.scalar(a.id) == Approx(ex.scalar(b.id)).epsilon(1e-14));
}

TEMPLATE_TEST_CASE("bce_rows is finite at p = 0 and p = 1 and passes no gradient there", "[ops][bce_rows]", float,
                   double) {
  Graph g;
  Var p = param(g, "p", Shape{2, 1}, Init::zeros());
  Var y = input(g, "y", Shape{2, 1});
  Var l = bce_rows(p, y);
  Var loss = sum(l);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(p.id), {0, 1});
  fill(ex.input(y.id), {1, 0});
  REQUIRE_NOTHROW(ex.forward());
  for (double v : values(ex.value(l.id))) CHECK((std::isfinite(v) && v > 10));
  ex.backward(loss.id);
  check_near(values(ex.grad(p.id)), {0, 0});
}

TEST_CASE("bce_rows shape rule", "[ops][bce_rows]") {
  Graph g;
  Var p = input(g, "p", Shape{kBatch, 1});
  Var y = input(g, "y", Shape{kBatch, 2});
  CHECK_THROWS_WITH(bce_rows(p, y, "err"), Contains("'err'") && Contains("B\u00d71") && Contains("B\u00d72"));
  CHECK(bce_rows(p, p).shape() == Shape{kBatch, 1});
}
