// relu: y = max(x, 0), elementwise, any shape.
//   dx = dy · [x > 0]   (the kink at 0 gets gradient 0, as in PyTorch)
#include "core/parallel.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Relu : OpT<Relu> {
  const char* name() const override { return "relu"; }
  const char* doc() const override { return "y = max(x, 0), elementwise"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    parallel_for(static_cast<std::int64_t>(n), kElementGrain, [x, y](std::int64_t b, std::int64_t e) {
      const T* __restrict xs = x + b;
      T* __restrict ys = y + b;
      for (std::int64_t i = 0; i < e - b; ++i) ys[i] = xs[i] < T(0) ? T(0) : xs[i];  // NaN stays NaN
    });
  }

  // The mask is read from the output (y > 0 exactly when x > 0, NaN included): the next layer's weight gradient
  // has just read y, so it is in cache, while x was last touched in the forward pass. Restrict-qualified locals and
  // a select let the loop vectorize (with the pointers read through lambda captures it compiled to a scalar loop
  // with a data-dependent branch: ~4% of an ESMM step at batch 1024).
  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* x = c.out->data();
    const T* gy = c.gout->data();
    T* gx = c.gin[0]->data();
    const std::size_t n = c.out->size();
    parallel_for(static_cast<std::int64_t>(n), kElementGrain, [x, gy, gx](std::int64_t b, std::int64_t e) {
      const T* __restrict xs = x + b;
      const T* __restrict gys = gy + b;
      T* __restrict gxs = gx + b;
      const std::int64_t m = e - b;
      for (std::int64_t i = 0; i < m; ++i) gxs[i] = xs[i] > T(0) ? gys[i] : T(0);
    });
  }
};

FUNNEL_REGISTER_OP(Relu);

}  // namespace
}  // namespace funnel

// ONNX: Relu.
FUNNEL_ONNX_LOWERING("relu") { e.node("Relu", {e.in(0)}, {e.out()}); }
