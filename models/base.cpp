// BASE: a CTR model over all impressions and a CVR model trained on clicked impressions only (a BCE masked by
// the click label, on log pCVR from the CVR logit); pCTCVR = pCTR × pCVR from the two separately trained models (disjoint parameters).
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_base(Graph& g, const ModelConfig& c) {
  return blocks::separate_models(
      g, c,
      {.tag = "cvr",
       .out = "pcvr",
       .second_is_cvr = true,
       .combine = [](Var pctr, Var pcvr) { return mul(pctr, pcvr, "pctcvr"); },
       // On clicked rows the conversion label equals the click·conversion label.
       .second_loss = [](const blocks::Inputs& in, Var pcvr) {
         return bce_logprob(blocks::log_prob(pcvr, "log_pcvr"), in.labels[1], in.labels[0], "cvr_on_clicks");
       }});
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(base, .name = "base",
                      .description = "BASE: CTR model + CVR model trained on clicked impressions",
                      .build = funnel::build_base, .order = 1);
