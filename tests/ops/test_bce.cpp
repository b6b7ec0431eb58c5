// bce: mean and weighted-mean cross-entropy by hand, gradients, p = 0 and p = 1 stay finite (clamped, zero
// gradient), labels and weights get no gradient, the 2-or-3-input rule.
#include <catch2/catch.hpp>

#include <cmath>
#include <type_traits>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEST_CASE("bce mean by hand", "[ops][bce]") {
  Graph g;
  Var p = param(g, "p", Shape{3, 1}, Init::zeros());
  Var y = param(g, "y", Shape{3, 1}, Init::zeros());  // a parameter only to show it gets no gradient
  Var l = bce(p, y, "loss");
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(p.id), {0.9, 0.2, 0.6});
  fill(ex.param(y.id), {1, 0, 1});
  ex.forward();
  // (-log 0.9 - log 0.8 - log 0.6) / 3
  CHECK(ex.scalar(l.id) == Approx(0.2797765635793423).epsilon(1e-14));
  ex.backward(l.id);
  // (p - y) / (p (1 - p)) / 3
  check_near(values(ex.grad(p.id)), {-0.1 / 0.09 / 3, 0.2 / 0.16 / 3, -0.4 / 0.24 / 3}, 1e-14);
  check_near(values(ex.grad(y.id)), {0, 0, 0});
}

TEMPLATE_TEST_CASE("bce weighted mean by hand", "[ops][bce]", float, double) {
  Graph g;
  Var p = param(g, "p", Shape{3, 1}, Init::zeros());
  Var y = input(g, "y", Shape{3, 1});
  Var w = input(g, "w", Shape{3, 1});
  Var l = bce(p, y, w);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(p.id), {0.9, 0.2, 0.6});
  fill(ex.input(y.id), {1, 0, 1});
  fill(ex.input(w.id), {1, 0, 3});
  ex.forward();
  const double want = (-std::log(0.9) - 3 * std::log(0.6)) / 4;
  CHECK(static_cast<double>(ex.scalar(l.id)) == Approx(want).epsilon(1e-6));
  ex.backward(l.id);
  check_near(values(ex.grad(p.id)), {-0.1 / 0.09 / 4, 0, 3 * -0.4 / 0.24 / 4}, 1e-6);

  // No weight at all: loss and gradient 0.
  fill(ex.input(w.id), {0, 0, 0});
  ex.forward();
  CHECK(ex.scalar(l.id) == 0);
  ex.backward(l.id);
  check_near(values(ex.grad(p.id)), {0, 0, 0});
}

TEMPLATE_TEST_CASE("bce at p = 0 and p = 1 is finite and clamped", "[ops][bce]", float, double) {
  Graph g;
  Var p = param(g, "p", Shape{4, 1}, Init::zeros());
  Var y = input(g, "y", Shape{4, 1});
  Var l = bce(p, y);
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(p.id), {0, 1, 0, 1});
  fill(ex.input(y.id), {1, 0, 0, 1});
  REQUIRE_NOTHROW(ex.forward());
  // The clamp bounds as the op sees them in TestType: eps = 1e-7 (float) or 1e-12 (double).
  const auto lo = static_cast<double>(static_cast<TestType>(std::is_same_v<TestType, float> ? 1e-7 : 1e-12));
  const auto hi = static_cast<double>(TestType(1) - static_cast<TestType>(lo));
  // Two maximally wrong rows cost about -log(eps) each, two right rows about eps each.
  const double want = (-std::log(lo) - std::log1p(-hi) - std::log1p(-lo) - std::log(hi)) / 4;
  const double loss = static_cast<double>(ex.scalar(l.id));
  CHECK(std::isfinite(loss));
  CHECK(loss == Approx(want).epsilon(1e-5));
  CHECK(loss > 7.0);  // -log(1e-7)/2 ≈ 8.06 (float), -log(1e-12)/2 ≈ 13.8 (double)
  ex.backward(l.id);
  for (double gp : values(ex.grad(p.id))) CHECK(gp == 0.0);
}

TEST_CASE("bce input rules", "[ops][bce]") {
  Graph g;
  Var p = input(g, "p", Shape{kBatch, 1});
  Var y = input(g, "y", Shape{kBatch, 1});
  Var y2 = input(g, "y2", Shape{kBatch, 2});
  CHECK(bce(p, y).shape() == Shape{});
  CHECK(bce(p, y, y).shape() == Shape{});
  CHECK_THROWS_WITH(bce(p, y2, "l"), Contains("'l'") && Contains("labels") && Contains("B\u00d72"));
  CHECK_THROWS_WITH(bce(p, y, y2, "l"), Contains("weights") && Contains("B\u00d72"));
  CHECK_THROWS_WITH(g.add_op("bce", {p.id}), Contains("expects 2 inputs (p, y) or 3"));
  CHECK_THROWS_WITH(g.add_op("bce", {p.id, y.id, y.id, y.id}), Contains("got 4"));
}
