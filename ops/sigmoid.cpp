// sigmoid: y = 1 / (1 + exp(-x)), elementwise, any shape. Evaluated without overflow from e = exp(−|x|) <= 1:
// y = 1/(1 + e) for x >= 0 and e/(1 + e) for x < 0, so exp never sees a large positive argument.
//   dx = dy · y · (1 − y)   (from the saved output)
#include "ops/elementwise.hpp"

#include <cmath>

namespace funnel {
namespace {

struct Sigmoid : Elementwise<Sigmoid> {
  const char* name() const override { return "sigmoid"; }
  const char* doc() const override { return "y = 1/(1+exp(-x)), elementwise, overflow-free"; }
  // One exp of a non-positive argument per element, no branch on the data path: e = exp(−|x|) ∈ (0, 1].
  template <class T>
  static T f(T x) {
    const T e = std::exp(-std::abs(x));
    const T r = T(1) / (T(1) + e);
    return x >= T(0) ? r : e * r;
  }
  template <class T>
  static T df(T, T y, T gy) { return gy * y * (T(1) - y); }
};

FUNNEL_REGISTER_OP(Sigmoid);

}  // namespace
}  // namespace funnel

// ONNX: Sigmoid.
FUNNEL_ONNX_LOWERING("sigmoid") { e.node("Sigmoid", {e.in(0)}, {e.out()}); }
