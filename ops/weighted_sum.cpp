// weighted_sum: mixes E candidate vectors per row with per-row weights: w (B×E), x (B×E×d) -> y (B×d),
//   y[b, :] = Σ_e w[b, e] · x[b, e, :]
// MMoE's and PLE's gate-weighted sum of expert outputs (w = a task's softmax gate, x = the stacked experts) and
// AITM's attention-weighted sum of the transferred and the own representation.
//   dw[b, e] = Σ_j dy[b, j] · x[b, e, j]
//   dx[b, e, j] = w[b, e] · dy[b, j]
#include "ops/op.hpp"

namespace funnel {
namespace {

struct WeightedSum : OpT<WeightedSum> {
  const char* name() const override { return "weighted_sum"; }
  const char* doc() const override { return "y[b,:] = Σ_e w[b,e]·x[b,e,:], w: B×E, x: B×E×d -> B×d (expert mixing)"; }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0].rank() != 2) shape_error(n, in, "weights must be B×E, got " + in[0].str());
    if (in[1].rank() != 3) shape_error(n, in, "values must be B×E×d, got " + in[1].str());
    if (in[0][0] != in[1][0]) shape_error(n, in, "weights and values differ in the batch dimension");
    if (in[0][1] != in[1][1] || in[0][1] == kBatch)
      shape_error(n, in, "weights have " + std::to_string(in[0][1]) + " columns, values " +
                             std::to_string(in[1][1]) + " candidates");
    if (in[1][2] == kBatch) shape_error(n, in, "the value width must be a fixed extent");
    return Shape{in[1][0], in[1][2]};
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* w = c.x(0).data();
    const T* x = c.x(1).data();
    T* y = c.out->data();
    const auto& xs = c.x(1).shape();
    const std::size_t B = xs[0], E = xs[1], d = xs[2];
    for (std::size_t b = 0; b < B; ++b) {
      T* yb = y + b * d;
      for (std::size_t j = 0; j < d; ++j) yb[j] = T(0);
      for (std::size_t e = 0; e < E; ++e) {
        const T we = w[b * E + e];
        const T* xe = x + (b * E + e) * d;
        for (std::size_t j = 0; j < d; ++j) yb[j] += we * xe[j];
      }
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* w = c.x(0).data();
    const T* x = c.x(1).data();
    const T* gy = c.gout->data();
    const auto& xs = c.x(1).shape();
    const std::size_t B = xs[0], E = xs[1], d = xs[2];
    for (std::size_t b = 0; b < B; ++b) {
      const T* gb = gy + b * d;
      for (std::size_t e = 0; e < E; ++e) {
        const std::size_t be = b * E + e;
        const T* xe = x + be * d;
        if (c.gin[0]) {
          T s = T(0);
          for (std::size_t j = 0; j < d; ++j) s += gb[j] * xe[j];
          c.put(0, be, s);
        }
        if (c.gin[1]) {
          const T we = w[be];
          for (std::size_t j = 0; j < d; ++j) c.put(1, be * d + j, we * gb[j]);
        }
      }
    }
  }
};

FUNNEL_REGISTER_OP(WeightedSum);

}  // namespace
}  // namespace funnel

// ONNX: ReduceSum over the candidates of Unsqueeze(w, 2) · x (B×E×1 times B×E×d).
FUNNEL_ONNX_LOWERING("weighted_sum") {
  const std::string w3 = e.temp("w3"), prod = e.temp("prod");
  e.node("Unsqueeze", {e.in(0), e.constant_i64({2}, {1})}, {w3});
  e.node("Mul", {w3, e.in(1)}, {prod});
  e.node("ReduceSum", {prod, e.constant_i64({1}, {1})}, {e.out()}, {funnel::OnnxAttr::integer("keepdims", 0)});
}
