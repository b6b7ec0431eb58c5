#include "exporter/onnx_export.hpp"

#include <map>
#include <set>

#include <onnx/onnx_pb.h>

#include "core/error.hpp"
#include "core/onnx_lowering.hpp"
#include "core/op.hpp"

namespace funnel {
namespace {

// Fills a protobuf graph from the lowerings of the inference nodes.
class ProtoEmitter final : public OnnxEmitter {
 public:
  ProtoEmitter(const Graph& g, onnx::GraphProto& out) : g_(g), out_(out) {}

  void set_node(const Node* n) { n_ = n; }
  // The ONNX value of funnel node `id` (its graph name; an Ids node's ids input is "ids", its weights "weights").
  void name_value(NodeId id, std::string name) { names_[id] = std::move(name); }
  void name_ids(NodeId id) {
    names_[id] = "ids";
    weights_[id] = "weights";
    offsets_[id] = "offsets";
  }
  const std::string& value(NodeId id) const {
    const auto it = names_.find(id);
    if (it == names_.end()) throw Error("onnx export: node '" + g_.node(id).name + "' has no value yet");
    return it->second;
  }

  std::string in(std::size_t slot) const override { return value(n_->inputs.at(slot)); }
  std::string weights(std::size_t slot) const override { return ids_part(weights_, slot); }
  std::string offsets(std::size_t slot) const override { return ids_part(offsets_, slot); }
  const Node& input_node(std::size_t slot) const override { return g_.node(n_->inputs.at(slot)); }
  std::string out() const override { return value(n_->id); }
  std::string temp(std::string_view hint) override {
    return (n_ ? n_->name : std::string("const")) + "/" + std::string(hint) + "_" + std::to_string(++counter_);
  }
  std::string constant(const std::vector<float>& values, const std::vector<std::int64_t>& dims) override {
    onnx::TensorProto* t = initializer(onnx::TensorProto::FLOAT, dims);
    for (float v : values) t->add_float_data(v);
    return t->name();
  }
  std::string constant_i64(const std::vector<std::int64_t>& values, const std::vector<std::int64_t>& dims) override {
    onnx::TensorProto* t = initializer(onnx::TensorProto::INT64, dims);
    for (auto v : values) t->add_int64_data(v);
    return t->name();
  }
  void node(std::string_view op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
            std::vector<OnnxAttr> attrs) override {
    onnx::NodeProto* p = out_.add_node();
    p->set_op_type(std::string(op_type));
    p->set_name(temp(op_type));
    for (auto& s : inputs) p->add_input(s);
    for (auto& s : outputs) p->add_output(s);
    for (const auto& a : attrs) {
      onnx::AttributeProto* q = p->add_attribute();
      q->set_name(a.name);
      switch (a.kind) {
        case OnnxAttr::Kind::Int: q->set_type(onnx::AttributeProto::INT); q->set_i(a.i); break;
        case OnnxAttr::Kind::Float: q->set_type(onnx::AttributeProto::FLOAT); q->set_f(a.f); break;
        case OnnxAttr::Kind::Ints:
          q->set_type(onnx::AttributeProto::INTS);
          for (auto v : a.ints) q->add_ints(v);
          break;
        case OnnxAttr::Kind::String: q->set_type(onnx::AttributeProto::STRING); q->set_s(a.s); break;
      }
    }
  }

 private:
  // The weights' or offsets' value of the Ids node in input `slot` of the current node.
  const std::string& ids_part(const std::map<NodeId, std::string>& part, std::size_t slot) const {
    const auto it = part.find(n_->inputs.at(slot));
    if (it == part.end())
      throw Error("onnx export: node '" + n_->name + "': input " + std::to_string(slot) + " is not an ids input");
    return it->second;
  }
  // A new initializer of element type `type` and `dims`, named like a temporary; the caller adds its values.
  onnx::TensorProto* initializer(int type, const std::vector<std::int64_t>& dims) {
    onnx::TensorProto* t = out_.add_initializer();
    t->set_name(temp("c"));
    t->set_data_type(type);
    for (auto d : dims) t->add_dims(d);
    return t;
  }

  const Graph& g_;
  onnx::GraphProto& out_;
  const Node* n_ = nullptr;
  std::map<NodeId, std::string> names_, weights_, offsets_;
  std::int64_t counter_ = 0;
};

// A graph input or output: element type and dims (a negative dim is symbolic, named `sym`).
void add_value_info(onnx::ValueInfoProto* v, const std::string& name, int elem,
                    const std::vector<std::pair<std::int64_t, std::string>>& dims) {
  v->set_name(name);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem);
  onnx::TensorShapeProto* s = t->mutable_shape();
  for (const auto& [d, sym] : dims) {
    auto* dim = s->add_dim();
    if (d < 0)
      dim->set_dim_param(sym);
    else
      dim->set_dim_value(d);
  }
}

std::vector<NodeId> column_nodes(const Model& m) {
  std::vector<NodeId> v;
  for (const auto& c : m.handle().columns) v.push_back(c.node);
  return v;
}

}  // namespace

std::vector<NodeId> inference_nodes(const Graph& g, const std::vector<NodeId>& targets) {
  const std::vector<char> need = g.ancestors(targets);
  std::vector<NodeId> order;
  for (NodeId id : g.topo_order())
    if (need[id]) order.push_back(id);
  return order;
}

std::vector<std::string> missing_onnx_lowerings(const Graph& g, const std::vector<NodeId>& targets) {
  std::vector<std::string> missing;
  for (NodeId id : inference_nodes(g, targets)) {
    const Node& n = g.node(id);
    if (n.kind == NodeKind::Op && !find_onnx_lowering(n.op))
      missing.push_back("node '" + n.name + "' (op " + n.op + ")");
  }
  return missing;
}

std::string export_onnx(const Model& m, const std::string& doc) {
  const Graph& g = m.graph();
  const ModelHandle& h = m.handle();
  const std::vector<NodeId> targets = column_nodes(m);
  const std::vector<std::string> missing = missing_onnx_lowerings(g, targets);
  if (!missing.empty()) {
    std::string list;
    for (const auto& s : missing) list += (list.empty() ? "" : ", ") + s;
    throw Error("onnx export: model '" + h.kind + "': no ONNX lowering for " + list);
  }

  onnx::ModelProto model;
  model.set_ir_version(8);  // the IR of opset 17 (ONNX 1.12)
  model.set_producer_name("funnel");
  model.set_model_version(1);
  model.set_doc_string(doc);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name(h.kind);
  ProtoEmitter e(g, *graph);

  const std::vector<NodeId> order = inference_nodes(g, targets);
  std::int64_t ids_fields = -1;  // the ids input's fields, once met
  std::vector<std::pair<std::int64_t, std::string>> dense_dims;  // the dense input's dims, once met
  for (NodeId id : order) {
    const Node& n = g.node(id);
    switch (n.kind) {
      case NodeKind::Ids:
        if (id != h.ids) throw Error("onnx export: ids node '" + n.name + "' is not the model's ids input");
        e.name_ids(id);
        ids_fields = n.num_fields;
        break;
      case NodeKind::Input: {
        if (h.dense.empty() || id != h.dense[0])
          throw Error("onnx export: the prediction columns depend on input '" + n.name +
                      "', which is not the model's dense input (a label?)");
        e.name_value(id, "dense");
        for (std::size_t k = 0; k < n.shape.rank(); ++k) dense_dims.push_back({n.shape[k], "batch"});
        break;
      }
      case NodeKind::Param: {
        e.name_value(id, n.name);
        const Tensor<float>& v = m.params().value(id);
        onnx::TensorProto* t = graph->add_initializer();
        t->set_name(n.name);
        t->set_data_type(onnx::TensorProto::FLOAT);
        for (auto d : v.shape()) t->add_dims(static_cast<std::int64_t>(d));
        if (static_cast<std::size_t>(n.shape.numel(1)) != v.size())
          throw Error("onnx export: parameter '" + n.name + "' holds " + std::to_string(v.size()) +
                      " values, its shape " + n.shape.str() + " needs " + std::to_string(n.shape.numel(1)));
        t->set_raw_data(v.data(), v.size() * sizeof(float));  // little-endian float32, as ONNX's raw_data
        break;
      }
      case NodeKind::Op: {
        e.name_value(id, n.name);
        e.set_node(&n);
        find_onnx_lowering(n.op)(e, n);
        e.set_node(nullptr);
        break;
      }
    }
  }
  // The inputs in a fixed order: ids, weights, offsets, dense (those the columns depend on).
  if (ids_fields >= 0) {
    add_value_info(graph->add_input(), "ids", onnx::TensorProto::INT64, {{-1, "n"}});
    add_value_info(graph->add_input(), "weights", onnx::TensorProto::FLOAT, {{-1, "n"}});
    add_value_info(graph->add_input(), "offsets", onnx::TensorProto::INT64, {{-1, "cells_plus_1"}});
  }
  if (!dense_dims.empty()) add_value_info(graph->add_input(), "dense", onnx::TensorProto::FLOAT, dense_dims);
  for (const auto& c : h.columns) {
    e.node("Identity", {e.value(c.node)}, {c.name}, {});
    add_value_info(graph->add_output(), c.name, onnx::TensorProto::FLOAT, {{-1, "batch"}, {1, ""}});
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("onnx export: the model does not serialize (over 2 GiB?)");
  return bytes;
}

nlohmann::json onnx_inputs_json(const Model& m, const nlohmann::json& data, std::int64_t step) {
  const ModelConfig& c = m.config();
  nlohmann::json j;
  j["format"] = "funnel.onnx_inputs";
  j["version"] = 1;
  j["model"] = c.kind;
  j["step"] = step;
  j["opset"] = kOnnxOpset;
  j["num_fields"] = c.num_fields;
  j["table_rows"] = c.vocab;
  j["num_dense"] = c.num_dense;
  nlohmann::json in = nlohmann::json::array();
  in.push_back({{"name", "ids"}, {"type", "int64"}, {"shape", {"n"}}});
  in.push_back({{"name", "weights"}, {"type", "float32"}, {"shape", {"n"}}});
  in.push_back({{"name", "offsets"}, {"type", "int64"}, {"shape", {"batch * num_fields + 1"}}});
  if (c.num_dense > 0) in.push_back({{"name", "dense"}, {"type", "float32"}, {"shape", {"batch", c.num_dense}}});
  j["inputs"] = in;
  j["outputs"] = m.handle().column_names();
  // How raw values become ids: the checkpoint's feature map (docs/onnx.md), or synthetic data's ids as they are.
  const std::string kind = data.is_object() ? data.value("kind", "") : "";
  if (kind == "mapped" && data.contains("map")) {
    j["feature_map"] = data.at("map");
    const nlohmann::json& map = data.at("map");
    if (map.value("kind", "") == "hash") {
      // The seed again as a decimal string: a JSON number loses bits of a 64-bit seed in most JSON readers.
      const auto seed = map.at("seed").get<std::uint64_t>();
      j["hash"] = {{"function", "funnel feature_hash (data/feature_map.hpp; docs/onnx.md)"},
                   {"seed", std::to_string(seed)},
                   {"row", "f * buckets + ((feature_hash(utf8(value), seed) * buckets) >> 64)"}};
    } else {
      j["vocab"] = {{"row", "base(f) + 1 + index of value in values[f], or base(f) when absent (out of vocabulary)"},
                    {"base", "base(0) = 0, base(f + 1) = base(f) + 1 + len(values[f])"}};
    }
    if (data.contains("columns")) j["csv_columns"] = data.at("columns");
  } else {
    j["feature_map"] = nullptr;
    j["synthetic"] = data;
  }
  return j;
}

}  // namespace funnel
