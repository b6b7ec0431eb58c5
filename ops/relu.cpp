// relu: y = max(x, 0), elementwise, any shape.
//   dx = dy · [x > 0]   (the kink at 0 gets gradient 0, as in PyTorch)
#include "autodiff/gradcheck.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Relu : OpT<Relu> {
  const char* name() const override { return "relu"; }
  const char* doc() const override { return "y = max(x, 0), elementwise"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];  // NaN stays NaN
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const T* gy = c.gout->data();
    T* gx = c.gin[0]->data();
    const std::size_t n = c.out->size();
    if (c.acc[0])
      for (std::size_t i = 0; i < n; ++i) gx[i] += x[i] > T(0) ? gy[i] : T(0);
    else
      for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > T(0) ? gy[i] : T(0);
  }
};

FUNNEL_REGISTER_OP(Relu);

const OpExampleRegistrar example{{"relu", "B=3, B×5 (kinks skipped by the checker)", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 5}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("relu", {x}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
