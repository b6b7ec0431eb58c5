// AITM (Xi et al., KDD 2021): Adaptive Information Transfer Multi-task. One tower per funnel stage over a shared
// embedding; each later stage receives the previous stage's representation through an attention-based transfer,
// and each stage predicts the end-to-end probability of reaching it (pCTR, then pCTCVR directly).
//   q_t = MLP_t(x)                          the stage's own representation (width d = the last hidden size)
//   p_{t-1} = ReLU(W_p z_{t-1} + b_p)       what the previous stage passes on
//   score_u = ⟨u W_1, u W_2⟩ / √d for u ∈ {p_{t-1}, q_t};  (a_p, a_q) = softmax(score)
//   z_t = a_p · p_{t-1} W_3 + a_q · q_t W_3   (z_0 = q_0);  ŷ_t = sigmoid(w_t · z_t + b_t)
// Losses: BCE(ŷ_0, click) + BCE(ŷ_1, click·conversion) + α · (1/N) Σ_i max(ŷ_1 − ŷ_0, 0), the behaviour
// calibrator (reaching the later stage can be no more likely than the earlier one). The two BCEs are taken on the
// logits (bce_logits): ŷ_1 aims at a rate near 0.2%, Adam's first steps overshoot it, and a BCE on the clamped
// probability has no gradient once the sigmoid is below its eps — the tower then stayed at pCTCVR ≈ 0 (the
// calibrator is 0 there too). On logits the gradient is ŷ − y however saturated ŷ is. pCVR = clip(ŷ_1 / ŷ_0, 0, 1)
// for the funnel's conditional column. Option: calibrator_weight α.
#include <cmath>

#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

// B×d -> B×1×d, so candidates can be stacked along axis 1.
Var as_candidate(Var v, const std::string& name) {
  return reshape(v, Shape{kBatch, 1, v.shape()[1]}, name);
}

// The attention-based information transfer of two B×d vectors in scope "ait".
Var transfer(Graph& g, Var p, Var q) {
  auto s = g.scope("ait");
  const std::int64_t d = q.shape()[1];
  Var w1 = param(g, "w1", Shape{d, d}, Init::glorot_uniform());
  Var w2 = param(g, "w2", Shape{d, d}, Init::glorot_uniform());
  Var w3 = param(g, "w3", Shape{d, d}, Init::glorot_uniform());
  auto stack = [&](Var w, const std::string& n) {
    return concat({as_candidate(matmul(p, w, n + "_p"), n + "_p3"), as_candidate(matmul(q, w, n + "_q"), n + "_q3")}, 1,
                  n);
  };
  Var keys = stack(w1, "h1"), queries = stack(w2, "h2"), values = stack(w3, "h3");  // B×2×d
  Var scores = scale(dot(keys, queries, "score"), 1.0 / std::sqrt(static_cast<double>(d)), "scaled_score");
  Var att = softmax(scores, "attention");  // B×2
  return weighted_sum(att, values, "z");
}

ModelHandle build_aitm(Graph& g, const ModelConfig& c) {
  const double alpha = counterfactual::weight_option(c, "calibrator_weight");
  if (c.hidden.empty()) throw GraphError("model 'aitm': needs at least one hidden layer (its width is d)");
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var x = blocks::embed(g, c, in, "embedding");
  const std::int64_t d = c.hidden.back();
  Var z0, ctr_logit, pctr, ctcvr_logit, pctcvr;
  {
    auto s = g.scope("ctr_tower");
    z0 = mlp(x, c.hidden, Act::Relu);
    ctr_logit = dense(z0, 1, "logit");
    pctr = sigmoid(ctr_logit, "pctr");
  }
  {
    auto s = g.scope("ctcvr_tower");
    Var q1 = mlp(x, c.hidden, Act::Relu);
    Var p0 = dense(z0, d, "transfer", Act::Relu);
    Var z1 = transfer(g, p0, q1);
    ctcvr_logit = dense(z1, 1, "logit");
    pctcvr = sigmoid(ctcvr_logit, "pctcvr");
  }
  Var pcvr;
  {
    auto s = g.scope("product");
    pcvr = divide(pctcvr, pctr, 0.0, 1.0, "pcvr");
  }
  {
    auto s = g.scope("loss");
    blocks::add_loss(g, h, bce_logits(ctr_logit, in.labels[0], "ctr"));
    blocks::add_loss(g, h, bce_logits(ctcvr_logit, in.labels[1], "ctcvr"));
    Var gap = relu(add(pctcvr, scale(pctr, -1.0, "neg_pctr"), "stage_gap"), "excess");
    counterfactual::add_weighted_loss(g, h, mean(gap, "calibrator_mean"), alpha, "calibrator");
  }
  blocks::two_stage_outputs(h, pctr, pcvr, pctcvr);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(aitm, .name = "aitm",
                      .description = "AITM: per-stage towers, attention-based transfer from the click tower, "
                                     "behaviour calibrator max(pCTCVR − pCTR, 0)",
                      .build = funnel::build_aitm,
                      .options = {{"calibrator_weight", 0.6, "weight α of the behaviour calibrator"}},
                      .order = 20);
