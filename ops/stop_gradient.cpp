// stop_gradient: y = x in the forward pass, and no gradient flows back to x (PyTorch's detach, TF's
// stop_gradient). ESCM²'s inverse-propensity weight 1/clip(pCTR) uses it: the weight must not train the CTR
// tower. Any shape.
//   dx = 0: the input slot is not differentiable, so the executor never asks for its gradient and the gradient-
//   flow analysis (`funnel dot --grad-flow`) shows the edge as carrying none.
// A finite-difference check cannot confirm a zero VJP (the function's true derivative through x is not zero),
// so the gradient-check example runs a fed input through the op and checks a parameter beside it; the test file
// checks that no gradient reaches a parameter behind it.
#include <cstring>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct StopGradient : OpT<StopGradient> {
  const char* name() const override { return "stop_gradient"; }
  const char* doc() const override { return "y = x, no gradient to x (detach)"; }
  int arity() const override { return 1; }
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
