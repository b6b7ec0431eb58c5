// sigmoid: y = 1 / (1 + exp(-x)), elementwise, any shape. Evaluated without overflow from e = exp(−|x|) <= 1:
// y = 1/(1 + e) for x >= 0 and e/(1 + e) for x < 0, so exp never sees a large positive argument.
//   dx = dy · y · (1 − y)   (from the saved output)
#include "ops/op.hpp"

#include <cmath>

namespace funnel {
namespace {

struct Sigmoid : OpT<Sigmoid> {
  const char* name() const override { return "sigmoid"; }
  const char* doc() const override { return "y = 1/(1+exp(-x)), elementwise, overflow-free"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    // One exp of a non-positive argument per element, no branch on the data path: e = exp(−|x|) ∈ (0, 1].
    for (std::size_t i = 0; i < n; ++i) {
      const T e = std::exp(-std::abs(x[i]));
      const T r = T(1) / (T(1) + e);
      y[i] = x[i] >= T(0) ? r : e * r;
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* y = c.out->data();
    const T* gy = c.gout->data();
    T* gx = c.gin[0]->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) gx[i] = gy[i] * y[i] * (T(1) - y[i]);
  }
};

FUNNEL_REGISTER_OP(Sigmoid);

}  // namespace
}  // namespace funnel

// ONNX: Sigmoid.
FUNNEL_ONNX_LOWERING("sigmoid") { e.node("Sigmoid", {e.in(0)}, {e.out()}); }
