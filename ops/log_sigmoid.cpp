// log_sigmoid: y = log σ(x) = −softplus(−x) = min(x, 0) − log1p(exp(−|x|)), elementwise, any shape. The
// log-probability of a stage from its logit, exact in both tails: about x for x ≪ 0 (no underflow to −∞), about
// −exp(−x) for x ≫ 0 (relative precision kept, so log1mexp of a sum of these stays accurate). A funnel's cumulative
// log-probability is a sum of these (add), the loss then reads it with bce_logprob.
//   dx = dy · σ(−x)   (σ(−x) = 1 − σ(x), evaluated without cancellation)
#include <cmath>

#include "ops/elementwise.hpp"

namespace funnel {
namespace {

struct LogSigmoid : Elementwise<LogSigmoid> {
  const char* name() const override { return "log_sigmoid"; }
  const char* doc() const override { return "y = log(sigmoid(x)) = -softplus(-x), elementwise, stable in both tails"; }
  template <class T>
  static T f(T x) { return (x < T(0) ? x : T(0)) - std::log1p(std::exp(-std::abs(x))); }
  template <class T>
  static T df(T x, T, T gy) {
    const T e = std::exp(-std::abs(x));  // σ(−x) = e/(1 + e) for x >= 0, 1/(1 + e) for x < 0
    const T r = T(1) / (T(1) + e);
    return gy * (x >= T(0) ? e * r : r);
  }
};

FUNNEL_REGISTER_OP(LogSigmoid);

}  // namespace
}  // namespace funnel
