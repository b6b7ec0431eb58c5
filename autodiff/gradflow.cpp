#include "autodiff/gradflow.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "core/op.hpp"

namespace funnel {

std::size_t GradFlow::param_index(NodeId p) const {
  auto it = std::lower_bound(params.begin(), params.end(), p);
  if (it == params.end() || *it != p)
    throw GraphError("grad flow: node " + std::to_string(p) + " is not a parameter of the analysed graph");
  return static_cast<std::size_t>(it - params.begin());
}

std::size_t GradFlow::loss_index(NodeId l) const {
  auto it = std::lower_bound(losses.begin(), losses.end(), l);
  if (it == losses.end() || *it != l)
    throw GraphError("grad flow: node " + std::to_string(l) + " is not a loss of the analysed graph");
  return static_cast<std::size_t>(it - losses.begin());
}

const GradFlowEntry& GradFlow::at(NodeId param, NodeId loss) const {
  return table[param_index(param)][loss_index(loss)];
}

std::vector<std::size_t> GradFlow::node_losses(NodeId v) const {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < reach.size(); ++k)
    if (v < reach[k].size() && reach[k][v]) out.push_back(k);
  return out;
}

std::vector<std::size_t> GradFlow::edge_losses(NodeId v, std::size_t slot) const {
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < edge_reach.size(); ++k)
    if (v < edge_reach[k].size() && slot < edge_reach[k][v].size() && edge_reach[k][v][slot]) out.push_back(k);
  return out;
}

std::vector<std::string> GradFlow::disagreements() const {
  std::vector<std::string> out;
  if (!numeric) return out;
  for (std::size_t i = 0; i < params.size(); ++i)
    for (std::size_t k = 0; k < losses.size(); ++k) {
      const GradFlowEntry& e = table[i][k];
      const std::string where = "parameter #" + std::to_string(params[i]) + " / " + loss_names[k];
      if (!e.structural && e.nonzero)
        out.push_back(where + (e.value_only ? ": gradient stopped by design but non-zero gradient"
                                            : ": structurally unreachable but non-zero gradient"));
      if (!e.structural && !e.value_only && e.perturb_changes)
        out.push_back(where + ": the loss does not depend on it but moves");
      if (e.structural && !e.nonzero) out.push_back(where + ": reachable but the gradient is all zeros");
    }
  return out;
}

GradFlow structural_grad_flow(const Graph& g) {
  GradFlow gf;
  gf.params = g.params();
  gf.losses = g.losses();
  std::sort(gf.params.begin(), gf.params.end());
  std::sort(gf.losses.begin(), gf.losses.end());
  for (NodeId l : gf.losses) gf.loss_names.push_back(g.node(l).name);

  const std::size_t n = g.size();
  const auto& topo = g.topo_order();
  // The op of every node (nullptr for leaves), looked up once.
  const std::vector<const Op*> ops = node_ops(g);
  auto diff = [&](NodeId v, std::size_t s) { return ops[v] != nullptr && ops[v]->differentiable(s); };

  // dep[v]: v depends on a parameter through differentiable slots.
  std::vector<char> dep(n, 0);
  for (NodeId v : topo) {
    const Node& nd = g.node(v);
    if (nd.kind == NodeKind::Param) dep[v] = 1;
    for (std::size_t s = 0; s < nd.inputs.size(); ++s)
      if (diff(v, s) && dep[nd.inputs[s]]) dep[v] = 1;
  }

  // Ancestors of `loss` through the input slots `follow` accepts.
  auto ancestors = [&](NodeId loss, auto follow) {
    std::vector<char> anc(n, 0);
    anc[loss] = 1;
    for (auto r = topo.rbegin(); r != topo.rend(); ++r) {
      if (!anc[*r]) continue;
      const Node& nd = g.node(*r);
      for (std::size_t s = 0; s < nd.inputs.size(); ++s)
        if (follow(*r, s)) anc[nd.inputs[s]] = 1;
    }
    return anc;
  };
  std::vector<std::vector<char>> value_dep;  // value_dep[k][v]: loss k's value depends on v (any slot)
  gf.reach.assign(gf.losses.size(), std::vector<char>(n, 0));
  gf.edge_reach.resize(gf.losses.size());
  for (std::size_t k = 0; k < gf.losses.size(); ++k) {
    const std::vector<char> anc = ancestors(gf.losses[k], diff);
    value_dep.push_back(ancestors(gf.losses[k], [](NodeId, std::size_t) { return true; }));
    auto& reach = gf.reach[k];
    auto& edges = gf.edge_reach[k];
    edges.resize(n);
    for (std::size_t v = 0; v < n; ++v) {
      reach[v] = anc[v] && dep[v];
      const Node& nd = g.node(v);
      edges[v].assign(nd.inputs.size(), 0);
    }
    for (std::size_t v = 0; v < n; ++v) {
      if (!reach[v]) continue;
      const Node& nd = g.node(v);
      for (std::size_t s = 0; s < nd.inputs.size(); ++s)
        edges[v][s] = diff(v, s) && reach[nd.inputs[s]];
    }
  }

  gf.table.assign(gf.params.size(), std::vector<GradFlowEntry>(gf.losses.size()));
  for (std::size_t i = 0; i < gf.params.size(); ++i)
    for (std::size_t k = 0; k < gf.losses.size(); ++k) {
      GradFlowEntry& e = gf.table[i][k];
      e.structural = gf.reach[k][gf.params[i]] != 0;
      e.value_only = !e.structural && value_dep[k][gf.params[i]] != 0;
    }
  return gf;
}

void feed_random_batch(Executor<double>& ex, std::int64_t batch, std::mt19937_64& rng) {
  const Graph& g = ex.graph();
  if (batch <= 0) throw GraphError("feed_random_batch: batch must be positive, got " + std::to_string(batch));
  ex.set_batch(batch);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::bernoulli_distribution coin(0.5);
  for (const Node& nd : g.nodes()) {
    if (nd.kind == NodeKind::Input) {
      // Labels and weights: inputs that only feed slots passing no gradient.
      const auto uses = g.uses(nd.id);
      bool label = !uses.empty();
      for (const Graph::Use& u : uses)
        if (get_op(g.node(u.consumer).op).differentiable(u.slot)) label = false;
      Tensor<double>& x = ex.input(nd.id);
      if (label) {
        for (auto& v : x) v = coin(rng) ? 1.0 : 0.0;
        if (x.size() >= 2) {
          x.data()[0] = 1.0;
          x.data()[1] = 0.0;
        }
      } else {
        for (auto& v : x) v = normal(rng);
      }
    } else if (nd.kind == NodeKind::Ids) {
      // The smallest row count of the tables (rank-2 parameters) read next to these ids.
      std::int64_t rows = std::numeric_limits<std::int64_t>::max();
      for (NodeId c : g.consumers(nd.id))
        for (NodeId u : g.node(c).inputs) {
          const Node& un = g.node(u);
          if (u != nd.id && un.kind == NodeKind::Param && un.shape.rank() == 2 && un.shape[0] > 0)
            rows = std::min<std::int64_t>(rows, un.shape[0]);
        }
      if (rows == std::numeric_limits<std::int64_t>::max())
        throw GraphError("feed_random_batch: ids node '" + nd.name +
                         "' feeds no op that also reads a table parameter (rows × dim); cannot pick valid ids");
      std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
      IdBatch& b = ex.ids(nd.id);
      b.reset(batch, nd.num_fields);
      for (std::int64_t r = 0; r < batch * nd.num_fields; ++r) {
        b.push(pick(rng));
        b.end_cell();
      }
    }
  }
}

namespace {

double max_abs_grad(const Executor<double>& ex, NodeId p) {
  double m = 0.0;
  if (ex.is_sparse(p)) {
    for (double v : ex.sparse_grad(p).values) m = std::max(m, std::abs(v));
  } else {
    for (double v : ex.grad(p)) m = std::max(m, std::abs(v));
  }
  return m;
}

}  // namespace

GradFlow analyze_grad_flow(const Graph& g, const GradFlowOptions& opt) {
  GradFlow gf = structural_grad_flow(g);
  if (gf.losses.empty()) throw GraphError("grad flow: the graph has no loss (mark one with Graph::mark_loss)");
  if (!opt.numeric) return gf;

  Executor<double> ex(g);
  ex.init_params(opt.seed);
  std::mt19937_64 rng(opt.seed * 0x9E3779B97F4A7C15ull + 7);
  feed_random_batch(ex, opt.batch, rng);
  ex.forward(gf.losses);

  for (std::size_t k = 0; k < gf.losses.size(); ++k) {
    ex.backward(gf.losses[k]);
    for (std::size_t i = 0; i < gf.params.size(); ++i) {
      GradFlowEntry& e = gf.table[i][k];
      e.max_abs = max_abs_grad(ex, gf.params[i]);
      e.nonzero = e.max_abs > 0.0;
    }
  }

  if (opt.perturb) {
    std::vector<double> base;
    for (NodeId l : gf.losses) base.push_back(ex.scalar(l));
    std::normal_distribution<double> normal(0.0, 1.0);
    for (std::size_t i = 0; i < gf.params.size(); ++i) {
      Tensor<double>& w = ex.param(gf.params[i]);
      Tensor<double> saved = w;
      for (auto& v : w) v += 0.05 * normal(rng);
      ex.forward(gf.losses);
      for (std::size_t k = 0; k < gf.losses.size(); ++k)
        gf.table[i][k].perturb_changes = ex.scalar(gf.losses[k]) != base[k];
      w = saved;
    }
    ex.forward(gf.losses);
  }
  gf.numeric = true;
  return gf;
}

std::string to_text(const GradFlow& gf, const Graph& g) {
  // Cells first, then columns padded to their widest cell.
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"parameter"});
  for (const auto& ln : gf.loss_names) rows[0].push_back(ln);
  char buf[64];
  for (std::size_t i = 0; i < gf.params.size(); ++i) {
    std::vector<std::string> r{g.node(gf.params[i]).name};
    for (std::size_t k = 0; k < gf.losses.size(); ++k) {
      const GradFlowEntry& e = gf.table[i][k];
      std::string cell = e.structural ? "reaches" : e.value_only ? "stopped" : "-";
      if (gf.numeric) {
        std::snprintf(buf, sizeof buf, " max|g| %.3g%s", e.max_abs, e.perturb_changes ? ", moves" : "");
        cell += buf;
      }
      r.push_back(cell);
    }
    rows.push_back(std::move(r));
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t j = 0; j < r.size(); ++j) w[j] = std::max(w[j], r[j].size());
  std::ostringstream o;
  for (const auto& r : rows) {
    for (std::size_t j = 0; j < r.size(); ++j) {
      o << r[j];
      if (j + 1 < r.size()) o << std::string(w[j] - r[j].size() + 2, ' ');
    }
    o << '\n';
  }
  return o.str();
}

}  // namespace funnel
