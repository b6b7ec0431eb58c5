// shift: y = x + c, elementwise, any shape; c is the number attribute "c" (default 0). With scale (w = −1) it
// makes 1 − x, e.g. the non-click indicator 1 − o and the non-click propensity 1 − pCTR of DCMT.
//   dx = dy
#include "autodiff/gradcheck.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Shift : OpT<Shift> {
  const char* name() const override { return "shift"; }
  const char* doc() const override { return "y = x + c, attribute c (a number)"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T k = static_cast<T>(c.attrs().get_num("c", 0.0));
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

// Squared afterwards, so the gradient depends on the shifted value (a wrong forward shows up in dL/dx).
const OpExampleRegistrar example{{"shift", "B=3, B×4 plus 1.5, squared", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    Attrs at;
                                    at.num["c"] = 1.5;
                                    NodeId y = g.add_op("shift", {x}, at);
                                    return probe_loss(g, g.add_op("mul", {y, y}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
