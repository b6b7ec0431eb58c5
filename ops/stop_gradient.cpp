// stop_gradient: y = x in the forward pass, and no gradient flows back to x (PyTorch's detach, TF's
// stop_gradient). ESCM²'s inverse-propensity weight 1/clip(pCTR) uses it: the weight must not train the CTR
// tower. Any shape.
//   dx = 0: the input slot is not differentiable, so the executor never asks for its gradient and the gradient-
//   flow analysis (`funnel dot --grad-flow`) shows the edge as carrying none.
// The backward pass then differentiates a surrogate in which the output is a constant; gradient checks hold the
// outputs of such ops fixed at the point of the check (autodiff/surrogate.hpp), so x·stop_gradient(x) checks
// dL/dx = stop_gradient(x)·dL/dy, not twice that.
#include <cstring>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct StopGradient : OpT<StopGradient> {
  const char* name() const override { return "stop_gradient"; }
  const char* doc() const override { return "y = x, no gradient to x (detach)"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check
  bool differentiable(std::size_t) const override { return false; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    std::memcpy(c.out->data(), c.x(0).data(), c.out->size() * sizeof(T));
  }

  template <class T>
  static void bwd(Ctx<T>&) {}  // never called: no input slot is differentiable
};

FUNNEL_REGISTER_OP(StopGradient);

}  // namespace
}  // namespace funnel

// ONNX: Identity (inference has no gradient to stop).
FUNNEL_ONNX_LOWERING("stop_gradient") { e.node("Identity", {e.in(0)}, {e.out()}); }
