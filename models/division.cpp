// DIVISION: a CTR model and a CTCVR model trained separately over all impressions; pCVR = pCTCVR / pCTR, clipped
// to [0, 1].
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_division(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  Var pctr = blocks::tower(g, c, blocks::embed(g, c, in, "embedding_ctr"), "ctr_tower", "pctr");
  Var pctcvr = blocks::tower(g, c, blocks::embed(g, c, in, "embedding_ctcvr"), "ctcvr_tower", "pctcvr");
  Var pcvr;
  {
    auto s = g.scope("product");
    pcvr = divide(pctcvr, pctr, 0.0, 1.0, "pcvr");
  }
  {
    auto s = g.scope("loss");
    blocks::add_loss(g, h, bce(pctr, in.labels[0], "ctr"));
    blocks::add_loss(g, h, bce(pctcvr, in.labels[1], "ctcvr"));
  }
  blocks::two_stage_outputs(h, pctr, pcvr, pctcvr);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(division, .name = "division",
                      .description = "DIVISION: pCVR = pCTCVR / pCTR from two separate models",
                      .build = funnel::build_division, .order = 3);
