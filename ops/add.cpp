// add: y = a + b, elementwise, same shapes.
//   da = dy,  db = dy
#include <cstring>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct Add : OpT<Add> {
  const char* name() const override { return "add"; }
  const char* doc() const override { return "y = a + b, elementwise, same shapes"; }
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
    for (std::size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < 2; ++i)
      if (c.gin[i]) std::memcpy(c.gin[i]->data(), gy, n * sizeof(T));
  }
};

FUNNEL_REGISTER_OP(Add);

}  // namespace
}  // namespace funnel

// ONNX: Add.
FUNNEL_ONNX_LOWERING("add") { e.node("Add", {e.in(0), e.in(1)}, {e.out()}); }
