// bce_rows: binary cross-entropy per element, without the mean: p (probabilities) and y (labels in [0, 1], soft
// labels allowed) of the same shape (B×1: one loss per row) -> ℓ of that shape. The counterfactual risks of
// ESCM² and DCMT weight each row's loss (1/propensity on clicked rows) before averaging, and ESCM²-DR needs each
// row's error ê = BCE(pCVR, imputed label) with a soft label. p is clamped to p̃ = clamp(p, eps, 1 − eps), eps =
// 1e-7 for float and 1e-12 for double, as in `bce`.
//   ℓ = −[y·log p̃ + (1 − y)·log(1 − p̃)]
//   dp = dℓ · (p̃ − y) / (p̃(1 − p̃)), 0 where p was clamped (p < eps or p > 1 − eps)
//   dy = dℓ · (log(1 − p̃) − log p̃)   (y is differentiable: an imputed label can be trained through it)
// When one node feeds both slots, slot 0 is written before slot 1 for each element.
#include <cmath>

#include "ops/bce_prob.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct BceRows : OpT<BceRows> {
  const char* name() const override { return "bce_rows"; }
  const char* doc() const override {
    return "elementwise binary cross-entropy of p vs (soft) labels y, no reduction (B×1 -> B×1 per-row losses)";
  }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from p " + in[0].str());
    return in[0];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* p = c.x(0).data();
    const T* y = c.x(1).data();
    T* l = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) l[i] = detail::bce_loss(p[i], y[i]);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* p = c.x(0).data();
    const T* y = c.x(1).data();
    const T* gl = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      const T pi = p[i];
      if (c.gin[0]) c.put(0, i, detail::bce_grad(pi, y[i], gl[i]));
      if (c.gin[1]) {
        const T pc = detail::bce_clamp(pi);
        c.put(1, i, gl[i] * (std::log1p(-pc) - std::log(pc)));
      }
    }
  }
};

FUNNEL_REGISTER_OP(BceRows);

}  // namespace
}  // namespace funnel
