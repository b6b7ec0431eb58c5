// bce_logits: loss and gradient by hand, agreement with bce(sigmoid(z)), finite at |z| = 1000.
#include <catch2/catch.hpp>

#include <cmath>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

namespace {

// l = bce_logits(z, y) over logits `zs` (a parameter) and labels `ys` (an input), both n×1, filled (not run).
template <class T>
struct BceLogitsRun {
  Graph g;
  Var z, y, l;
  Executor<T> ex;
  BceLogitsRun(std::initializer_list<double> zs, std::initializer_list<double> ys)
      : z(param(g, "z", Shape{static_cast<Dim>(zs.size()), 1}, Init::zeros())),
        y(input(g, "y", Shape{static_cast<Dim>(ys.size()), 1})), l(bce_logits(z, y)), ex(g) {
    ex.set_batch(1);
    fill(ex.param(z.id), zs);
    fill(ex.input(y.id), ys);
  }
};

}  // namespace

TEST_CASE("bce_logits by hand", "[ops][bce_logits]") {
  BceLogitsRun<double> r({0, 2, -3}, {1, 0, 0});
  auto& [g, z, y, l, ex] = r;
  ex.forward();
  // (log 2 + 2 + log(1 + e^-2) + log(1 + e^-3)) / 3
  CHECK(ex.scalar(l.id) == Approx(0.9562208477255534).epsilon(1e-14));
  ex.backward(l.id);
  check_near(values(ex.grad(z.id)), {-0.5 / 3, 0.8807970779778823 / 3, 0.04742587317756678 / 3}, 1e-14);
}

TEST_CASE("bce_logits equals bce of the sigmoid", "[ops][bce_logits]") {
  Graph g;
  Var z = param(g, "z", Shape{4, 1}, Init::zeros());
  Var y = input(g, "y", Shape{4, 1});
  Var a = bce_logits(z, y);
  Var b = bce(sigmoid(z), y);
  Var diff = add(a, scale(b, -1.0));
  Executor<double> ex(g);
  ex.set_batch(1);
  fill(ex.param(z.id), {-4, -0.5, 1, 5});
  fill(ex.input(y.id), {0, 1, 1, 0});
  ex.forward();
  CHECK(ex.scalar(a.id) == Approx(ex.scalar(b.id)).epsilon(1e-12));
  ex.backward(diff.id);
  for (double gz : values(ex.grad(z.id))) CHECK(std::abs(gz) < 1e-12);
}

TEMPLATE_TEST_CASE("bce_logits at large |z| is finite", "[ops][bce_logits]", float, double) {
  BceLogitsRun<TestType> r({1000, -1000, 1000, -1000}, {0, 1, 1, 0});
  auto& [g, z, y, l, ex] = r;
  REQUIRE_NOTHROW(ex.forward());
  CHECK(static_cast<double>(ex.scalar(l.id)) == Approx(500.0));  // two rows cost 1000, two cost ~0
  ex.backward(l.id);
  check_near(values(ex.grad(z.id)), {0.25, -0.25, 0, 0});
}

TEST_CASE("bce_logits shape rule", "[ops][bce_logits]") {
  Graph g;
  Var z = input(g, "z", Shape{kBatch, 1});
  Var y = input(g, "y", Shape{kBatch, 2});
  CHECK_THROWS_WITH(bce_logits(z, y, "l"), Contains("'l'") && Contains("B\u00d71") && Contains("B\u00d72"));
}
