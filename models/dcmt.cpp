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
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

ModelHandle build_dcmt(Graph& g, const ModelConfig& c) {
  const double lambda = counterfactual::weight_option(c, "cvr_weight");
  const double lambda_c = counterfactual::weight_option(c, "constraint_weight");
  const double tau = counterfactual::propensity_clip(c);
  ModelHandle h;
  const counterfactual::EsmmPart e = counterfactual::esmm_part(g, c, h);
  const Var pcvr = e.pcvr;
  Var pcf = blocks::tower(g, c, e.shared, "counterfactual_cvr_tower", "counterfactual_cvr");
  auto s = g.scope("counterfactual");
  const Var o = e.in.labels[0], r = e.in.labels[1];
  Var factual = counterfactual::ips_risk_rows(o, e.pctr, pcvr, r, tau, "factual");
  Var counter = counterfactual::ips_risk_rows(counterfactual::one_minus(o, "not_clicked"),
                                              counterfactual::one_minus(e.pctr, "pnot_click"), pcf,
                                              counterfactual::one_minus(r, "counterfactual_label"), tau,
                                              "counterfactual");
  Var risk = mean(add(factual, counter, "terms"), "cvr_mean");
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
                      .options = {funnel::counterfactual::weight_decl("cvr_weight", 1.0,
                                                                      "weight of the factual + counterfactual CVR risk"),
                                  funnel::counterfactual::weight_decl("constraint_weight", 0.1,
                                                                      "weight of the soft constraint |1 − (r + r*)|"),
                                  funnel::counterfactual::propensity_clip_decl(
                                      "propensities are clipped to [this, 1] before 1/p")},
                      .order = 40);
