// bce: mean binary cross-entropy on probabilities. Inputs p (B×1 probabilities), y (B×1 labels in {0, 1}) and
// optionally w (B×1 non-negative row weights); all three must have the same shape (any shape is accepted; the
// mean then runs over every element). p is clamped to p̃ = clamp(p, eps, 1 − eps) with eps = 1e-7 for float and
// 1e-12 for double, so the loss is finite at p = 0 and p = 1.
//   ℓᵢ = −[yᵢ·log p̃ᵢ + (1 − yᵢ)·log(1 − p̃ᵢ)]
//   L = (1/n) Σ ℓᵢ                    (two inputs)
//   L = Σ wᵢℓᵢ / Σ wᵢ, 0 when Σ wᵢ = 0  (three inputs)
//   dpᵢ = dL · cᵢ · (p̃ᵢ − yᵢ) / (p̃ᵢ(1 − p̃ᵢ)) with cᵢ = 1/n or wᵢ/Σw; dpᵢ = 0 where p was clamped
//   (p < eps or p > 1 − eps), the clamp being flat there. Labels and weights get no gradient.
// Sums are accumulated in double, also for float tensors.
#include <cmath>

#include "ops/op.hpp"

namespace funnel {
namespace {

template <class T>
constexpr T kEps = T(1e-7);
template <>
constexpr double kEps<double> = 1e-12;

struct Bce : OpT<Bce> {
  const char* name() const override { return "bce"; }
  const char* doc() const override {
    return "mean binary cross-entropy of probabilities p vs labels y (p clamped to [eps, 1-eps]), optional row "
           "weights -> scalar";
  }
  int arity() const override { return -1; }
  bool differentiable(std::size_t i) const override { return i == 0; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in.size() != 2 && in.size() != 3)
      shape_error(n, in, "expects 2 inputs (p, y) or 3 (p, y, weight), got " + std::to_string(in.size()));
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from p " + in[0].str());
    if (in.size() == 3 && in[2] != in[0])
      shape_error(n, in, "weights " + in[2].str() + " differ in shape from p " + in[0].str());
    return Shape{};
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T eps = kEps<T>;
    const T* p = c.x(0).data();
    const T* y = c.x(1).data();
    const T* w = c.in.size() == 3 ? c.x(2).data() : nullptr;
    const std::size_t n = c.x(0).size();
    double s = 0.0, sw = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const T pc = p[i] < eps ? eps : (p[i] > T(1) - eps ? T(1) - eps : p[i]);
      const T l = -(y[i] * std::log(pc) + (T(1) - y[i]) * std::log1p(-pc));
      if (w) {
        s += static_cast<double>(w[i]) * static_cast<double>(l);
        sw += static_cast<double>(w[i]);
      } else {
        s += static_cast<double>(l);
      }
    }
    double L = 0.0;
    if (w) L = sw != 0.0 ? s / sw : 0.0;
    else if (n) L = s / static_cast<double>(n);
    c.out->data()[0] = static_cast<T>(L);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T eps = kEps<T>;
    const T* p = c.x(0).data();
    const T* y = c.x(1).data();
    const T* w = c.in.size() == 3 ? c.x(2).data() : nullptr;
    const std::size_t n = c.x(0).size();
    T scale = T(0);
    if (w) {
      double sw = 0.0;
      for (std::size_t i = 0; i < n; ++i) sw += static_cast<double>(w[i]);
      if (sw != 0.0) scale = static_cast<T>(static_cast<double>(c.gout->data()[0]) / sw);
    } else if (n) {
      scale = c.gout->data()[0] / static_cast<T>(n);
    }
    T* gp = c.gin[0]->data();
    for (std::size_t i = 0; i < n; ++i) {
      const T pi = p[i];
      T g = T(0);
      if (pi >= eps && pi <= T(1) - eps) g = (w ? scale * w[i] : scale) * (pi - y[i]) / (pi * (T(1) - pi));
      gp[i] = g;
    }
  }
};

FUNNEL_REGISTER_OP(Bce);

}  // namespace
}  // namespace funnel
