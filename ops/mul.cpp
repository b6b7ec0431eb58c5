// mul: y = a ⊙ b, elementwise, same shapes (the ESMM product node pCTCVR = pCTR × pCVR).
//   da = dy ⊙ b,  db = dy ⊙ a
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Mul : OpT<Mul> {
  const char* name() const override { return "mul"; }
  const char* doc() const override { return "y = a ⊙ b, elementwise, same shapes"; }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0] != in[1]) shape_error(n, in, "operands must have the same shape");
    return in[0];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  }

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
