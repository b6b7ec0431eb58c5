#pragma once
// Pieces shared by the counterfactual CVR models (ESCM²-IPS/DR, DCMT): inverse-propensity weights with the
// propensity held out of the gradient, and the loss weights those models take as options.
#include <string>

#include "models/model.hpp"

namespace funnel::counterfactual {

// o / clip(stop_gradient(p), tau, 1): the inverse-propensity weight of each row (B×1), 0 where o = 0. The
// propensity p (pCTR, or 1 − pCTR for the non-clicked side) gets no gradient from the weight.
Var ips_weight(Var o, Var p, double tau, const std::string& name);

// 1 − x (B×1).
Var one_minus(Var x, const std::string& name);

// Adds weight · l (l a scalar) as the loss `name` of h: a scale node, so the weight shows in the drawn graph.
void add_weighted_loss(Graph& g, ModelHandle& h, Var l, double weight, const std::string& name);

// The option's value as a number, with a GraphError naming the model and the range when it is outside [lo, hi].
double number_option(const ModelConfig& c, const std::string& option, double lo, double hi);

}  // namespace funnel::counterfactual
