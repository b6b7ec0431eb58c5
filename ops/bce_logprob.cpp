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
#include "ops/mean_loss.hpp"

namespace funnel {
namespace {

struct BceLogprob : MeanLoss<BceLogprob> {
  static constexpr const char* kInput = "log p";
  const char* name() const override { return "bce_logprob"; }
  const char* doc() const override {
    return "mean binary cross-entropy of log-probabilities a = log p vs labels y (log(1-p) = log1mexp(a), no "
           "clamp), optional row weights -> scalar";
  }

  template <class T>
  static T row_loss(T a, T y) {
    T l = -y * a;
    if (y != T(1)) l -= (T(1) - y) * logspace::log1mexp(a);
    return l;
  }

  template <class T>
  static T row_grad(T a, T y, T c) {
    T g = -y;
    if (y != T(1)) g -= (T(1) - y) * logspace::dlog1mexp(a);
    return c == T(0) ? T(0) : c * g;  // a masked row (weight 0) gets 0, even where its g is infinite
  }
};

FUNNEL_REGISTER_OP(BceLogprob);

}  // namespace
}  // namespace funnel
