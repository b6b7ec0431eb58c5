// The model registry, the checks around every build, and the config's JSON form.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "core/error.hpp"
#include "models/model.hpp"

namespace funnel {

namespace {

// Kept sorted by ModelDef::order (stable: equal orders stay in registration order).
std::vector<std::unique_ptr<const ModelDef>>& table() {
  static std::vector<std::unique_ptr<const ModelDef>> t;
  return t;
}

[[noreturn]] void bad(const std::string& what) { throw GraphError("model config: " + what); }

const char* json_type(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

bool same_type(const nlohmann::json& want, const nlohmann::json& got) {
  if (want.is_number_integer()) return got.is_number_integer();
  if (want.is_number()) return got.is_number();
  return std::string(json_type(want)) == json_type(got);
}

void check_config(const ModelConfig& c, const ModelDef& def) {
  if (c.num_fields <= 0) bad("num_fields must be positive");
  if (c.vocab <= 0) bad("vocab must be positive");
  if (c.dim <= 0) bad("embedding dim must be positive");
  for (auto u : c.hidden)
    if (u <= 0) bad("hidden layer sizes must be positive");
  if (c.num_stages < 2) bad("a funnel has at least 2 stages (click, conversion)");
  if (c.num_stages > 2 && !def.multi_stage)
    bad("model '" + def.name + "' has 2 stages, got num_stages " + std::to_string(c.num_stages));
  if (c.num_dense < 0) bad("num_dense must be non-negative");
  if (!c.options.is_object()) bad("options must be a JSON object");
  for (auto it = c.options.begin(); it != c.options.end(); ++it) {
    const ModelOption* o = nullptr;
    for (const auto& d : def.options)
      if (d.name == it.key()) o = &d;
    if (!o) {
      std::string known;
      for (const auto& d : def.options) known += (known.empty() ? "" : ", ") + d.name;
      bad("model '" + def.name + "' has no option '" + it.key() + "' (its options: " +
          (known.empty() ? "none" : known) + ")");
    }
    if (!same_type(o->default_value, it.value()))
      bad("option '" + it.key() + "' of model '" + def.name + "' must be " +
          (o->default_value.is_number_integer() ? "an integer" : json_type(o->default_value)) + ", got " +
          it.value().dump());
  }
}

void check_handle(const Graph& g, const ModelConfig& c, const ModelHandle& h) {
  auto broken = [&](const std::string& what) {
    throw GraphError("model '" + c.kind + "': the builder's handle " + what);
  };
  auto valid = [&](NodeId v) { return v != kUnsetNode && v < g.size(); };
  const auto S = static_cast<std::size_t>(c.num_stages);
  if (!valid(h.ids) || g.node(h.ids).kind != NodeKind::Ids) broken("has no ids input");
  if (h.labels.size() != S) broken("has " + std::to_string(h.labels.size()) + " labels for " + std::to_string(S) + " stages");
  if (h.dense.size() != (c.num_dense > 0 ? 1u : 0u)) broken("does not match num_dense");
  if (h.stage_probs.size() != S || h.cond_probs.size() != S)
    broken("needs one stage and one conditional probability per stage (" + std::to_string(S) + ")");
  if (h.columns.empty()) broken("names no prediction columns");
  if (h.losses.empty()) broken("has no losses");
  if (h.loss_names.size() != h.losses.size()) broken("names " + std::to_string(h.loss_names.size()) + " of " +
                                                      std::to_string(h.losses.size()) + " losses");
  std::vector<NodeId> all(h.stage_probs);
  all.insert(all.end(), h.cond_probs.begin(), h.cond_probs.end());
  for (const auto& col : h.columns) {
    if (col.name.empty()) broken("has a column without a name");
    for (const auto& other : h.columns)
      if (&other != &col && other.name == col.name) broken("has two columns named '" + col.name + "'");
    all.push_back(col.node);
  }
  all.insert(all.end(), h.labels.begin(), h.labels.end());
  for (NodeId v : all) {
    if (!valid(v)) broken("refers to a node the graph does not have");
    if (g.node(v).shape != Shape{kBatch, 1})
      broken("output or label '" + g.node(v).name + "' has shape " + g.node(v).shape.str() + ", expected B×1");
  }
  for (NodeId l : h.losses)
    if (!valid(l) || g.node(l).shape != Shape{}) broken("has a loss that is not a scalar node");
}

}  // namespace

NodeId ModelHandle::column(std::string_view name) const {
  for (const auto& c : columns)
    if (c.name == name) return c.node;
  std::string known;
  for (const auto& c : columns) known += (known.empty() ? "" : ", ") + c.name;
  throw GraphError("model '" + kind + "' has no output column '" + std::string(name) + "' (its columns: " + known + ")");
}

std::vector<std::string> ModelHandle::column_names() const {
  std::vector<std::string> out;
  for (const auto& c : columns) out.push_back(c.name);
  return out;
}

void register_model(ModelDef def) {
  if (def.name.empty()) throw GraphError("register_model: a model needs a name");
  if (!def.build) throw GraphError("register_model: model '" + def.name + "' has no builder");
  if (find_model(def.name)) throw GraphError("register_model: a model named '" + def.name + "' is already registered");
  for (const auto& o : def.options)
    if (o.name.empty() || o.default_value.is_null())
      throw GraphError("register_model: model '" + def.name + "' declares an option without a name or default");
  auto& t = table();
  auto pos = std::upper_bound(t.begin(), t.end(), def.order,
                              [](int order, const std::unique_ptr<const ModelDef>& d) { return order < d->order; });
  t.insert(pos, std::make_unique<const ModelDef>(std::move(def)));
}

ModelRegistrar::ModelRegistrar(ModelDef def) {
  try {
    register_model(std::move(def));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel: %s\n", e.what());
    std::abort();
  }
}

const ModelDef* find_model(std::string_view name) {
  for (const auto& d : table())
    if (d->name == name) return d.get();
  return nullptr;
}

const ModelDef& get_model(std::string_view name) {
  if (const ModelDef* d = find_model(name)) return *d;
  throw GraphError("unknown model '" + std::string(name) + "' (known: " + model_kinds_text() + ")");
}

std::vector<std::string> model_kinds() {
  std::vector<std::string> out;
  for (const auto& d : table()) out.push_back(d->name);
  return out;
}

std::string model_kinds_text() {
  std::string out;
  for (const auto& d : table()) out += (out.empty() ? "" : ", ") + d->name;
  return out;
}

const nlohmann::json& model_option(const ModelConfig& c, std::string_view name) {
  const ModelDef& def = get_model(c.kind);
  for (const auto& o : def.options)
    if (o.name == name) {
      if (c.options.is_object() && c.options.contains(o.name)) return c.options.at(o.name);
      return o.default_value;
    }
  throw GraphError("model '" + c.kind + "' declares no option '" + std::string(name) + "'");
}

ModelHandle build_model(Graph& g, const ModelConfig& c) {
  const ModelDef& def = get_model(c.kind);
  check_config(c, def);
  if (g.size() != 0) throw GraphError("build_model needs an empty graph");
  ModelHandle h = def.build(g, c);
  h.kind = c.kind;
  check_handle(g, c, h);
  h.loss_weights = c.loss_weights;
  if (h.loss_weights.empty()) h.loss_weights.assign(h.losses.size(), 1.0);
  if (h.loss_weights.size() != h.losses.size())
    bad(std::to_string(c.loss_weights.size()) + " loss weights given, model has " + std::to_string(h.losses.size()) +
        " losses");
  for (const auto& col : h.columns) g.mark_output(col.node);
  for (NodeId v : h.stage_probs) g.mark_output(v);
  for (NodeId v : h.cond_probs) g.mark_output(v);
  return h;
}

nlohmann::json to_json(const ModelConfig& c) {
  nlohmann::json j{{"kind", c.kind},           {"num_fields", c.num_fields}, {"vocab", c.vocab},
                   {"dim", c.dim},             {"hidden", c.hidden},         {"num_stages", c.num_stages},
                   {"num_dense", c.num_dense}, {"pool", c.pool == Pool::Sum ? "sum" : "mean"},
                   {"loss_weights", c.loss_weights}};
  if (c.options.is_object() && !c.options.empty()) j["options"] = c.options;
  return j;
}

ModelConfig model_config_from_json(const nlohmann::json& j) {
  ModelConfig c;
  auto get = [&](const char* k, auto& dst) {
    if (!j.contains(k)) return;
    try {
      j.at(k).get_to(dst);
    } catch (const nlohmann::json::exception& e) {
      bad(std::string("key '") + k + "' has the wrong type: " + e.what());
    }
  };
  if (!j.is_object()) bad("expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"kind",      "num_fields", "vocab",        "dim",    "hidden",
                                  "num_stages", "num_dense", "pool", "loss_weights", "options"};
    bool ok = false;
    for (auto* k : known) ok = ok || it.key() == k;
    if (!ok) bad("unknown key '" + it.key() + "'");
  }
  get("kind", c.kind);
  get("num_fields", c.num_fields);
  get("vocab", c.vocab);
  get("dim", c.dim);
  get("hidden", c.hidden);
  get("num_stages", c.num_stages);
  get("num_dense", c.num_dense);
  get("loss_weights", c.loss_weights);
  std::string pool = "sum";
  get("pool", pool);
  if (pool != "sum" && pool != "mean") bad("pool must be sum or mean, got '" + pool + "'");
  c.pool = pool == "sum" ? Pool::Sum : Pool::Mean;
  if (j.contains("options")) {
    if (!j.at("options").is_object()) bad("key 'options' must be a JSON object");
    c.options = j.at("options");
  }
  return c;
}

nlohmann::json parse_model_options(std::string_view text) {
  nlohmann::json out = nlohmann::json::object();
  std::vector<std::string> items;
  std::string cur;
  int depth = 0;
  for (char ch : text) {
    if (ch == '[' || ch == '{') ++depth;
    if (ch == ']' || ch == '}') --depth;
    if (ch == ',' && depth == 0) {
      items.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  items.push_back(cur);
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw GraphError("model options: expected KEY=VALUE, got '" + item + "'");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (out.contains(key)) throw GraphError("model options: '" + key + "' given twice");
    nlohmann::json v = nlohmann::json::parse(value, nullptr, false);
    out[key] = v.is_discarded() ? nlohmann::json(value) : v;
  }
  return out;
}

}  // namespace funnel
