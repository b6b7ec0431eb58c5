#include "models/blocks.hpp"

#include "core/error.hpp"

namespace funnel::blocks {

std::string tower_scope(std::int64_t stage) {
  return stage == 0 ? "ctr_tower" : stage == 1 ? "cvr_tower" : "stage" + std::to_string(stage) + "_tower";
}
std::string cond_name(std::int64_t stage) {
  if (stage == 0) return "pctr";
  if (stage == 1) return "pcvr";
  // Appended rather than "p" + to_string(...): GCC 12 warns falsely (-Wstringop-overflow) on the one-character
  // literal's operator+.
  std::string name = "p";
  name += std::to_string(stage);
  return name;
}
std::string reach_name(std::int64_t stage) {
  return stage == 0 ? "pctr" : stage == 1 ? "pctcvr" : "p_reach" + std::to_string(stage);
}
std::string loss_name(std::int64_t stage) {
  return stage == 0 ? "ctr" : stage == 1 ? "ctcvr" : "stage" + std::to_string(stage);
}

namespace {
std::string label_name(std::int64_t stage) {
  return stage == 0 ? "click" : stage == 1 ? "ctcvr" : "stage" + std::to_string(stage);
}
}  // namespace

Inputs make_inputs(Graph& g, const ModelConfig& c, ModelHandle& h) {
  Inputs in;
  auto s = g.scope("input");
  in.ids = ids(g, "ids", c.num_fields);
  h.ids = in.ids.id;
  if (c.num_dense > 0) {
    in.dense = input(g, "dense", Shape{kBatch, c.num_dense});
    in.has_dense = true;
    h.dense.push_back(in.dense.id);
  }
  for (std::int64_t st = 0; st < c.num_stages; ++st) {
    in.labels.push_back(input(g, label_name(st), Shape{kBatch, 1}));
    h.labels.push_back(in.labels.back().id);
  }
  return in;
}

Var embed(Graph& g, const ModelConfig& c, const Inputs& in, const std::string& scope) {
  auto s = g.scope(scope);
  Var table = param(g, "table", Shape{c.vocab, c.dim}, Init::normal(0.05));
  Var e = embedding(table, in.ids, c.pool, "lookup");
  Var x = flatten(e, "flatten");
  if (in.has_dense) x = concat({x, in.dense}, 1, "concat_dense");
  return x;
}

Var tower(Graph& g, const std::vector<std::int64_t>& hidden, Var x, const std::string& scope,
          const std::string& out) {
  auto s = g.scope(scope);
  Var h = mlp(x, hidden, Act::Relu);
  Var z = dense(h, 1, "logit");
  return sigmoid(z, out);
}

Var tower(Graph& g, const ModelConfig& c, Var x, const std::string& scope, const std::string& out) {
  return tower(g, c.hidden, x, scope, out);
}

Var log_prob(Var p, const std::string& name) {
  const Node& n = p.g->node(p.id);
  if (n.kind != NodeKind::Op || n.op != "sigmoid" || n.inputs.size() != 1)
    throw GraphError("log_prob: node '" + n.name + "' is not a sigmoid of a logit (a loss in log space needs the logit)");
  return log_sigmoid(Var{p.g, n.inputs[0]}, name);
}

void add_loss(Graph& g, ModelHandle& h, Var l) {
  g.mark_loss(l.id);
  h.losses.push_back(l.id);
  const std::string& n = g.node(l.id).name;
  const auto pos = n.rfind('/');
  h.loss_names.push_back(pos == std::string::npos ? n : n.substr(pos + 1));
}

void entire_space_funnel(Graph& g, const Inputs& in, const std::vector<Var>& cond, ModelHandle& h) {
  const auto S = static_cast<std::int64_t>(cond.size());
  std::vector<Var> cum{cond[0]};
  {
    auto s = g.scope("product");
    for (std::int64_t st = 1; st < S; ++st) cum.push_back(mul(cum.back(), cond[static_cast<std::size_t>(st)], reach_name(st)));
  }
  {
    auto s = g.scope("loss");
    Var log_reach;
    for (std::int64_t st = 0; st < S; ++st) {
      const auto k = static_cast<std::size_t>(st);
      Var log_cond = log_prob(cond[k], "log_" + cond_name(st));
      log_reach = st == 0 ? log_cond : add(log_reach, log_cond, "log_" + reach_name(st));
      add_loss(g, h, bce_logprob(log_reach, in.labels[k], loss_name(st)));
    }
  }
  two_stage_outputs(h, cond[0], cond[1], cum[1]);
  for (std::int64_t st = 2; st < S; ++st) {
    const auto k = static_cast<std::size_t>(st);
    h.stage_probs.push_back(cum[k].id);
    h.cond_probs.push_back(cond[k].id);
    h.columns.push_back({cond_name(st), cond[k].id});
    h.columns.push_back({reach_name(st), cum[k].id});
  }
}

ModelHandle separate_models(Graph& g, const ModelConfig& c, const SeparateModels& m) {
  ModelHandle h;
  const Inputs in = make_inputs(g, c, h);
  Var pctr = tower(g, c, embed(g, c, in, "embedding_ctr"), "ctr_tower", "pctr");
  Var second = tower(g, c, embed(g, c, in, "embedding_" + m.tag), m.tag + "_tower", m.out);
  Var third;
  {
    auto s = g.scope("product");
    third = m.combine(pctr, second);
  }
  {
    auto s = g.scope("loss");
    add_loss(g, h, bce_logprob(log_prob(pctr, "log_pctr"), in.labels[0], "ctr"));
    add_loss(g, h, m.second_loss(in, second));
  }
  if (m.second_is_cvr) two_stage_outputs(h, pctr, second, third);
  else two_stage_outputs(h, pctr, third, second);
  return h;
}

void two_stage_outputs(ModelHandle& h, Var pctr, Var pcvr, Var pctcvr) {
  h.stage_probs = {pctr.id, pctcvr.id};
  h.cond_probs = {pctr.id, pcvr.id};
  h.columns = {{"pctr", pctr.id}, {"pcvr", pcvr.id}, {"pctcvr", pctcvr.id}};
}

}  // namespace funnel::blocks
