// tanh: y = tanh(x), elementwise, any shape (std::tanh saturates to ±1 without overflow).
//   dx = dy · (1 − y²)   (from the saved output)
#include <cmath>

#include "ops/elementwise.hpp"

namespace funnel {
namespace {

struct Tanh : Elementwise<Tanh> {
  const char* name() const override { return "tanh"; }
  const char* doc() const override { return "y = tanh(x), elementwise"; }
  template <class T>
  static T f(T x) { return std::tanh(x); }
  template <class T>
  static T df(T, T y, T gy) { return gy * (T(1) - y * y); }
};

FUNNEL_REGISTER_OP(Tanh);

}  // namespace
}  // namespace funnel

// ONNX: Tanh.
FUNNEL_ONNX_LOWERING("tanh") { e.node("Tanh", {e.in(0)}, {e.out()}); }
