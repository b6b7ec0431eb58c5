#pragma once
/// @file
/// Pieces shared by the counterfactual CVR models (ESCM²-IPS/DR, DCMT): ESMM's part they all start from, the
/// clipped inverse-propensity weights with the propensity held out of the gradient, the IPS-weighted risk rows,
/// and the options and loss weights those models take.
#include <string>

#include "models/blocks.hpp"
#include "models/model.hpp"

namespace funnel::counterfactual {

/// ESMM inside every counterfactual model: the inputs, one shared embedding, a CTR tower ("ctr_tower" -> pctr) and
/// a CVR tower ("cvr_tower" -> pcvr), ESMM's products, losses and columns recorded in `h`.
struct EsmmPart {
  blocks::Inputs in;  ///< the model's inputs
  /// @{
  /// The shared embedding output, pCTR (the CTR tower's sigmoid) and pCVR (the CVR tower's).
  Var shared, pctr, pcvr;
  /// @}
};
/// Builds ESMM's part (see EsmmPart) into `g` and records it in `h`.
EsmmPart esmm_part(Graph& g, const ModelConfig& c, ModelHandle& h);

/// o / clip(stop_gradient(p), tau, 1): the inverse-propensity weight of each row (B×1), 0 where o = 0. The
/// propensity p (pCTR, or 1 − pCTR for the non-clicked side) gets no gradient from the weight.
Var ips_weight(Var o, Var p, double tau, const std::string& name);

/// The clipped-propensity risk of each row, o_i · BCE(q_i, y_i) / clip(p_i, τ, 1) (B×1): BCE of the prediction q
/// (a sigmoid node; the BCE is taken on log q from its logit) against y on the rows selected by o,
/// inverse-propensity weighted. Nodes are named name + "_weight", "_log_p", "_error", and `name` for the product.
Var ips_risk_rows(Var o, Var propensity, Var q, Var y, double tau, const std::string& name);

/// 1 − x (B×1).
Var one_minus(Var x, const std::string& name);

/// Adds weight · l (l a scalar) as the loss `name` of h: a scale node, so the weight shows in the drawn graph.
void add_weighted_loss(Graph& g, ModelHandle& h, Var l, double weight, const std::string& name);

/// The option's value as a number, with a GraphError naming the model and the range when it is outside [lo, hi].
double number_option(const ModelConfig& c, const std::string& option, double lo, double hi);
/// A loss weight option (in [0, 1000]) and the propensity clip τ (in [1e-6, 1]).
/// @{
double weight_option(const ModelConfig& c, const std::string& option);
double propensity_clip(const ModelConfig& c);
/// @}

/// The declarations of those options, for FUNNEL_REGISTER_MODEL's .options.
/// @{
ModelOption weight_decl(const std::string& option, double dflt, const std::string& help);
ModelOption propensity_clip_decl(const std::string& help = "pCTR is clipped to [this, 1] before 1/pCTR");
/// @}

}  // namespace funnel::counterfactual
