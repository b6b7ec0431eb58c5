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
#include "ops/bce_prob.hpp"
#include "ops/mean_loss.hpp"

namespace funnel {
namespace {

struct Bce : MeanLoss<Bce> {
  static constexpr const char* kInput = "p";
  const char* name() const override { return "bce"; }
  const char* doc() const override {
    return "mean binary cross-entropy of probabilities p vs labels y (p clamped to [eps, 1-eps]), optional row "
           "weights -> scalar";
  }

  template <class T>
  static T row_loss(T p, T y) { return detail::bce_loss(p, y); }

  template <class T>
  static T row_grad(T p, T y, T c) { return detail::bce_grad(p, y, c); }
};

FUNNEL_REGISTER_OP(Bce);

}  // namespace
}  // namespace funnel
