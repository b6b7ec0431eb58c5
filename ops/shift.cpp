// shift: y = x + c, elementwise, any shape; c is the number attribute "c" (default 0). With scale (w = −1) it
// makes 1 − x, e.g. the non-click indicator 1 − o and the non-click propensity 1 − pCTR of DCMT.
//   dx = dy
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Shift : OpT<Shift> {
  const char* name() const override { return "shift"; }
  const char* doc() const override { return "y = x + c, attribute c (a number)"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }
  struct Params {
    double c;
  };
  static Params parse(const Node& n) { return {n.attrs.get_num("c", 0.0)}; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T k = static_cast<T>(c.template params<Params>().c);
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] + k;
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) c.put(0, i, gy[i]);
  }
};

FUNNEL_REGISTER_OP(Shift);

}  // namespace
}  // namespace funnel

// ONNX: Add the constant c.
FUNNEL_ONNX_LOWERING("shift") {
  e.node("Add", {e.in(0), e.constant({static_cast<float>(n.attrs.get_num("c", 0.0))}, {})}, {e.out()});
}
