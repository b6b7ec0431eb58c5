// dot: the dot product of a and b over their last axis, batched over every leading axis. a and b have the same
// shape, rank >= 2. A rank-3 B×E×d pair gives B×E (one score per row and slot: AITM's ⟨h1(u), h2(u)⟩ for every
// candidate u); a rank-2 B×d pair gives a B×1 column (the trailing 1 is kept so it fits the B×1 heads).
//   y[r] = Σ_j a[r, j] · b[r, j]      (r runs over the leading axes)
//   da[r, j] = dy[r] · b[r, j],  db[r, j] = dy[r] · a[r, j]
// When one node feeds both slots (dot(x, x)), slot 0 is written before slot 1 for each element.
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Dot : OpT<Dot> {
  const char* name() const override { return "dot"; }
  const char* doc() const override {
    return "y = Σ_j a[.., j]·b[.., j] over the last axis: B×E×d -> B×E, B×d -> B×1";
  }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0] != in[1]) shape_error(n, in, "operands must have the same shape");
    const std::size_t r = in[0].rank();
    if (r < 2) shape_error(n, in, "expects rank >= 2, got " + in[0].str());
    if (in[0][r - 1] == kBatch) shape_error(n, in, "the last axis must be a fixed extent, not the batch dim");
    if (r == 2) return Shape{in[0][0], 1};
    return Shape(std::vector<Dim>(in[0].dims.begin(), in[0].dims.end() - 1));
  }

  template <class T>
  static std::size_t width(const Tensor<T>& t) {
    return t.shape()[t.dimension() - 1];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    T* y = c.out->data();
    const std::size_t d = width(c.x(0)), rows = c.out->size();
    for (std::size_t r = 0; r < rows; ++r) {
      const T* ar = a + r * d;
      const T* br = b + r * d;
      T s = T(0);
      for (std::size_t j = 0; j < d; ++j) s += ar[j] * br[j];
      y[r] = s;
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    const T* gy = c.gout->data();
    const std::size_t d = width(c.x(0)), rows = c.out->size();
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t j = 0; j < d; ++j) {
        const std::size_t k = r * d + j;
        if (c.gin[0]) c.put(0, k, gy[r] * b[k]);
        if (c.gin[1]) c.put(1, k, gy[r] * a[k]);
      }
  }
};

FUNNEL_REGISTER_OP(Dot);

}  // namespace
}  // namespace funnel

// ONNX: ReduceSum(Mul(a, b)) over the last axis (kept for a rank-2 pair: B×1).
FUNNEL_ONNX_LOWERING("dot") {
  const std::string prod = e.temp("prod");
  e.node("Mul", {e.in(0), e.in(1)}, {prod});
  e.node("ReduceSum", {prod, e.constant_i64({-1}, {1})}, {e.out()},
         {funnel::OnnxAttr::integer("keepdims", e.input_node(0).shape.rank() == 2 ? 1 : 0)});
}
