#include <map>
#include <string>

#include "core/op.hpp"

namespace funnel {

namespace {
std::map<std::string, const Op*>& table() {
  static std::map<std::string, const Op*> t;
  return t;
}
}  // namespace

void register_op(const Op* op) { table()[op->name()] = op; }

const Op* find_op(const std::string& name) {
  auto it = table().find(name);
  return it == table().end() ? nullptr : it->second;
}

const Op& get_op(const std::string& name) {
  if (const Op* o = find_op(name)) return *o;
  std::string known;
  for (auto& [k, v] : table()) known += (known.empty() ? "" : ", ") + k;
  throw GraphError("unknown op '" + name + "' (known: " + known + ")");
}

std::vector<std::string> op_names() {
  std::vector<std::string> out;
  for (auto& [k, v] : table()) out.push_back(k);
  return out;
}

std::vector<const Op*> node_ops(const Graph& g) {
  std::vector<const Op*> ops(g.size(), nullptr);
  for (const Node& nd : g.nodes())
    if (nd.kind == NodeKind::Op) ops[nd.id] = &get_op(nd.op);
  return ops;
}

bool has_sparse_grad(const Graph& g, NodeId param) {
  if (g.node(param).kind != NodeKind::Param) return false;
  const auto uses = g.uses(param);
  for (const Graph::Use& u : uses)
    if (!get_op(g.node(u.consumer).op).sparse_grad(u.slot)) return false;
  return !uses.empty();
}

[[noreturn]] void shape_error(const Node& n, const std::vector<Shape>& in, const std::string& why) {
  std::string s = "node '" + n.name + "' (op " + n.op + "): " + why + "; input shapes:";
  for (std::size_t i = 0; i < in.size(); ++i) s += (i ? ", " : " ") + in[i].str();
  if (in.empty()) s += " none";
  throw ShapeError(s);
}

void expect_inputs(const Node& n, const std::vector<Shape>& in, std::size_t k) {
  if (in.size() != k)
    shape_error(n, in, "expects " + std::to_string(k) + " inputs, got " + std::to_string(in.size()));
}

}  // namespace funnel
