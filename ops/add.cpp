// add: y = a + b, elementwise, same shapes.
//   da = dy,  db = dy
#include <cstring>

#include "ops/op.hpp"

namespace funnel {
namespace {

// gin[i] = gy (or += when acc[i]).
template <class T>
void pass_through(const Ctx<T>& c, std::size_t i, const T* gy, std::size_t n) {
  T* g = c.gin[i]->data();
  if (c.acc[i])
    for (std::size_t k = 0; k < n; ++k) g[k] += gy[k];
  else
    std::memcpy(g, gy, n * sizeof(T));
}

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
    // Slot 0 completely before slot 1, so add(x, x) accumulates correctly.
    if (c.gin[0]) pass_through(c, 0, gy, n);
    if (c.gin[1]) pass_through(c, 1, gy, n);
  }
};

FUNNEL_REGISTER_OP(Add);

}  // namespace
}  // namespace funnel
