// ESMM-NS: ESMM without embedding sharing — each tower has its own embedding table; the entire-space products
// and losses are ESMM's.
#include "models/blocks.hpp"

namespace funnel {
namespace {

ModelHandle build_esmm_ns(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  std::vector<Var> cond;
  for (std::int64_t st = 0; st < c.num_stages; ++st) {
    const std::string scope = blocks::tower_scope(st);
    cond.push_back(blocks::tower(g, c, blocks::embed(g, c, in, "embedding_" + scope), scope, blocks::cond_name(st)));
  }
  blocks::entire_space_funnel(g, in, cond, h);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(esmm_ns, .name = "esmm-ns", .description = "ESMM-NS: ESMM without embedding sharing",
                      .build = funnel::build_esmm_ns, .multi_stage = true, .order = 2);
