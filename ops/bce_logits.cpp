// bce_logits: mean binary cross-entropy on logits z (B×1) against labels y (B×1, same shape; any shape is
// accepted and the mean runs over every element), in the overflow-free form
//   ℓᵢ = max(zᵢ, 0) − zᵢ·yᵢ + log1p(exp(−|zᵢ|)),   L = (1/n) Σ ℓᵢ
//   dzᵢ = dL · (σ(zᵢ) − yᵢ) / n   (σ evaluated stably); labels get no gradient.
// The sum is accumulated in double, also for float tensors.
#include <cmath>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct BceLogits : OpT<BceLogits> {
  const char* name() const override { return "bce_logits"; }
  const char* doc() const override { return "mean binary cross-entropy of logits z vs labels y, stable -> scalar"; }
  int arity() const override { return 2; }
  bool differentiable(std::size_t i) const override { return i == 0; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from logits " + in[0].str());
    return Shape{};
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* z = c.x(0).data();
    const T* y = c.x(1).data();
    const std::size_t n = c.x(0).size();
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const T zi = z[i];
      const T l = (zi > T(0) ? zi : T(0)) - zi * y[i] + std::log1p(std::exp(-std::abs(zi)));
      s += static_cast<double>(l);
    }
    c.out->data()[0] = n ? static_cast<T>(s / static_cast<double>(n)) : T(0);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* z = c.x(0).data();
    const T* y = c.x(1).data();
    const std::size_t n = c.x(0).size();
    if (n == 0) return;
    const T scale = c.gout->data()[0] / static_cast<T>(n);
    T* gz = c.gin[0]->data();
    for (std::size_t i = 0; i < n; ++i) {
      const T zi = z[i];
      const T e = std::exp(-std::abs(zi));  // σ(z) without overflow
      const T r = T(1) / (T(1) + e);
      const T sig = zi >= T(0) ? r : e * r;
      gz[i] = scale * (sig - y[i]);
    }
  }
};

FUNNEL_REGISTER_OP(BceLogits);

}  // namespace
}  // namespace funnel
