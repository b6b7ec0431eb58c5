#pragma once
/// @file
/// Models: a config, the handle a built model exposes, and the registry every model file adds itself to.
///
/// One model, one file (models/esmm.cpp, models/base.cpp, ...): the file defines a builder and registers it with
/// FUNNEL_REGISTER_MODEL under a name and a one-line description. Everything that lists or validates models (the
/// CLI, compare, dot, gradcheck, tests) asks the registry, so a new file — in funnel or in a user's own binary — is
/// all it takes to add one.
///
///   ModelHandle build_mine(Graph& g, const ModelConfig& c) { ... }
///   FUNNEL_REGISTER_MODEL(mine, .name = "mine", .description = "what it is, in one line", .build = build_mine);
///
/// The handle names what the trainer and the tools need, so they never assume a structure: the inputs, the
/// funnel's per-stage probabilities, the losses (with weights and names) and the prediction columns.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dsl.hpp"
#include "core/graph.hpp"

namespace funnel {

inline constexpr NodeId kUnsetNode = ~NodeId{0};  ///< a handle field the builder did not set

/// The configuration a model is built from: the data's shape (fields, vocabulary, dense features), the network's
/// sizes and the model's own options. Stored in checkpoints as JSON (to_json, model_config_from_json).
struct ModelConfig {
  std::string kind = "esmm";    ///< a registered model name (model_kinds())
  std::int64_t num_fields = 20;  ///< categorical fields per row (columns of the Ids input)
  std::int64_t vocab = 100000;  ///< embedding rows
  std::int64_t dim = 18;        ///< embedding dim
  std::vector<std::int64_t> hidden{200, 80};  ///< units of each tower's hidden layers, input side first
  std::int64_t num_stages = 2;  ///< 2 = impression -> click -> conversion; more for models with multi_stage
  std::int64_t num_dense = 0;   ///< dense features concatenated to the embeddings
  Pool pool = Pool::Sum;        ///< pooling of multi-valued fields
  std::vector<double> loss_weights;  ///< per loss; empty = all 1
  /// Model-specific knobs, checked against the model's declared options (ModelDef::options): a JSON object.
  nlohmann::json options = nlohmann::json::object();
};

/// A named prediction column (one B×1 node), e.g. {"pctr", node}.
struct ModelColumn {
  std::string name;          ///< the column's name in predictions and exports ("pctr")
  NodeId node = kUnsetNode;  ///< the B×1 node holding it
};

/// Names of the nodes a model exposes, so tools and the trainer need not know its structure.
struct ModelHandle {
  std::string kind;                ///< the registered model name it was built from
  NodeId ids = kUnsetNode;         ///< Ids input, B × num_fields
  std::vector<NodeId> dense;     ///< Input B × num_dense, when num_dense > 0 (0 or 1 entries)
  std::vector<NodeId> labels;    ///< Input B×1 per cumulative stage: labels[0] click, labels[1] click·conversion, ...
  /// The funnel, stage s = 0..S-1 (B×1 each): stage_probs[s] = p(reach stage s | impression) (pCTR, pCTCVR, ...),
  /// cond_probs[s] = p(reach stage s | reached stage s-1) (pCTR, pCVR, ...); cond_probs[0] == stage_probs[0].
  /// @{
  std::vector<NodeId> stage_probs;
  std::vector<NodeId> cond_probs;
  /// @}
  std::vector<ModelColumn> columns;   ///< what `predict` writes, in order (ESMM: pctr, pcvr, pctcvr)
  std::vector<NodeId> losses;         ///< loss nodes (scalars), trained as their weighted sum
  std::vector<double> loss_weights;   ///< filled from the config by build_model
  std::vector<std::string> loss_names;  ///< short names ("ctr", "ctcvr"); by default the loss node's last name part

  /// The column called `name`; GraphError listing the columns when there is none.
  NodeId column(std::string_view name) const;
  std::vector<std::string> column_names() const;  ///< the columns' names, in order
};

/// A model-specific option: its name, default (its JSON type is the option's type) and what it does.
struct ModelOption {
  std::string name{};              ///< the key in ModelConfig::options and in --model-options
  nlohmann::json default_value{};  ///< used when the config does not set it; its JSON type is the option's type
  std::string help{};              ///< one line for `funnel models`
};

/// A model as registered: its name and description, its builder and what it accepts. Fill it with designated
/// initializers in FUNNEL_REGISTER_MODEL.
struct ModelDef {
  std::string name{};         ///< "esmm"
  std::string description{};  ///< one line
  /// Adds the model's nodes to an empty graph and returns its handle (build_model checks the handle).
  std::function<ModelHandle(Graph&, const ModelConfig&)> build{};
  bool multi_stage = false;  ///< accepts num_stages > 2
  std::vector<ModelOption> options{};  ///< the model-specific options it accepts (others are rejected)
  int order = 100;  ///< place in model lists, lower first (funnel's own: 0..99), then registration order
};

/// Registry. register_model throws GraphError on an empty name, a missing builder or a name already taken.
void register_model(ModelDef def);
const ModelDef* find_model(std::string_view name);  ///< the model registered as `name`, or null
const ModelDef& get_model(std::string_view name);  ///< GraphError "unknown model 'x' (known: ...)"
std::vector<std::string> model_kinds();            ///< by ModelDef::order, then registration order
std::string model_kinds_text();                    ///< "esmm, base, esmm-ns, division"

/// Registers a model from a static object's constructor; used by FUNNEL_REGISTER_MODEL.
struct ModelRegistrar {
  explicit ModelRegistrar(ModelDef def);  ///< prints the error and aborts if registration fails
};
/// Registers a model at static-initialisation time: `ident` is a C++ identifier unique in the file, the rest are
/// ModelDef's designated initializers (.name, .description, .build, ...). Write it once per model file, at namespace
/// scope. A bad definition (empty or taken name, no builder) prints the error and aborts at start-up.
#define FUNNEL_REGISTER_MODEL(ident, ...) \
  static const ::funnel::ModelRegistrar funnel_model_registrar_##ident{::funnel::ModelDef{__VA_ARGS__}}

/// Builds the model `cfg.kind` into an empty graph: checks the config (shared fields and the model's options),
/// runs the builder, checks the handle it returns (inputs, one label and one probability per stage, columns,
/// losses), applies the loss weights and marks the outputs. Throws GraphError on a bad config or handle.
ModelHandle build_model(Graph& g, const ModelConfig& cfg);

/// The value of model option `name` for cfg.kind: the config's, or the declared default. GraphError if the model
/// declares no such option.
const nlohmann::json& model_option(const ModelConfig& cfg, std::string_view name);

/// The config as JSON (for checkpoints) and back; unknown or ill-typed keys are GraphErrors naming the key.
/// "options" is written only when not empty, so configs without options read and write as before.
/// @{
nlohmann::json to_json(const ModelConfig& cfg);
ModelConfig model_config_from_json(const nlohmann::json& j);
/// @}

/// Parses "k=v,k2=v2" (values are JSON when they parse as JSON — numbers, true/false, [lists] — otherwise strings;
/// commas inside [...] belong to the value) into an options object. GraphError on a malformed item.
nlohmann::json parse_model_options(std::string_view text);

}  // namespace funnel
