// ESCM²-IPS (Wang et al., SIGIR 2022): ESMM (shared embedding, CTR and CVR towers, losses on pCTR and pCTCVR over
// all impressions) plus a counterfactual CVR risk that makes pCVR unbiased over the entire space. Each clicked
// impression's CVR error is weighted by the inverse of its click propensity:
//   R_IPS = (1/N) Σ_i o_i · BCE(pCVR_i, r_i) / clip(pCTR_i, τ, 1)
// over the N impressions of the batch (o = click, r = conversion, which equals the click·conversion label on
// clicked rows). pCTR enters the weight through stop_gradient: the risk trains the CVR tower and the shared
// embedding, never the CTR tower through the weight. Options: cvr_weight λ (the risk's weight), propensity_clip τ.
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

ModelHandle build_escm2_ips(Graph& g, const ModelConfig& c) {
  const double lambda = counterfactual::weight_option(c, "cvr_weight");
  const double tau = counterfactual::propensity_clip(c);
  ModelHandle h;
  const counterfactual::EsmmPart e = counterfactual::esmm_part(g, c, h);
  auto s = g.scope("counterfactual");
  Var rows = counterfactual::ips_risk_rows(e.in.labels[0], e.pctr, e.pcvr, e.in.labels[1], tau, "clicked");
  counterfactual::add_weighted_loss(g, h, mean(rows, "cvr_ips_mean"), lambda, "cvr_ips");
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(escm2_ips, .name = "escm2-ips",
                      .description = "ESCM²-IPS: ESMM + inverse-propensity-weighted CVR risk on clicked impressions "
                                     "(no gradient through pCTR)",
                      .build = funnel::build_escm2_ips,
                      .options = {funnel::counterfactual::weight_decl("cvr_weight", 1.0, "weight of the counterfactual CVR risk"),
                                  funnel::counterfactual::propensity_clip_decl()},
                      .order = 10);
