// stop_gradient: y = x in the forward pass, and no gradient flows back to x (PyTorch's detach, TF's
// stop_gradient). ESCM²'s inverse-propensity weight 1/clip(pCTR) uses it: the weight must not train the CTR
// tower. Any shape.
//   dx = 0: the input slot is not differentiable, so the executor never asks for its gradient and the gradient-
//   flow analysis (`funnel dot --grad-flow`) shows the edge as carrying none.
// The backward pass then differentiates a surrogate in which the output is a constant; gradient checks hold the
// outputs of such ops fixed at the point of the check (autodiff/surrogate.hpp), so x·stop_gradient(x) checks
// dL/dx = stop_gradient(x)·dL/dy, not twice that.
#include <cstring>

#include "autodiff/gradcheck.hpp"
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

// y = stop_gradient(c) ⊙ x with c fed: dL/dx = c ⊙ R checks that the forward copies c exactly.
const OpExampleRegistrar example{{"stop_gradient", "B=3, stop_gradient(c) ⊙ x, c fed, x trainable", 3,
                                  [](Graph& g) {
                                    NodeId c = g.add_input("c", Shape{3, 4});
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    NodeId s = g.add_op("stop_gradient", {c});
                                    return probe_loss(g, g.add_op("mul", {s, x}));
                                  }, nullptr}};

// y = stop_gradient(a) ⊙ a: the gradient through the stopped slot must be zero (the other slot's alone).
const OpExampleRegistrar example_self{{"stop_gradient", "B=3, stop_gradient(a) ⊙ a, a trainable", 3,
                                       [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{3, 4}, Init::normal(1.0));
                                         NodeId s = g.add_op("stop_gradient", {a});
                                         return probe_loss(g, g.add_op("mul", {s, a}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
