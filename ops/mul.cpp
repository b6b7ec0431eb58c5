// mul: y = a ⊙ b, elementwise, same shapes (the ESMM product node pCTCVR = pCTR × pCVR).
//   da = dy ⊙ b,  db = dy ⊙ a
#include "ops/elementwise.hpp"

namespace funnel {
namespace {

struct Mul : ElementwiseBinary<Mul> {
  const char* name() const override { return "mul"; }
  const char* doc() const override { return "y = a ⊙ b, elementwise, same shapes"; }
  template <class T>
  static T f(T a, T b) { return a * b; }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      if (c.gin[0]) c.put(0, i, gy[i] * b[i]);
      if (c.gin[1]) c.put(1, i, gy[i] * a[i]);
    }
  }
};

FUNNEL_REGISTER_OP(Mul);

}  // namespace
}  // namespace funnel

// ONNX: Mul.
FUNNEL_ONNX_LOWERING("mul") { e.node("Mul", {e.in(0), e.in(1)}, {e.out()}); }
