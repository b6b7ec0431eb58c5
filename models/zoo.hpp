#pragma once
// The model zoo: ESMM (generalised to an N-stage funnel) and the paper's baselines, built with the DSL.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dsl.hpp"
#include "core/graph.hpp"

namespace funnel {

struct ModelConfig {
  std::string kind = "esmm";  // esmm | base | esmm-ns | division
  std::int64_t num_fields = 20;
  std::int64_t vocab = 100000;  // embedding rows
  std::int64_t dim = 18;        // embedding dim
  std::vector<std::int64_t> hidden{200, 80};
  std::int64_t num_stages = 2;  // 2 = impression -> click -> conversion (ESMM); more for longer funnels (esmm only)
  std::int64_t num_dense = 0;   // dense features concatenated to the embeddings
  Pool pool = Pool::Sum;        // pooling of multi-valued fields
  std::vector<double> loss_weights;  // per loss; empty = all 1
};

// Names of the nodes a model exposes, so tools and the trainer need not know its structure.
struct ModelHandle {
  std::string kind;
  NodeId ids;                   // Ids input, B × num_fields
  std::vector<NodeId> dense;    // Input B × num_dense, when num_dense > 0 (0 or 1 entries)
  std::vector<NodeId> labels;   // Input B×1 per cumulative stage: labels[0] click, labels[1] click·conversion
  NodeId pctr;                  // B×1 outputs
  NodeId pcvr;
  NodeId pctcvr;
  std::vector<NodeId> stage_probs;  // cumulative p(reach stage s), s = 0..S-1 (pctr, pctcvr, ...)
  std::vector<NodeId> losses;   // loss nodes (scalars), trained as their weighted sum
  std::vector<double> loss_weights;
};

std::vector<std::string> model_kinds();  // esmm, base, esmm-ns, division
// Builds the model into an empty graph. Throws GraphError on a bad config.
ModelHandle build_model(Graph& g, const ModelConfig& cfg);

// The config as JSON (for checkpoints) and back; unknown or ill-typed keys are GraphErrors naming the key.
nlohmann::json to_json(const ModelConfig& cfg);
ModelConfig model_config_from_json(const nlohmann::json& j);

}  // namespace funnel
