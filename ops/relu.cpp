// relu: y = max(x, 0), elementwise, any shape.
//   dx = dy · [x > 0]   (the kink at 0 gets gradient 0, as in PyTorch)
#include "ops/elementwise.hpp"

namespace funnel {
namespace {

struct Relu : Elementwise<Relu> {
  const char* name() const override { return "relu"; }
  const char* doc() const override { return "y = max(x, 0), elementwise"; }
  template <class T>
  static T f(T x) { return x < T(0) ? T(0) : x; }  // NaN stays NaN
  // The mask is read from the output (y > 0 exactly when x > 0, NaN included): the next layer's weight gradient has
  // just read y, so it is in cache, while x was last touched in the forward pass.
  template <class T>
  static T df(T, T y, T gy) { return y > T(0) ? gy : T(0); }
};

FUNNEL_REGISTER_OP(Relu);

}  // namespace
}  // namespace funnel

// ONNX: Relu.
FUNNEL_ONNX_LOWERING("relu") { e.node("Relu", {e.in(0)}, {e.out()}); }
