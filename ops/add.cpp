// add: y = a + b, elementwise, same shapes.
//   da = dy,  db = dy
#include <cstring>

#include "ops/elementwise.hpp"

namespace funnel {
namespace {

struct Add : ElementwiseBinary<Add> {
  const char* name() const override { return "add"; }
  const char* doc() const override { return "y = a + b, elementwise, same shapes"; }
  template <class T>
  static T f(T a, T b) { return a + b; }

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
