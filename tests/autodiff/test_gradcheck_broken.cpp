// The gradient checker must be able to fail: an op with a deliberately wrong VJP (y = 2x whose backward forgets the
// factor 2) is reported as failing, while the same op with the right VJP passes.
//
// The ops are registered inside the test cases (CTest runs each case in its own process), and the examples are
// passed to check_op_example directly rather than registered, so other tests iterating the registries never see
// them.
#include <catch2/catch.hpp>

#include "autodiff/gradcheck.hpp"
#include "ops/op.hpp"

using namespace funnel;

namespace {

template <bool Broken>
struct Double : OpT<Double<Broken>> {
  const char* name() const override { return Broken ? "test_double_broken" : "test_double_good"; }
  const char* doc() const override { return "y = 2x (test op)"; }
  int arity() const override { return 1; }
  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    for (std::size_t i = 0; i < c.out->size(); ++i) y[i] = T(2) * x[i];
  }
  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* gy = c.gout->data();
    const T factor = Broken ? T(1) : T(2);  // the bug: dy/dx is 2, not 1
    for (std::size_t i = 0; i < c.out->size(); ++i) c.put(0, i, factor * gy[i]);
  }
};

template <bool Broken>
OpExample example() {
  static const Double<Broken> op;
  if (!find_op(op.name())) register_op(&op);
  return OpExample{op.name(), "B=3, B×4", 3,
                   [](Graph& g) {
                     NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                     return probe_loss(g, g.add_op(Broken ? "test_double_broken" : "test_double_good", {x}));
                   },
                   nullptr};
}

}  // namespace

TEST_CASE("gradcheck reports a wrong VJP as a failure", "[autodiff][gradcheck]") {
  GradCheckOptions opt;
  opt.seed = 4;
  GradCheckResult res = check_op_example(example<true>(), opt);
  REQUIRE(res.rows.size() == 1);
  const GradCheckRow& r = res.rows[0];
  CHECK(r.param == "x");
  CHECK_FALSE(r.pass);
  CHECK(r.checked == 12);
  CHECK(r.skipped == 0);
  // Analytic = numeric / 2 everywhere: relative error 0.5.
  CHECK(r.max_rel == Approx(0.5).epsilon(1e-4));
  CHECK_FALSE(r.worst.empty());
  CHECK_FALSE(res.pass());
  CHECK(res.repeat_identical);  // deterministic, just wrong
}

TEST_CASE("gradcheck passes the same op with the right VJP", "[autodiff][gradcheck]") {
  GradCheckOptions opt;
  opt.seed = 4;
  GradCheckResult res = check_op_example(example<false>(), opt);
  REQUIRE(res.rows.size() == 1);
  CHECK(res.rows[0].pass);
  CHECK(res.rows[0].max_rel < 1e-6);
  CHECK(res.pass());
}
