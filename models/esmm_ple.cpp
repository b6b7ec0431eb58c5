// ESMM-PLE: ESMM's funnel head on a Progressive Layered Extraction bottom (Tang et al., RecSys 2020). Each
// extraction level has task-specific experts per task (CTR, CVR) and shared experts; task t's gate mixes its own
// and the shared experts, and below the last level a shared gate mixes all of them for the next level's shared
// experts. Experts are one dense ReLU layer of the first hidden size; the towers take the rest of hidden.
//   in_t^(l+1) = Σ softmax(in_t^(l) W_t)  · [experts_t^(l)(in_t^(l)), shared^(l)(in_s^(l))]
//   in_s^(l+1) = Σ softmax(in_s^(l) W_s) · [all experts of level l]            (levels before the last)
// Options: levels, task_experts, shared_experts. One level is CGC (Customized Gate Control).
#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/experts.hpp"

namespace funnel {
namespace {

std::int64_t int_option(const ModelConfig& c, const char* name, std::int64_t lo, std::int64_t hi) {
  const auto v = model_option(c, name).get<std::int64_t>();
  if (v < lo || v > hi)
    throw GraphError("model 'esmm-ple': option " + std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

ModelHandle build_esmm_ple(Graph& g, const ModelConfig& c) {
  const std::int64_t L = int_option(c, "levels", 1, 8), nt = int_option(c, "task_experts", 1, 32),
                     ns = int_option(c, "shared_experts", 1, 32);
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const Var x = blocks::embed(g, c, in, "embedding");
  const std::int64_t units = experts::expert_units(c);
  const char* task[2] = {"ctr", "cvr"};
  Var task_in[2] = {x, x};
  Var shared_in = x;
  for (std::int64_t l = 0; l < L; ++l) {
    auto s = g.scope("level_" + std::to_string(l));
    std::vector<Var> own[2], shared;
    for (int t = 0; t < 2; ++t) {
      auto e = g.scope(std::string(task[t]) + "_experts");
      own[t] = experts::make(g, task_in[t], nt, units, "expert_");
    }
    {
      auto e = g.scope("shared_experts");
      shared = experts::make(g, shared_in, ns, units, "expert_");
    }
    Var next[2];
    for (int t = 0; t < 2; ++t) {
      std::vector<Var> cand = own[t];
      cand.insert(cand.end(), shared.begin(), shared.end());
      next[t] = experts::gate_mix(g, task_in[t], cand, std::string(task[t]) + "_gate");
    }
    if (l + 1 < L) {
      std::vector<Var> all = own[0];
      all.insert(all.end(), own[1].begin(), own[1].end());
      all.insert(all.end(), shared.begin(), shared.end());
      shared_in = experts::gate_mix(g, shared_in, all, "shared_gate");
    }
    task_in[0] = next[0];
    task_in[1] = next[1];
  }
  const auto hidden = experts::tower_hidden(c);
  std::vector<Var> cond;
  for (std::int64_t st = 0; st < 2; ++st)
    cond.push_back(blocks::tower(g, hidden, task_in[st], blocks::tower_scope(st), blocks::cond_name(st)));
  blocks::entire_space_funnel(g, in, cond, h);
  return h;
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_MODEL(esmm_ple, .name = "esmm-ple",
                      .description = "ESMM head on a PLE bottom: task-specific and shared experts, per-task gates",
                      .build = funnel::build_esmm_ple,
                      .options = {{"levels", 1, "extraction levels (1 = CGC)"},
                                  {"task_experts", 2, "experts per task per level"},
                                  {"shared_experts", 2, "shared experts per level"}},
                      .order = 31);
