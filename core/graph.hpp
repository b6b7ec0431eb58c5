#pragma once
/// @file
/// The computation graph: ops, names, scopes and shapes. It holds no tensor values, so it can be drawn,
/// checked and differentiated without being run. The edges are stored once, as each node's ordered inputs
/// (Node::inputs); an edge u -> v means "v reads u through input slot s". core/graph_boost.hpp makes a Graph itself a
/// Boost.Graph graph over that one store, and the topological order and reachability come from Boost.Graph's
/// algorithms run on it.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.hpp"

namespace funnel {

using NodeId = std::size_t;

enum class NodeKind {
  Input,  ///< a dense tensor fed per batch (features, labels)
  Ids,    ///< categorical ids fed per batch (see core/ids.hpp)
  Param,  ///< a trainable parameter with an initializer
  Op,     ///< the result of an op
};
const char* to_string(NodeKind k);

/// Parameter initializers. Deterministic: the stream of a parameter depends on the seed and its name only.
struct Init {
  enum class Kind { Zeros, Constant, Normal, Uniform, GlorotUniform, HeNormal };
  Kind kind = Kind::Zeros;
  double a = 0.0;  ///< Constant: value; Normal: stddev; Uniform: low
  double b = 0.0;  ///< Uniform: high
  static Init zeros() { return {}; }
  static Init constant(double v) { return {Kind::Constant, v, 0}; }
  static Init normal(double stddev) { return {Kind::Normal, stddev, 0}; }
  static Init uniform(double lo, double hi) { return {Kind::Uniform, lo, hi}; }
  static Init glorot_uniform() { return {Kind::GlorotUniform, 0, 0}; }
  static Init he_normal() { return {Kind::HeNormal, 0, 0}; }
  std::string str() const;
};

/// Op attributes: a few typed maps, ordered so that printing is deterministic.
struct Attrs {
  std::map<std::string, double> num;
  std::map<std::string, std::string> str;
  std::map<std::string, std::vector<std::int64_t>> ints;

  double get_num(const std::string& k, double dflt) const;
  std::string get_str(const std::string& k, const std::string& dflt) const;
  const std::vector<std::int64_t>* get_ints(const std::string& k) const;
  std::string summary() const;  ///< "pool=sum, axis=1", for drawing
};

struct Node {
  NodeId id = 0;
  NodeKind kind = NodeKind::Op;
  std::string op;     ///< op name for Op nodes; "input", "ids", "param" otherwise
  std::string name;   ///< unique, scope-qualified: "ctr_tower/dense_0/w"
  std::string scope;  ///< "ctr_tower/dense_0" ("" at top level)
  Shape shape;
  std::vector<NodeId> inputs;
  Attrs attrs;
  std::shared_ptr<const void> params;  ///< Op only: attrs as the op parsed them once (Op::parse), or null
  Init init;                  ///< Param only
  std::int64_t num_fields = 0;  ///< Ids only: number of fields per row
  bool is_output = false;
  bool is_loss = false;
};

class Graph;

/// One edge: node `consumer` reads its input slot `slot` (the source is consumer's inputs[slot]).
struct GraphEdge {
  NodeId consumer = 0;
  std::size_t slot = 0;
  bool operator==(const GraphEdge&) const = default;
};

/// RAII name scope: `auto s = g.scope("ctr_tower");` Nodes made while it lives get the prefix "ctr_tower/".
class ScopeGuard {
 public:
  ScopeGuard(Graph* g, const std::string& name);
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ScopeGuard(ScopeGuard&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
  ~ScopeGuard();

 private:
  Graph* g_;
};

class Graph {
 public:
  Graph() = default;

  /// Leaves. `name` is a base name; the current scope is prepended and it must be unique.
  NodeId add_input(const std::string& name, Shape shape);
  NodeId add_ids(const std::string& name, std::int64_t num_fields);
  NodeId add_param(const std::string& name, Shape shape, Init init);
  /// An op node. `name` empty means "<op>" made unique with a counter. Runs the op's shape rule; a
  /// rejection throws ShapeError naming the node, the op and the input shapes.
  NodeId add_op(const std::string& op, std::vector<NodeId> inputs, Attrs attrs = {}, const std::string& name = "");

  void mark_output(NodeId id);
  void mark_loss(NodeId id);

  ScopeGuard scope(const std::string& name) { return ScopeGuard(this, name); }
  const std::string& current_scope() const { return scope_; }

  std::size_t size() const { return nodes_.size(); }
  const Node& node(NodeId id) const { return nodes_.at(id); }
  const std::vector<Node>& nodes() const { return nodes_; }
  std::optional<NodeId> find(const std::string& name) const;
  NodeId at(const std::string& name) const;  ///< throws GraphError naming the missing node
  std::vector<NodeId> consumers(NodeId id) const;  ///< distinct, ascending
  /// Every read of `id`: the consumer and the input slot it reads `id` through, ordered by consumer then slot
  /// (a node read through two slots, x * x, appears twice). These are the out-edges of core/graph_boost.hpp.
  using Use = GraphEdge;
  std::vector<Use> uses(NodeId id) const;
  std::vector<NodeId> params() const;
  std::vector<NodeId> outputs() const;
  std::vector<NodeId> losses() const;

  /// Topological order (inputs before consumers): Boost.Graph's topological_sort on this graph, cached.
  const std::vector<NodeId>& topo_order() const;
  /// Nodes from which `targets` can be reached (including the targets), as a mask: a Boost.Graph depth-first walk
  /// of the reversed graph (along each node's inputs).
  std::vector<char> ancestors(const std::vector<NodeId>& targets) const;
  /// Nodes reachable from `sources` (including the sources), as a mask: a depth-first walk along the reads.
  std::vector<char> descendants(const std::vector<NodeId>& sources) const;

 private:
  friend class ScopeGuard;
  NodeId add_node(Node n);
  std::string qualify(const std::string& base);

  std::vector<Node> nodes_;
  std::map<std::string, NodeId> by_name_;
  std::map<std::string, int> counters_;
  std::string scope_;
  mutable std::vector<NodeId> topo_;
  mutable bool topo_valid_ = false;
};

}  // namespace funnel
