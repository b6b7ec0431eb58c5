// tanh: y = tanh(x), elementwise, any shape (std::tanh saturates to ±1 without overflow).
//   dx = dy · (1 − y²)   (from the saved output)
#include <cmath>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct Tanh : OpT<Tanh> {
  const char* name() const override { return "tanh"; }
  const char* doc() const override { return "y = tanh(x), elementwise"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* y = c.out->data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) c.put(0, i, gy[i] * (T(1) - y[i] * y[i]));
  }
};

FUNNEL_REGISTER_OP(Tanh);

}  // namespace
}  // namespace funnel

// ONNX: Tanh.
FUNNEL_ONNX_LOWERING("tanh") { e.node("Tanh", {e.in(0)}, {e.out()}); }
