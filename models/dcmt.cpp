// DCMT (Zhu et al., ICDE 2023), as we read the paper: a direct entire-space causal multi-task model. Besides the
// CTR tower and the (factual) CVR tower, a counterfactual CVR tower predicts, for every impression, the
// conversion probability r̂* of the counterfactual world, where the non-clicked impressions' label is the
// opposite of the observed one (r* = 1 − r, so 1 on non-clicked rows). Both CVR towers are trained over the
// entire space with inverse-propensity weights, the factual one on clicked and the counterfactual one on
// non-clicked impressions, and a soft constraint ties them together (r̂ + r̂* ≈ 1):
//   R = (1/N) Σ_i [ o_i·BCE(r̂_i, r_i) / clip(pCTR_i, τ, 1) + (1 − o_i)·BCE(r̂*_i, 1 − r_i) / clip(1 − pCTR_i, τ, 1) ]
//   C = (1/N) Σ_i |1 − (r̂_i + r̂*_i)|
// plus ESMM's losses on pCTR and pCTCVR = pCTR × r̂. The propensities get no gradient from the weights. pCVR is
// the factual tower's r̂. Options: cvr_weight (R), constraint_weight (C), propensity_clip τ.
#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

ModelHandle build_dcmt(Graph& g, const ModelConfig& c) {
  const double lambda = counterfactual::number_option(c, "cvr_weight", 0.0, 1e3);
  const double lambda_c = counterfactual::number_option(c, "constraint_weight", 0.0, 1e3);
  const double tau = counterfactual::number_option(c, "propensity_clip", 1e-6, 1.0);
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var shared = blocks::embed(g, c, in, "embedding");
  Var pctr = blocks::tower(g, c, shared, "ctr_tower", "pctr");
  Var pcvr = blocks::tower(g, c, shared, "cvr_tower", "pcvr");
  Var pcf = blocks::tower(g, c, shared, "counterfactual_cvr_tower", "counterfactual_cvr");
  blocks::entire_space_funnel(g, in, {pctr, pcvr}, h);
  auto s = g.scope("counterfactual");
  Var o = in.labels[0], r = in.labels[1];
  Var w_f = counterfactual::ips_weight(o, pctr, tau, "clicked_weight");
  Var w_cf = counterfactual::ips_weight(counterfactual::one_minus(o, "not_clicked"),
                                        counterfactual::one_minus(pctr, "pnot_click"), tau, "not_clicked_weight");
  Var e_f = bce_rows(pcvr, r, "factual_error");
  Var e_cf = bce_rows(pcf, counterfactual::one_minus(r, "counterfactual_label"), "counterfactual_error");
  Var risk = mean(add(mul(w_f, e_f, "weighted_factual"), mul(w_cf, e_cf, "weighted_counterfactual"), "terms"),
                  "cvr_mean");
  counterfactual::add_weighted_loss(g, h, risk, lambda, "cvr_causal");
  Var gap = counterfactual::one_minus(add(pcvr, pcf, "sum"), "gap");
  Var abs_gap = add(relu(gap, "gap_above"), relu(scale(gap, -1.0, "gap_flip"), "gap_below"), "abs_gap");
  counterfactual::add_weighted_loss(g, h, mean(abs_gap, "constraint_mean"), lambda_c, "constraint");
  h.columns.push_back({"counterfactual_cvr", pcf.id});
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(dcmt, .name = "dcmt",
                      .description = "DCMT: factual and counterfactual CVR towers over the entire space, "
                                     "IPS-weighted, soft constraint r + r* = 1",
                      .build = funnel::build_dcmt,
                      .options = {{"cvr_weight", 1.0, "weight of the factual + counterfactual CVR risk"},
                                  {"constraint_weight", 0.1, "weight of the soft constraint |1 − (r + r*)|"},
                                  {"propensity_clip", 0.02, "propensities are clipped to [this, 1] before 1/p"}},
                      .order = 40);
