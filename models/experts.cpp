#include "models/experts.hpp"

#include "core/error.hpp"

namespace funnel::experts {

std::vector<Var> make(Graph& g, Var x, std::int64_t n, std::int64_t units, const std::string& prefix) {
  std::vector<Var> out;
  for (std::int64_t e = 0; e < n; ++e) out.push_back(dense(x, units, prefix + std::to_string(e), Act::Relu));
  (void)g;
  return out;
}

Var gate_mix(Graph& g, Var x, const std::vector<Var>& candidates, const std::string& scope) {
  auto s = g.scope(scope);
  const auto E = static_cast<std::int64_t>(candidates.size());
  Var gate = softmax(dense(x, E, "logits"), "weights");
  std::vector<Var> stacked;
  for (std::size_t e = 0; e < candidates.size(); ++e)
    stacked.push_back(reshape(candidates[e], Shape{kBatch, 1, candidates[e].shape()[1]}, "as_row" + std::to_string(e)));
  return weighted_sum(gate, concat(stacked, 1, "stack"), "mix");
}

std::vector<std::int64_t> tower_hidden(const ModelConfig& c) {
  return c.hidden.size() > 1 ? std::vector<std::int64_t>(c.hidden.begin() + 1, c.hidden.end())
                             : std::vector<std::int64_t>{};
}

std::int64_t expert_units(const ModelConfig& c) {
  if (c.hidden.empty()) throw GraphError("model '" + c.kind + "': needs at least one hidden size (the experts' width)");
  return c.hidden.front();
}

}  // namespace funnel::experts
