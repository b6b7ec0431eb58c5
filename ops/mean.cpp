// mean: y = (1/n) Σ x over every element (a scalar), n = number of elements at run time.
//   dx = dy / n (broadcast)
// The sum is accumulated in double, also for float tensors.
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Mean : OpT<Mean> {
  const char* name() const override { return "mean"; }
  const char* doc() const override { return "y = mean of all elements -> scalar"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>&) const override { return Shape{}; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const std::size_t n = c.x(0).size();
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]);
    c.out->data()[0] = n ? static_cast<T>(s / static_cast<double>(n)) : T(0);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const std::size_t n = c.x(0).size();
    if (n == 0) return;
    const T g = c.gout->data()[0] / static_cast<T>(n);
    T* gx = c.gin[0]->data();
    for (std::size_t i = 0; i < n; ++i) gx[i] = g;
  }
};

FUNNEL_REGISTER_OP(Mean);

}  // namespace
}  // namespace funnel
