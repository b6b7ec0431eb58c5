// stop_gradient: the value passes unchanged, no gradient reaches what is behind it (while the same parameter
// still gets its gradient through other paths), and the gradient-flow analysis sees the edge as carrying none.
#include <catch2/catch.hpp>

#include "autodiff/executor.hpp"
#include "autodiff/gradflow.hpp"
#include "core/dsl.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;

TEMPLATE_TEST_CASE("stop_gradient copies forward and blocks backward", "[ops][stop_gradient]", float, double) {
  Graph g;
  Var a = param(g, "a", Shape{3}, Init::zeros());
  Var b = param(g, "b", Shape{3}, Init::zeros());
  Var s = stop_gradient(a);
  // L = Σ sg(a)·b + Σ a: dL/da = 1 (only the direct path), dL/db = a.
  Var loss = add(sum(mul(s, b)), sum(a));
  Executor<TestType> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {1.5, -2, 0.25});
  fill(ex.param(b.id), {4, 5, 6});
  ex.forward();
  check_near(values(ex.value(s.id)), {1.5, -2, 0.25});
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {1, 1, 1});
  check_near(values(ex.grad(b.id)), {1.5, -2, 0.25});
}

TEST_CASE("a parameter only behind stop_gradient gets a zero gradient", "[ops][stop_gradient]") {
  Graph g;
  Var a = param(g, "a", Shape{2}, Init::zeros());
  Var b = param(g, "b", Shape{2}, Init::zeros());
  Var loss = sum(mul(stop_gradient(a), b));
  g.mark_loss(loss.id);
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(a.id), {3, 4});
  fill(ex.param(b.id), {1, 1});
  ex.forward();
  ex.backward(loss.id);
  check_near(values(ex.grad(a.id)), {0, 0});
  check_near(values(ex.grad(b.id)), {3, 4});
  GradFlow gf = structural_grad_flow(g);
  CHECK_FALSE(gf.at(a.id, loss.id).structural);
  CHECK(gf.at(b.id, loss.id).structural);
}
