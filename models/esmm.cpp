// ESMM (Ma et al., SIGIR 2018): one embedding shared by a CTR tower and a CVR tower; pCTCVR = pCTR × pCVR, and
// the losses are on pCTR and pCTCVR over all impressions (pCVR has no loss of its own). With num_stages S > 2 it
// is the same construction over a longer funnel: one tower per stage giving p(stage s | stage s-1), their
// running products giving p(reach stage s), one loss per stage.
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_esmm(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var shared = blocks::embed(g, c, in, "embedding");
  std::vector<Var> cond;
  for (std::int64_t st = 0; st < c.num_stages; ++st)
    cond.push_back(blocks::tower(g, c, shared, blocks::tower_scope(st), blocks::cond_name(st)));
  blocks::entire_space_funnel(g, in, cond, h);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(esmm, .name = "esmm",
                      .description = "ESMM: shared embedding, CTR and CVR towers, pCTCVR = pCTR × pCVR "
                                     "(any number of funnel stages)",
                      .build = funnel::build_esmm, .multi_stage = true, .order = 0);
