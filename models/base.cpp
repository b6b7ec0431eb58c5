// BASE: a CTR model over all impressions and a CVR model trained on clicked impressions only (a BCE masked by
// the click label); pCTCVR = pCTR × pCVR from the two separately trained models (disjoint parameters).
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_base(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  Var pctr = blocks::tower(g, c, blocks::embed(g, c, in, "embedding_ctr"), "ctr_tower", "pctr");
  Var pcvr = blocks::tower(g, c, blocks::embed(g, c, in, "embedding_cvr"), "cvr_tower", "pcvr");
  Var pctcvr;
  {
    auto s = g.scope("product");
    pctcvr = mul(pctr, pcvr, "pctcvr");
  }
  {
    auto s = g.scope("loss");
    blocks::add_loss(g, h, bce(pctr, in.labels[0], "ctr"));
    // On clicked rows the conversion label equals the click·conversion label.
    blocks::add_loss(g, h, bce(pcvr, in.labels[1], in.labels[0], "cvr_on_clicks"));
  }
  blocks::two_stage_outputs(h, pctr, pcvr, pctcvr);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(base, .name = "base",
                      .description = "BASE: CTR model + CVR model trained on clicked impressions",
                      .build = funnel::build_base, .order = 1);
