// tanh: y = tanh(x), elementwise, any shape (std::tanh saturates to ±1 without overflow).
//   dx = dy · (1 − y²)   (from the saved output)
#include <cmath>

#include "autodiff/gradcheck.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Tanh : OpT<Tanh> {
  const char* name() const override { return "tanh"; }
  const char* doc() const override { return "y = tanh(x), elementwise"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* y = c.out->data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) c.put(0, i, gy[i] * (T(1) - y[i] * y[i]));
  }
};

FUNNEL_REGISTER_OP(Tanh);

const OpExampleRegistrar example{{"tanh", "B=3, B×5, x ~ N(0, 2²)", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 5}, Init::normal(2.0));
                                    return probe_loss(g, g.add_op("tanh", {x}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
