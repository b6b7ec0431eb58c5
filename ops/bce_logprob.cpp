// bce_logprob: mean binary cross-entropy of a probability given by its logarithm. Inputs a (B×1 log-probabilities,
// a = log p ≤ 0), y (B×1 labels in [0, 1]) and optionally w (B×1 non-negative row weights), all of one shape (any
// shape is accepted; the mean then runs over every element). The funnel losses: a is a sum of log_sigmoid of the
// stage logits, so p = Π σ(zₛ) is never formed and never clamped; log(1 − p) is log1mexp(a) (ops/log1mexp.hpp).
//   ℓᵢ = −[yᵢ·aᵢ + (1 − yᵢ)·log(1 − e^aᵢ)]      (the second term skipped where yᵢ = 1)
//   L = (1/n) Σ ℓᵢ                    (two inputs)
//   L = Σ wᵢℓᵢ / Σ wᵢ, 0 when Σ wᵢ = 0  (three inputs)
//   daᵢ = dL · cᵢ · (−yᵢ + (1 − yᵢ) / expm1(−aᵢ)) with cᵢ = 1/n or wᵢ/Σw; labels and weights get no gradient.
// A positive's gradient is −cᵢ whatever p is (with log_sigmoid: −cᵢ·(1 − σ(zₛ)) on each stage logit), so a
// tiny pCTCVR is always pulled back up. The loss is +∞ only where p rounds to exactly 1 with a label below 1
// (every stage logit above ≈ 100 in float). Sums are accumulated in double, also for float tensors.
#include "ops/log1mexp.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct BceLogprob : OpT<BceLogprob> {
  const char* name() const override { return "bce_logprob"; }
  const char* doc() const override {
    return "mean binary cross-entropy of log-probabilities a = log p vs labels y (log(1-p) = log1mexp(a), no "
           "clamp), optional row weights -> scalar";
  }
  int arity() const override { return -1; }
  bool differentiable(std::size_t i) const override { return i == 0; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in.size() != 2 && in.size() != 3)
      shape_error(n, in, "expects 2 inputs (log p, y) or 3 (log p, y, weight), got " + std::to_string(in.size()));
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from log p " + in[0].str());
    if (in.size() == 3 && in[2] != in[0])
      shape_error(n, in, "weights " + in[2].str() + " differ in shape from log p " + in[0].str());
    return Shape{};
  }

  template <class T>
  static T row_loss(T a, T y) {
    T l = -y * a;
    if (y != T(1)) l -= (T(1) - y) * logspace::log1mexp(a);
    return l;
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* y = c.x(1).data();
    const T* w = c.in.size() == 3 ? c.x(2).data() : nullptr;
    const std::size_t n = c.x(0).size();
    double s = 0.0, sw = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const T l = row_loss(a[i], y[i]);
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
    const T* a = c.x(0).data();
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
    T* ga = c.gin[0]->data();
    for (std::size_t i = 0; i < n; ++i) {
      const T ci = w ? scale * w[i] : scale;
      T g = -y[i];
      if (y[i] != T(1)) g -= (T(1) - y[i]) * logspace::dlog1mexp(a[i]);
      ga[i] = ci == T(0) ? T(0) : ci * g;  // a masked row (weight 0) gets 0, even where its g is infinite
    }
  }
};

FUNNEL_REGISTER_OP(BceLogprob);

}  // namespace
}  // namespace funnel
