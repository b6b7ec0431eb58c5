// sum: y = Σ x over every element (a scalar).
//   dx = dy (broadcast)
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Sum : OpT<Sum> {
  const char* name() const override { return "sum"; }
  const char* doc() const override { return "y = Σ x over all elements -> scalar"; }
  int arity() const override { return 1; }

  Shape infer(const Node&, const std::vector<Shape>&) const override { return Shape{}; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const std::size_t n = c.x(0).size();
    T s = T(0);
    for (std::size_t i = 0; i < n; ++i) s += x[i];
    c.out->data()[0] = s;
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T gy = c.gout->data()[0];
    const std::size_t n = c.x(0).size();
    for (std::size_t i = 0; i < n; ++i) c.put(0, i, gy);
  }
};

FUNNEL_REGISTER_OP(Sum);

}  // namespace
}  // namespace funnel
