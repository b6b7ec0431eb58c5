#include "autodiff/surrogate.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace funnel {

std::vector<NodeId> gradient_stops(const Graph& g) {
  std::vector<NodeId> out;
  for (const Node& nd : g.nodes()) {
    if (nd.kind != NodeKind::Op || nd.inputs.empty()) continue;
    const Op& op = get_op(nd.op);
    bool any = false;
    for (std::size_t s = 0; s < nd.inputs.size(); ++s) any = any || op.differentiable(s);
    if (!any) out.push_back(nd.id);
  }
  return out;
}

Surrogate::Surrogate(const Executor<double>& src) : stops_(gradient_stops(src.graph())) {
  const Graph& og = src.graph();
  for (const Node& nd : og.nodes()) {
    NodeId id = 0;
    const bool stop = std::binary_search(stops_.begin(), stops_.end(), nd.id);
    switch (nd.kind) {
      case NodeKind::Input: id = g_.add_input(nd.name, nd.shape); break;
      case NodeKind::Ids: id = g_.add_ids(nd.name, nd.num_fields); break;
      case NodeKind::Param: id = g_.add_param(nd.name, nd.shape, nd.init); break;
      case NodeKind::Op:
        id = stop ? g_.add_input(nd.name, nd.shape) : g_.add_op(nd.op, nd.inputs, nd.attrs, nd.name);
        break;
    }
    if (id != nd.id) throw GraphError("surrogate graph: node '" + nd.name + "' changed id");
    if (nd.is_output) g_.mark_output(id);
    if (nd.is_loss) g_.mark_loss(id);
  }
  ex_ = std::make_unique<Executor<double>>(g_);
}

void Surrogate::sync(Executor<double>& src) {
  const Graph& og = src.graph();
  ex_->set_batch(src.batch());
  for (const Node& nd : og.nodes()) {
    if (nd.kind == NodeKind::Input) ex_->input(nd.id) = src.input(nd.id);
    else if (nd.kind == NodeKind::Ids) ex_->ids(nd.id) = src.ids(nd.id);
  }
  for (NodeId p : src.params()) ex_->param(p) = src.param(p);
  for (NodeId s : stops_) ex_->input(s) = src.value(s);
}

}  // namespace funnel
