// ESCM²-DR (Wang et al., SIGIR 2022): ESCM²'s doubly robust variant. Besides ESMM's towers, an imputation tower
// predicts each impression's conversion label r̃ (a soft label), which gives an imputed CVR error for every
// impression, clicked or not:
//   ê_i = BCE(pCVR_i, r̃_i),  e_i = BCE(pCVR_i, r_i) (observed on clicked rows), w_i = o_i / clip(pCTR_i, τ, 1)
//   R_DR  = (1/N) Σ_i [ ê_i + w_i (e_i − ê_i) ]            trains the CVR tower (r̃ and pCTR held fixed)
//   L_imp = (1/N) Σ_i w_i (e_i − ê_i)²                     trains the imputation tower (pCVR and e held fixed)
// the joint-learning form of doubly robust estimation: R_DR's gradient reaches the CVR tower on non-clicked rows
// through ê, and the imputation learns the error where it is observed. Every BCE reads log pCVR from the CVR
// logit (bce_logprob_rows), so no error is cut off by a probability clamp. Options: cvr_weight, imputation_weight,
// propensity_clip.
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

ModelHandle build_escm2_dr(Graph& g, const ModelConfig& c) {
  const double lambda = counterfactual::weight_option(c, "cvr_weight");
  const double lambda_imp = counterfactual::weight_option(c, "imputation_weight");
  const double tau = counterfactual::propensity_clip(c);
  ModelHandle h;
  const counterfactual::EsmmPart e = counterfactual::esmm_part(g, c, h);
  const Var pcvr = e.pcvr;
  Var imputed = blocks::tower(g, c, e.shared, "imputation_tower", "imputed_cvr");
  auto s = g.scope("counterfactual");
  Var w = counterfactual::ips_weight(e.in.labels[0], e.pctr, tau, "ips_weight");
  Var log_pcvr = blocks::log_prob(pcvr, "log_pcvr");
  Var err = bce_logprob_rows(log_pcvr, e.in.labels[1], "cvr_error");
  {
    auto r = g.scope("dr");
    Var err_hat = bce_logprob_rows(log_pcvr, stop_gradient(imputed, "imputed_fixed"), "imputed_error");
    Var dev = add(err, scale(err_hat, -1.0, "neg_imputed"), "deviation");
    Var risk = mean(add(err_hat, mul(w, dev, "weighted_deviation"), "dr_terms"), "cvr_dr_mean");
    counterfactual::add_weighted_loss(g, h, risk, lambda, "cvr_dr");
  }
  {
    auto r = g.scope("imputation");
    Var err_imp = bce_logprob_rows(stop_gradient(log_pcvr, "pcvr_fixed"), imputed, "imputed_error");
    Var dev = add(stop_gradient(err, "error_fixed"), scale(err_imp, -1.0, "neg_imputed"), "deviation");
    Var loss = mean(mul(w, mul(dev, dev, "squared"), "weighted_squared"), "imputation_mean");
    counterfactual::add_weighted_loss(g, h, loss, lambda_imp, "imputation");
  }
  h.columns.push_back({"imputed_cvr", imputed.id});
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(escm2_dr, .name = "escm2-dr",
                      .description = "ESCM²-DR: ESMM + doubly robust CVR risk with an imputation tower "
                                     "(joint learning)",
                      .build = funnel::build_escm2_dr,
                      .options = {funnel::counterfactual::weight_decl("cvr_weight", 1.0, "weight of the doubly robust CVR risk"),
                                  funnel::counterfactual::weight_decl("imputation_weight", 1.0,
                                                                      "weight of the imputation tower's loss"),
                                  funnel::counterfactual::propensity_clip_decl()},
                      .order = 11);
