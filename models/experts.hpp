#pragma once
/// @file
/// Mixture-of-experts bottoms for the ESMM head (esmm-mmoe, esmm-ple): experts are one dense ReLU layer each,
/// gates are per-task softmaxes over the experts a task may use, mixed with weighted_sum.
#include <string>
#include <vector>

#include "models/model.hpp"

namespace funnel::experts {

/// `n` experts over x in scopes `<prefix>0`, `<prefix>1`, ..., each B×units.
std::vector<Var> make(Graph& g, Var x, std::int64_t n, std::int64_t units, const std::string& prefix);

/// softmax(x·W_g + b_g) over the candidates, then Σ_e gate_e · candidate_e, in scope `scope`: B×units.
Var gate_mix(Graph& g, Var x, const std::vector<Var>& candidates, const std::string& scope);

/// The towers' hidden sizes under an expert bottom: the config's hidden sizes after the first, which is the
/// experts' width.
std::vector<std::int64_t> tower_hidden(const ModelConfig& c);
/// The experts' width: the config's first hidden size.
std::int64_t expert_units(const ModelConfig& c);

}  // namespace funnel::experts
