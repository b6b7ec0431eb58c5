// ESMM with a shared bottom: the ESMM funnel (pCTCVR = pCTR × pCVR, losses on pCTR and pCTCVR over all
// impressions), but the embedding feeds one MLP shared by both tasks, and the CTR and CVR towers read its output
// instead of the raw embedding. A model funnel does not ship, declared in one file: registering it is all it
// takes for train / eval / predict / compare / dot / gradcheck to know it.
#include "models/blocks.hpp"
#include "models/model.hpp"

namespace {

using namespace funnel;

ModelHandle build_esmm_shared_bottom(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  // ids, dense features and one label per funnel stage, recorded in the handle.
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  // One embedding table; every field looked up and flattened to B × (fields · dim).
  const Var x = blocks::embed(g, c, in, "embedding");
  // The shared bottom: an MLP with ReLU whose layer sizes are this model's own option.
  Var shared = x;
  {
    auto scope = g.scope("shared_bottom");
    shared = mlp(x, model_option(c, "bottom").get<std::vector<std::int64_t>>(), Act::Relu);
  }
  // One tower per stage on the shared representation, each giving p(stage | previous stage) ...
  std::vector<Var> cond;
  for (std::int64_t stage = 0; stage < c.num_stages; ++stage)
    cond.push_back(blocks::tower(g, c, shared, blocks::tower_scope(stage), blocks::cond_name(stage)));
  // ... and ESMM's entire-space products, losses and output columns (pctr, pcvr, pctcvr).
  blocks::entire_space_funnel(g, in, cond, h);
  return h;
}

}  // namespace

FUNNEL_REGISTER_MODEL(esmm_shared_bottom, .name = "esmm-shared-bottom",
                      .description = "ESMM with a shared-bottom MLP between the embedding and the CTR/CVR towers",
                      .build = build_esmm_shared_bottom, .multi_stage = true,
                      .options = {{"bottom", nlohmann::json::array({64}), "layer sizes of the shared-bottom MLP"}});
