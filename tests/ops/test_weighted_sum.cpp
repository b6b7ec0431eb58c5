// weighted_sum: the gate-weighted sum of experts by hand, its VJP for weights and values, a softmax gate
// whose weights sum to one keeps a common expert unchanged, and the shape rule.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

TEMPLATE_TEST_CASE("weighted_sum forward and backward by hand", "[ops][weighted_sum]", float, double) {
  Graph g;
  Var w = param(g, "w", Shape{2, 3}, Init::zeros());
  Var x = param(g, "x", Shape{2, 3, 2}, Init::zeros());
  Var r = input(g, "r", Shape{2, 2});  // dy
  Var y = weighted_sum(w, x);
  Var loss = sum(mul(y, stop_gradient(r)));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(w.id), {0.5, 0.25, 0.25, 1, 0, -1});
  fill(ex.param(x.id), {2, 4, 8, 0, 0, 4, 1, 1, 9, 9, 3, 5});
  fill(ex.input(r.id), {1, -1, 2, 3});
  ex.forward();
  check_near(values(ex.value(y.id)), {3, 3, -2, -4});
  ex.backward(loss.id);
  // dw[b, e] = ⟨r[b], x[b, e]⟩; dx[b, e, :] = w[b, e]·r[b]
  check_near(values(ex.grad(w.id)), {-2, 8, -4, 5, 45, 21});
  check_near(values(ex.grad(x.id)), {0.5, -0.5, 0.25, -0.25, 0.25, -0.25, 2, 3, 0, 0, -2, -3});
}

TEST_CASE("a softmax gate over identical experts returns the expert", "[ops][weighted_sum]") {
  Graph g;
  Var z = input(g, "z", Shape{kBatch, 4});
  Var e = input(g, "e", Shape{kBatch, 1, 3});
  Var x = concat({e, e, e, e}, 1);
  Var y = weighted_sum(softmax(z), x);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.input(z.id), {3, -1, 0.5, 7});
  fill(ex.input(e.id), {1.5, -2, 0.25});
  ex.forward();
  check_near(values(ex.value(y.id)), {1.5, -2, 0.25}, 1e-14);
}

TEST_CASE("weighted_sum shape rule", "[ops][weighted_sum]") {
  Graph g;
  Var w = input(g, "w", Shape{kBatch, 3});
  Var x = input(g, "x", Shape{kBatch, 4, 8});
  CHECK_THROWS_WITH(weighted_sum(w, x, "mix"), Contains("'mix'") && Contains("B\u00d73") && Contains("B\u00d74\u00d78"));
  Var x2 = input(g, "x2", Shape{kBatch, 3});
  CHECK_THROWS_WITH(weighted_sum(w, x2, "mix2"), Contains("'mix2'") && Contains("B\u00d7E\u00d7d"));
  Var x3 = input(g, "x3", Shape{kBatch, 3, 8});
  CHECK(weighted_sum(w, x3).shape() == Shape{kBatch, 8});
}
