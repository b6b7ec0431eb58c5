// bce_logprob_rows: binary cross-entropy per element of a probability given by its logarithm, without the mean:
// a (log-probabilities, a = log p ≤ 0) and y (labels in [0, 1], soft labels allowed) of the same shape (B×1: one
// loss per row) -> ℓ of that shape. The counterfactual risks (ESCM², DCMT) weight each row's loss before averaging;
// a is log_sigmoid of the CVR logit, so the error of a clicked row is never cut off by a probability clamp.
//   ℓ = −[y·a + (1 − y)·log(1 − eᵃ)]     (log1mexp, ops/log1mexp.hpp; the second term skipped where y = 1)
//   da = dℓ · (−y + (1 − y) / expm1(−a))
//   dy = dℓ · (log(1 − eᵃ) − a)   (y is differentiable: an imputed soft label is trained through it)
// A row whose incoming gradient is 0 (an IPS weight of 0) gets 0 in both slots, even where a = 0 makes the
// factor infinite. When one node feeds both slots, slot 0 is written before slot 1 for each element.
#include "ops/log1mexp.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct BceLogprobRows : OpT<BceLogprobRows> {
  const char* name() const override { return "bce_logprob_rows"; }
  const char* doc() const override {
    return "elementwise binary cross-entropy of log-probabilities a = log p vs (soft) labels y, no clamp, no "
           "reduction (B×1 -> B×1 per-row losses)";
  }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from log p " + in[0].str());
    return in[0];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* y = c.x(1).data();
    T* l = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      T v = -y[i] * a[i];
      if (y[i] != T(1)) v -= (T(1) - y[i]) * logspace::log1mexp(a[i]);
      l[i] = v;
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* y = c.x(1).data();
    const T* gl = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      if (c.gin[0]) {
        T g = -y[i];
        if (y[i] != T(1)) g -= (T(1) - y[i]) * logspace::dlog1mexp(a[i]);
        c.put(0, i, gl[i] == T(0) ? T(0) : gl[i] * g);
      }
      if (c.gin[1]) c.put(1, i, gl[i] == T(0) ? T(0) : gl[i] * (logspace::log1mexp(a[i]) - a[i]));
    }
  }
};

FUNNEL_REGISTER_OP(BceLogprobRows);

}  // namespace
}  // namespace funnel
