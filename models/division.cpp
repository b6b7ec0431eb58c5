// DIVISION: a CTR model and a CTCVR model trained separately over all impressions; pCVR = pCTCVR / pCTR, clipped
// to [0, 1].
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_division(Graph& g, const ModelConfig& c) {
  return blocks::separate_models(
      g, c,
      {.tag = "ctcvr",
       .out = "pctcvr",
       .second_is_cvr = false,
       .combine = [](Var pctr, Var pctcvr) { return divide(pctcvr, pctr, 0.0, 1.0, "pcvr"); },
       .second_loss = [](const blocks::Inputs& in, Var pctcvr) {
         return bce_logprob(blocks::log_prob(pctcvr, "log_pctcvr"), in.labels[1], "ctcvr");
       }});
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(division, .name = "division",
                      .description = "DIVISION: pCVR = pCTCVR / pCTR from two separate models",
                      .build = funnel::build_division, .order = 3);
