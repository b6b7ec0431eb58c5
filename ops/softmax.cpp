// softmax: y = softmax over the last axis, row by row; any rank >= 2 (rows = the product of the leading dims,
// e.g. B×E gate logits -> B×E gate weights). Stable: each row is shifted by its maximum before exp, so exp never
// sees a positive argument and a row of equal logits gives 1/E each.
//   y_j = exp(x_j − m) / Σ_k exp(x_k − m),  m = max_k x_k
//   dx_j = y_j · (dy_j − Σ_k dy_k · y_k)     (from the saved output)
// Row sums are accumulated in double, also for float tensors.
#include <cmath>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct Softmax : OpT<Softmax> {
  const char* name() const override { return "softmax"; }
  const char* doc() const override { return "y = softmax over the last axis (row-wise, max-shifted), rank >= 2"; }
  int arity() const override { return 1; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0].rank() < 2) shape_error(n, in, "expects rank >= 2 (rows × classes), got " + in[0].str());
    const Dim k = in[0][in[0].rank() - 1];
    if (k == kBatch || k < 1) shape_error(n, in, "the last axis must be a fixed extent >= 1");
    return in[0];
  }

  template <class T>
  static std::size_t width(const Tensor<T>& t) {
    return t.shape()[t.dimension() - 1];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t k = width(c.x(0)), rows = k ? c.out->size() / k : 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * k;
      T* yr = y + r * k;
      T m = xr[0];
      for (std::size_t j = 1; j < k; ++j) m = xr[j] > m ? xr[j] : m;
      double s = 0.0;
      for (std::size_t j = 0; j < k; ++j) s += static_cast<double>(yr[j] = std::exp(xr[j] - m));
      const T inv = static_cast<T>(1.0 / s);  // s >= 1: the maximum contributes exp(0)
      for (std::size_t j = 0; j < k; ++j) yr[j] *= inv;
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* y = c.out->data();
    const T* gy = c.gout->data();
    const std::size_t k = width(*c.out), rows = k ? c.out->size() / k : 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* yr = y + r * k;
      const T* gr = gy + r * k;
      double dot = 0.0;
      for (std::size_t j = 0; j < k; ++j) dot += static_cast<double>(gr[j]) * static_cast<double>(yr[j]);
      const T d = static_cast<T>(dot);
      for (std::size_t j = 0; j < k; ++j) c.put(0, r * k + j, yr[j] * (gr[j] - d));
    }
  }
};

FUNNEL_REGISTER_OP(Softmax);

}  // namespace
}  // namespace funnel

// ONNX: Softmax over the last axis.
FUNNEL_ONNX_LOWERING("softmax") { e.node("Softmax", {e.in(0)}, {e.out()}, {funnel::OnnxAttr::integer("axis", -1)}); }
