#pragma once
/// @file
/// The computation graph: ops, names, scopes and shapes. It holds no tensor values, so it can be drawn,
/// checked and differentiated without being run. The edges are stored once, as each node's ordered inputs
/// (Node::inputs); an edge u -> v means "v reads u through input slot s". core/graph_boost.hpp makes a Graph itself a
/// Boost.Graph graph over that one store, and reachability comes from Boost.Graph's algorithms run on it. A node's
/// inputs must already be in the graph when it is added, so node ids (creation order) are a topological order.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.hpp"

namespace funnel {

/// Index of a node in its Graph: nodes are numbered 0, 1, 2, ... in the order they were added, and an id is only
/// meaningful for the graph that issued it.
using NodeId = std::size_t;

/// What a node is: a value fed per batch, a parameter, or the result of an op.
enum class NodeKind {
  Input,  ///< a dense tensor fed per batch (features, labels)
  Ids,    ///< categorical ids fed per batch (see core/ids.hpp)
  Param,  ///< a trainable parameter with an initializer
  Op,     ///< the result of an op
};
/// The kind's lower-case name ("input", "ids", "param", "op"), for messages and drawings.
const char* to_string(NodeKind k);

/// Parameter initializers. Deterministic: the stream of a parameter depends on the seed and its name only.
struct Init {
  /// Which distribution the values are drawn from; `a` and `b` hold its numbers.
  enum class Kind { Zeros, Constant, Normal, Uniform, GlorotUniform, HeNormal };
  Kind kind = Kind::Zeros;  ///< the distribution
  double a = 0.0;  ///< Constant: value; Normal: stddev; Uniform: low
  double b = 0.0;  ///< Uniform: high
  /// @{
  /// One per distribution: zeros; a constant `v`; normal with mean 0 and standard deviation `stddev`; uniform on
  /// [`lo`, `hi`); Glorot (Xavier) uniform and He normal, whose scale follows from the parameter's fan-in and fan-out
  /// when it is initialised.
  static Init zeros() { return {}; }
  static Init constant(double v) { return {Kind::Constant, v, 0}; }
  static Init normal(double stddev) { return {Kind::Normal, stddev, 0}; }
  static Init uniform(double lo, double hi) { return {Kind::Uniform, lo, hi}; }
  static Init glorot_uniform() { return {Kind::GlorotUniform, 0, 0}; }
  static Init he_normal() { return {Kind::HeNormal, 0, 0}; }
  /// @}
  /// Human-readable form, e.g. "normal(0.01)", as drawings and summaries print it.
  std::string str() const;
};

/// Op attributes: a few typed maps, ordered so that printing is deterministic.
struct Attrs {
  std::map<std::string, double> num;  ///< numeric attributes ("alpha" -> 0.2)
  std::map<std::string, std::string> str;  ///< string attributes ("pool" -> "sum")
  std::map<std::string, std::vector<std::int64_t>> ints;  ///< integer-list attributes ("perm" -> {1, 0})

  /// The numeric attribute `k`, or `dflt` when the node has none under that name.
  double get_num(const std::string& k, double dflt) const;
  /// The string attribute `k`, or `dflt` when the node has none under that name.
  std::string get_str(const std::string& k, const std::string& dflt) const;
  /// The integer-list attribute `k`, or null when absent. The pointer lives as long as this Attrs.
  const std::vector<std::int64_t>* get_ints(const std::string& k) const;
  std::string summary() const;  ///< "pool=sum, axis=1", for drawing
};

/// One node of a Graph: a fed value, a parameter or an op's result. Nodes are created by the Graph's add_*
/// functions and read through Graph::node(); their fields are never changed after creation except the output and loss
/// marks.
struct Node {
  NodeId id = 0;  ///< position in Graph::nodes()
  NodeKind kind = NodeKind::Op;  ///< fed value, parameter or op result
  std::string op;     ///< op name for Op nodes; "input", "ids", "param" otherwise
  std::string name;   ///< unique, scope-qualified: "ctr_tower/dense_0/w"
  std::string scope;  ///< "ctr_tower/dense_0" ("" at top level)
  Shape shape;  ///< the value's shape; the batch dimension is kBatch (core/shape.hpp)
  /// Op only: the nodes read, in the op's slot order; every one was added before this node.
  std::vector<NodeId> inputs;
  Attrs attrs;  ///< Op only: the attributes given to add_op
  std::shared_ptr<const void> params;  ///< Op only: attrs as the op parsed them once (Op::parse), or null
  Init init;                  ///< Param only
  std::int64_t num_fields = 0;  ///< Ids only: number of fields per row
  bool is_output = false;  ///< set by Graph::mark_output: a prediction column
  bool is_loss = false;  ///< set by Graph::mark_loss: a scalar the trainer minimises
};

class Graph;

/// One edge: node `consumer` reads its input slot `slot` (the source is consumer's inputs[slot]).
struct GraphEdge {
  NodeId consumer = 0;  ///< the node that reads
  std::size_t slot = 0;  ///< which of the consumer's inputs (an index into its Node::inputs)
  /// Two edges are equal when they name the same consumer and slot.
  bool operator==(const GraphEdge&) const = default;
};

/// RAII name scope: `auto s = g.scope("ctr_tower");` Nodes made while it lives get the prefix "ctr_tower/".
class ScopeGuard {
 public:
  /// Enters scope `name` (non-empty, without '/') of `g`; throws GraphError otherwise.
  ScopeGuard(Graph* g, const std::string& name);
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  /// Moves the scope's ownership; only the moved-to guard leaves the scope.
  ScopeGuard(ScopeGuard&& o) noexcept : g_(o.g_) { o.g_ = nullptr; }
  /// Leaves the scope (restores the enclosing scope's name).
  ~ScopeGuard();

 private:
  Graph* g_;
};

/// A computation graph under construction or complete: nodes in creation order, unique scope-qualified names, each
/// op node's shape inferred when it is added. Nodes are only ever appended and every input of a node is an earlier
/// node, so the graph is acyclic by construction.
///
/// Not thread-safe while being built. Once complete, its const members may be called from several threads, except that
/// the first call of topo_order() fills a cache: call it once before sharing the graph.
class Graph {
 public:
  Graph() = default;

  /// Leaves. `name` is a base name; the current scope is prepended and it must be unique.
  /// @{
  /// A dense input fed per batch (shape with kBatch first), categorical ids with `num_fields` fields per row (shape
  /// {kBatch, num_fields}; num_fields >= 1), or a trainable parameter of a fixed shape with positive dimensions and its
  /// initializer. Return the new node's id. Throw GraphError on an empty or duplicate name, ShapeError on a parameter
  /// dimension that is not positive.
  NodeId add_input(const std::string& name, Shape shape);
  NodeId add_ids(const std::string& name, std::int64_t num_fields);
  NodeId add_param(const std::string& name, Shape shape, Init init);
  /// @}
  /// An op node. `name` empty means "<op>" made unique with a counter. Runs the op's shape rule; a
  /// rejection throws ShapeError naming the node, the op and the input shapes.
  NodeId add_op(const std::string& op, std::vector<NodeId> inputs, Attrs attrs = {}, const std::string& name = "");

  /// Marks node `id` as a prediction column (what Predictor and the exporter read). Throws std::out_of_range for a
  /// foreign id.
  void mark_output(NodeId id);
  /// Marks node `id` as a loss; it must be a scalar. Throws ShapeError when it is not, std::out_of_range for a
  /// foreign id.
  void mark_loss(NodeId id);

  /// Enters a name scope until the returned guard is destroyed; see ScopeGuard.
  ScopeGuard scope(const std::string& name) { return ScopeGuard(this, name); }
  /// The current scope, "a/b" inside scope("a") then scope("b"), "" at top level.
  const std::string& current_scope() const { return scope_; }

  /// Number of nodes.
  std::size_t size() const { return nodes_.size(); }
  /// The node with id `id`; throws std::out_of_range for an id this graph did not issue.
  const Node& node(NodeId id) const { return nodes_.at(id); }
  /// All nodes, indexed by id.
  const std::vector<Node>& nodes() const { return nodes_; }
  /// The node with the full (scope-qualified) name `name`, if any.
  std::optional<NodeId> find(const std::string& name) const;
  NodeId at(const std::string& name) const;  ///< throws GraphError naming the missing node
  std::vector<NodeId> consumers(NodeId id) const;  ///< distinct, ascending
  /// Every read of `id`: the consumer and the input slot it reads `id` through, ordered by consumer then slot
  /// (a node read through two slots, x * x, appears twice). These are the out-edges of core/graph_boost.hpp.
  using Use = GraphEdge;
  /// The reads of `id` (see Use): one entry per (consumer, slot), ordered by consumer then slot.
  std::vector<Use> uses(NodeId id) const;
  /// @{
  /// Ids of the parameters, of the nodes marked as outputs, and of those marked as losses, each in ascending id order.
  std::vector<NodeId> params() const;
  std::vector<NodeId> outputs() const;
  std::vector<NodeId> losses() const;
  /// @}

  /// Topological order (inputs before consumers): the node ids in creation order, 0 .. size()-1, which is one
  /// because every input of a node was added before it (add_op and add_node check it).
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
