#include "core/graph.hpp"

#include <algorithm>
#include <cassert>
#include <iterator>
#include <numeric>
#include <sstream>

#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/reverse_graph.hpp>

#include "core/error.hpp"
#include "core/graph_boost.hpp"
#include "core/op.hpp"

namespace funnel {

const char* to_string(NodeKind k) {
  switch (k) {
    case NodeKind::Input: return "input";
    case NodeKind::Ids: return "ids";
    case NodeKind::Param: return "param";
    case NodeKind::Op: return "op";
  }
  return "?";
}

std::string Init::str() const {
  std::ostringstream o;
  switch (kind) {
    case Kind::Zeros: o << "zeros"; break;
    case Kind::Constant: o << "constant(" << a << ")"; break;
    case Kind::Normal: o << "normal(0, " << a << ")"; break;
    case Kind::Uniform: o << "uniform(" << a << ", " << b << ")"; break;
    case Kind::GlorotUniform: o << "glorot_uniform"; break;
    case Kind::HeNormal: o << "he_normal"; break;
  }
  return o.str();
}

double Attrs::get_num(const std::string& k, double dflt) const {
  auto it = num.find(k);
  return it == num.end() ? dflt : it->second;
}
std::string Attrs::get_str(const std::string& k, const std::string& dflt) const {
  auto it = str.find(k);
  return it == str.end() ? dflt : it->second;
}
const std::vector<std::int64_t>* Attrs::get_ints(const std::string& k) const {
  auto it = ints.find(k);
  return it == ints.end() ? nullptr : &it->second;
}
std::string Attrs::summary() const {
  std::ostringstream o;
  bool first = true;
  auto sep = [&] { if (!first) o << ", "; first = false; };
  for (auto& [k, v] : num) { sep(); o << k << "=" << v; }
  for (auto& [k, v] : str) { sep(); o << k << "=" << v; }
  for (auto& [k, v] : ints) {
    sep();
    o << k << "=[";
    for (std::size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    o << "]";
  }
  return o.str();
}

ScopeGuard::ScopeGuard(Graph* g, const std::string& name) : g_(g) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw GraphError("scope name must be non-empty and contain no '/': '" + name + "'");
  g_->scope_ = g_->scope_.empty() ? name : g_->scope_ + "/" + name;
}
ScopeGuard::~ScopeGuard() {
  if (!g_) return;
  auto pos = g_->scope_.rfind('/');
  g_->scope_ = pos == std::string::npos ? std::string() : g_->scope_.substr(0, pos);
}

std::string Graph::qualify(const std::string& base) {
  return scope_.empty() ? base : scope_ + "/" + base;
}

NodeId Graph::add_node(Node n) {
  if (n.name.empty()) throw GraphError("node name must not be empty");
  if (by_name_.count(n.name)) throw GraphError("duplicate node name '" + n.name + "'");
  n.id = nodes_.size();
  n.scope = scope_;
  for (std::size_t s = 0; s < n.inputs.size(); ++s)  // so that a node's inputs precede it (graph_boost.hpp)
    if (n.inputs[s] >= nodes_.size())
      throw GraphError("node '" + n.name + "': input " + std::to_string(s) + " is not a node of this graph");
  by_name_[n.name] = n.id;
  nodes_.push_back(std::move(n));
  topo_valid_ = false;
  return nodes_.back().id;
}

NodeId Graph::add_input(const std::string& name, Shape shape) {
  Node n;
  n.kind = NodeKind::Input;
  n.op = "input";
  n.name = qualify(name);
  n.shape = std::move(shape);
  return add_node(std::move(n));
}

NodeId Graph::add_ids(const std::string& name, std::int64_t num_fields) {
  if (num_fields <= 0) throw GraphError("ids node '" + qualify(name) + "' needs at least one field");
  Node n;
  n.kind = NodeKind::Ids;
  n.op = "ids";
  n.name = qualify(name);
  n.shape = Shape{kBatch, num_fields};
  n.num_fields = num_fields;
  return add_node(std::move(n));
}

NodeId Graph::add_param(const std::string& name, Shape shape, Init init) {
  for (Dim d : shape.dims)
    if (d <= 0)
      throw ShapeError("parameter '" + qualify(name) + "' must have positive fixed dimensions, got " + shape.str());
  Node n;
  n.kind = NodeKind::Param;
  n.op = "param";
  n.name = qualify(name);
  n.shape = std::move(shape);
  n.init = init;
  return add_node(std::move(n));
}

NodeId Graph::add_op(const std::string& op, std::vector<NodeId> inputs, Attrs attrs, const std::string& name) {
  const Op& o = get_op(op);
  Node n;
  n.kind = NodeKind::Op;
  n.op = op;
  if (name.empty()) {
    std::string base = qualify(op);
    int& c = counters_[base];
    std::string cand = c == 0 ? base : base + "_" + std::to_string(c);
    while (by_name_.count(cand)) cand = base + "_" + std::to_string(++c);
    ++c;
    n.name = cand;
  } else {
    n.name = qualify(name);
  }
  if (by_name_.count(n.name)) throw GraphError("duplicate node name '" + n.name + "'");
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  std::vector<Shape> in;
  for (NodeId i : n.inputs) {
    if (i >= nodes_.size()) throw GraphError("node '" + n.name + "': input is not a node of this graph");
    in.push_back(nodes_[i].shape);
  }
  if (o.arity() >= 0 && in.size() != static_cast<std::size_t>(o.arity()))
    shape_error(n, in, "expects " + std::to_string(o.arity()) + " inputs, got " + std::to_string(in.size()));
  if (o.arity() < 0 && in.empty()) shape_error(n, in, "expects at least one input");
  n.shape = o.infer(n, in);
  n.params = o.parse_params(n);
  return add_node(std::move(n));
}

void Graph::mark_output(NodeId id) { nodes_.at(id).is_output = true; }
void Graph::mark_loss(NodeId id) {
  Node& n = nodes_.at(id);
  if (!n.shape.dims.empty())
    throw ShapeError("node '" + n.name + "' cannot be a loss: a loss is a scalar, got shape " + n.shape.str());
  n.is_loss = true;
}

std::optional<NodeId> Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

NodeId Graph::at(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) throw GraphError("no node named '" + name + "' in the graph");
  return it->second;
}

std::vector<NodeId> Graph::consumers(NodeId id) const {
  std::vector<NodeId> out;
  for (auto [b, e] = out_edges(id, *this); b != e; ++b)  // consumer order: ascending already
    if (out.empty() || out.back() != b->consumer) out.push_back(b->consumer);
  return out;
}

std::vector<Graph::Use> Graph::uses(NodeId id) const {
  std::vector<Use> out;
  for (auto [b, e] = out_edges(id, *this); b != e; ++b) out.push_back(*b);  // consumer, then slot order
  return out;
}

static std::vector<NodeId> filter(const std::vector<Node>& ns, bool (*pred)(const Node&)) {
  std::vector<NodeId> out;
  for (const Node& n : ns)
    if (pred(n)) out.push_back(n.id);
  return out;
}
std::vector<NodeId> Graph::params() const {
  return filter(nodes_, [](const Node& n) { return n.kind == NodeKind::Param; });
}
std::vector<NodeId> Graph::outputs() const {
  return filter(nodes_, [](const Node& n) { return n.is_output; });
}
std::vector<NodeId> Graph::losses() const {
  return filter(nodes_, [](const Node& n) { return n.is_loss; });
}

namespace {

// A colour per node id, for Boost.Graph's depth-first algorithms.
using Colours = std::vector<boost::default_color_type>;
auto colour_map(Colours& c) { return boost::make_iterator_property_map(c.begin(), boost::identity_property_map()); }

// The nodes a depth-first walk of `bg` from `roots` visits, as a mask.
template <class BG>
std::vector<char> reach(const BG& bg, std::size_t n, const std::vector<NodeId>& roots) {
  Colours colour(n, boost::white_color);
  for (NodeId r : roots)
    if (colour.at(r) == boost::white_color)
      boost::depth_first_visit(bg, r, boost::default_dfs_visitor(), colour_map(colour));
  std::vector<char> mark(n, 0);
  for (std::size_t v = 0; v < n; ++v) mark[v] = colour[v] != boost::white_color;
  return mark;
}

}  // namespace

// No sort: add_node accepts a node only when each of its inputs is an earlier node, and a node's inputs never change
// afterwards (nodes_ is private; only the output and loss marks are set later), so creation order is a topological
// order. The ids are kept in a vector, extended as the graph grows, because callers take the order by reference.
const std::vector<NodeId>& Graph::topo_order() const {
  if (!topo_valid_) {
    const std::size_t had = topo_.size();
    topo_.resize(nodes_.size());
    std::iota(topo_.begin() + static_cast<std::ptrdiff_t>(had), topo_.end(), NodeId{had});
    for (std::size_t v = had; v < nodes_.size(); ++v)  // the invariant add_node enforces (Debug builds)
      for ([[maybe_unused]] NodeId u : nodes_[v].inputs) assert(u < v && "a node's inputs precede it");
    topo_valid_ = true;
  }
  return topo_;
}

std::vector<char> Graph::ancestors(const std::vector<NodeId>& targets) const {
  return reach(boost::make_reverse_graph(*this), nodes_.size(), targets);  // against the data flow: the inputs
}

std::vector<char> Graph::descendants(const std::vector<NodeId>& sources) const {
  return reach(*this, nodes_.size(), sources);
}

}  // namespace funnel
