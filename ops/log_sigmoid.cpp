// log_sigmoid: y = log σ(x) = −softplus(−x) = min(x, 0) − log1p(exp(−|x|)), elementwise, any shape. The
// log-probability of a stage from its logit, exact in both tails: about x for x ≪ 0 (no underflow to −∞), about
// −exp(−x) for x ≫ 0 (relative precision kept, so log1mexp of a sum of these stays accurate). A funnel's cumulative
// log-probability is a sum of these (add), the loss then reads it with bce_logprob.
//   dx = dy · σ(−x)   (σ(−x) = 1 − σ(x), evaluated without cancellation)
#include <cmath>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct LogSigmoid : OpT<LogSigmoid> {
  const char* name() const override { return "log_sigmoid"; }
  const char* doc() const override { return "y = log(sigmoid(x)) = -softplus(-x), elementwise, stable in both tails"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = (x[i] < T(0) ? x[i] : T(0)) - std::log1p(std::exp(-std::abs(x[i])));
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      const T e = std::exp(-std::abs(x[i]));  // σ(−x) = e/(1 + e) for x >= 0, 1/(1 + e) for x < 0
      const T r = T(1) / (T(1) + e);
      c.put(0, i, gy[i] * (x[i] >= T(0) ? e * r : r));
    }
  }
};

FUNNEL_REGISTER_OP(LogSigmoid);

}  // namespace
}  // namespace funnel
