#pragma once
/// @file
/// Building blocks shared by the model files: the standard inputs, an embedding layer, an MLP tower ending in a
/// probability, the losses, and the funnel's standard outputs. A model file combines these; nothing here knows
/// which models exist.
#include <functional>
#include <string>
#include <vector>

#include "models/model.hpp"

namespace funnel::blocks {

/// The standard inputs of a funnel model, as make_inputs creates them.
struct Inputs {
  Var ids;                  ///< B × num_fields categorical ids
  Var dense;                ///< B × num_dense, when has_dense
  bool has_dense = false;   ///< the config has dense features (num_dense > 0)
  std::vector<Var> labels;  ///< B×1 per stage: "click", "ctcvr", "stage2", ...
};

/// The inputs every funnel model reads, in scope "input", recorded in `h` (ids, dense, labels).
Inputs make_inputs(Graph& g, const ModelConfig& c, ModelHandle& h);

/// Embedding layer in scope `scope`: a vocab × dim table, a lookup of every field, flattened to B×(F·D), with the
/// dense features concatenated when there are any.
Var embed(Graph& g, const ModelConfig& c, const Inputs& in, const std::string& scope);

/// A tower in scope `scope`: an MLP of `hidden` with ReLU, a 1-unit logit layer and a sigmoid named `out`.
Var tower(Graph& g, const std::vector<std::int64_t>& hidden, Var x, const std::string& scope, const std::string& out);
/// The same with the config's hidden sizes.
Var tower(Graph& g, const ModelConfig& c, Var x, const std::string& scope, const std::string& out);

/// log p of a tower's probability p = σ(z) (a sigmoid node, as tower() makes): log_sigmoid of its logit z, named
/// `name` in the current scope. The losses read probabilities through this, never through p itself: the gradient of
/// a loss on log p never vanishes however small p gets, where a BCE on a clamped p has none below the clamp.
Var log_prob(Var p, const std::string& name);

/// Marks `l` as a loss and records it in `h` (its short name is the node's last name part).
void add_loss(Graph& g, ModelHandle& h, Var l);

/// Funnel naming: scope of the tower for stage s ("ctr_tower", "cvr_tower", "stage2_tower", ...), name of its
/// conditional probability ("pctr", "pcvr", "p2", ...), of the cumulative one ("pctr", "pctcvr", "p_reach2", ...)
/// and of the stage's loss ("ctr", "ctcvr", "stage2").
/// @{
std::string tower_scope(std::int64_t stage);
std::string cond_name(std::int64_t stage);
std::string reach_name(std::int64_t stage);
std::string loss_name(std::int64_t stage);
/// @}

/// The ESMM construction over conditional probabilities cond[s] = p(stage s | stage s-1) (sigmoid nodes):
/// cumulative products in scope "product" (pctcvr = pctr × pcvr, ...: the prediction columns), and in scope "loss"
/// one BCE per stage against the stage's label, computed from the logits in log space: log p(reach s) =
/// Σ_{t<=s} log σ(z_t) ("log_pctr", "log_pctcvr", ...), then bce_logprob. The handle's funnel: stage and conditional
/// probabilities and the columns pctr, pcvr, pctcvr (then `p<s>`, `p_reach<s>` for longer funnels).
void entire_space_funnel(Graph& g, const Inputs& in, const std::vector<Var>& cond, ModelHandle& h);

/// Two models that share nothing, for the baselines BASE and DIVISION: a CTR model (its own embedding
/// "embedding_ctr" and "ctr_tower" -> pctr, trained by BCE on clicks over all impressions) and a second model (its
/// own embedding `embedding_<tag>` and `<tag>_tower` -> `out`). `combine` (in scope "product") makes the missing one
/// of pCVR / pCTCVR from pCTR and the second probability; `second_loss` (in scope "loss") trains the second model
/// (from log_prob(second), like the CTR loss).
/// The handle gets the losses and the funnel columns.
struct SeparateModels {
  /// @{
  /// The second model's name part (`embedding_<tag>`, `<tag>_tower`) and the name of its probability.
  std::string tag, out;
  /// @}
  bool second_is_cvr = true;  ///< the second model predicts pCVR (else pCTCVR)
  std::function<Var(Var pctr, Var second)> combine;                ///< the missing probability from pCTR and the second
  std::function<Var(const Inputs& in, Var second)> second_loss;  ///< the second model's loss
};
/// Builds the two models described by `m` (see SeparateModels) and returns the handle.
ModelHandle separate_models(Graph& g, const ModelConfig& c, const SeparateModels& m);

/// The handle's funnel and columns for a two-stage model that has pctr, pcvr and pctcvr.
void two_stage_outputs(ModelHandle& h, Var pctr, Var pcvr, Var pctcvr);

}  // namespace funnel::blocks
