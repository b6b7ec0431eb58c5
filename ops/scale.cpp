// scale: y = w · x, elementwise, any shape; w is the number attribute "w" (default 1). Weights losses.
//   dx = w · dy
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Scale : OpT<Scale> {
  const char* name() const override { return "scale"; }
  const char* doc() const override { return "y = w·x, attribute w (a number)"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }
  struct Params {
    double w;
  };
  static Params parse(const Node& n) { return {n.attrs.get_num("w", 1.0)}; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T w = static_cast<T>(c.template params<Params>().w);
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = w * x[i];
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T w = static_cast<T>(c.template params<Params>().w);
    const T* gy = c.gout->data();
    T* gx = c.gin[0]->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) gx[i] = w * gy[i];
  }
};

FUNNEL_REGISTER_OP(Scale);

}  // namespace
}  // namespace funnel

// ONNX: Mul by the constant w.
FUNNEL_ONNX_LOWERING("scale") {
  e.node("Mul", {e.in(0), e.constant({static_cast<float>(n.attrs.get_num("w", 1.0))}, {})}, {e.out()});
}
