// ESMM-MMoE: ESMM's funnel head (pCTCVR = pCTR × pCVR, losses on pCTR and pCTCVR over all impressions) on a
// Multi-gate Mixture-of-Experts bottom (Ma et al., KDD 2018): E shared experts over the shared embedding, and
// per task (CTR, CVR) a softmax gate over the experts whose weighted sum is the task tower's input.
//   expert_e = ReLU(x W_e + b_e)  (width = the first hidden size)
//   g_t = softmax(x W_t + b_t) ∈ R^E,  in_t = Σ_e g_t,e · expert_e,  tower_t = MLP(rest of hidden) -> sigmoid
// Option: experts E.
#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/experts.hpp"

namespace funnel {
namespace {

ModelHandle build_esmm_mmoe(Graph& g, const ModelConfig& c) {
  const std::int64_t E = model_option(c, "experts").get<std::int64_t>();
  if (E < 1 || E > 64) throw GraphError("model 'esmm-mmoe': option experts must be in [1, 64], got " + std::to_string(E));
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var x = blocks::embed(g, c, in, "embedding");
  std::vector<Var> ex;
  {
    auto s = g.scope("experts");
    ex = experts::make(g, x, E, experts::expert_units(c), "expert_");
  }
  const auto hidden = experts::tower_hidden(c);
  std::vector<Var> cond;
  for (std::int64_t st = 0; st < 2; ++st) {
    Var in_t = experts::gate_mix(g, x, ex, st == 0 ? "ctr_gate" : "cvr_gate");
    cond.push_back(blocks::tower(g, hidden, in_t, blocks::tower_scope(st), blocks::cond_name(st)));
  }
  blocks::entire_space_funnel(g, in, cond, h);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(esmm_mmoe, .name = "esmm-mmoe",
                      .description = "ESMM head on an MMoE bottom: shared experts, a softmax gate per task",
                      .build = funnel::build_esmm_mmoe,
                      .options = {{"experts", 4, "number of shared experts"}}, .order = 30);
