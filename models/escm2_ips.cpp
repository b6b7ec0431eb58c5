// ESCM²-IPS (Wang et al., SIGIR 2022): ESMM (shared embedding, CTR and CVR towers, losses on pCTR and pCTCVR over
// all impressions) plus a counterfactual CVR risk that makes pCVR unbiased over the entire space. Each clicked
// impression's CVR error is weighted by the inverse of its click propensity:
//   R_IPS = (1/N) Σ_i o_i · BCE(pCVR_i, r_i) / clip(pCTR_i, τ, 1)
// over the N impressions of the batch (o = click, r = conversion, which equals the click·conversion label on
// clicked rows). pCTR enters the weight through stop_gradient: the risk trains the CVR tower and the shared
// embedding, never the CTR tower through the weight. Options: cvr_weight λ (the risk's weight), propensity_clip τ.
#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/counterfactual.hpp"

namespace funnel {
namespace {

ModelHandle build_escm2_ips(Graph& g, const ModelConfig& c) {
  const double lambda = counterfactual::number_option(c, "cvr_weight", 0.0, 1e3);
  const double tau = counterfactual::number_option(c, "propensity_clip", 1e-6, 1.0);
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var shared = blocks::embed(g, c, in, "embedding");
  Var pctr = blocks::tower(g, c, shared, "ctr_tower", "pctr");
  Var pcvr = blocks::tower(g, c, shared, "cvr_tower", "pcvr");
  blocks::entire_space_funnel(g, in, {pctr, pcvr}, h);
  auto s = g.scope("counterfactual");
  Var w = counterfactual::ips_weight(in.labels[0], pctr, tau, "ips_weight");
  Var err = bce_rows(pcvr, in.labels[1], "cvr_error");
  counterfactual::add_weighted_loss(g, h, mean(mul(w, err, "weighted_error"), "cvr_ips_mean"), lambda, "cvr_ips");
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(escm2_ips, .name = "escm2-ips",
                      .description = "ESCM²-IPS: ESMM + inverse-propensity-weighted CVR risk on clicked impressions "
                                     "(no gradient through pCTR)",
                      .build = funnel::build_escm2_ips,
                      .options = {{"cvr_weight", 1.0, "weight of the counterfactual CVR risk"},
                                  {"propensity_clip", 0.02, "pCTR is clipped to [this, 1] before 1/pCTR"}},
                      .order = 10);
