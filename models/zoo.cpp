#include "models/zoo.hpp"

#include "core/error.hpp"

namespace funnel {

namespace {

const char* tower_name(std::int64_t stage) {
  static const char* names[] = {"ctr_tower", "cvr_tower"};
  return stage < 2 ? names[stage] : nullptr;
}
std::string tower_scope(std::int64_t stage) {
  return stage < 2 ? tower_name(stage) : "stage" + std::to_string(stage) + "_tower";
}
std::string stage_label(std::int64_t stage) {
  return stage == 0 ? "click" : stage == 1 ? "ctcvr" : "stage" + std::to_string(stage);
}

struct Inputs {
  Var ids;
  Var dense;
  bool has_dense = false;
  std::vector<Var> labels;
};

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
    in.labels.push_back(input(g, stage_label(st), Shape{kBatch, 1}));
    h.labels.push_back(in.labels.back().id);
  }
  return in;
}

// Embedding layer in scope `scope`: table V×D, lookup of every field, flattened to B×(F·D) (+ dense features).
Var embed(Graph& g, const ModelConfig& c, const Inputs& in, const std::string& scope) {
  auto s = g.scope(scope);
  Var table = param(g, "table", Shape{c.vocab, c.dim}, Init::normal(0.05));
  Var e = embedding(table, in.ids, c.pool, "lookup");
  Var x = flatten(e, "flatten");
  if (in.has_dense) x = concat({x, in.dense}, 1, "concat_dense");
  return x;
}

// A tower: MLP with ReLU, a 1-unit logit layer and a sigmoid named `out`.
Var tower(Graph& g, const ModelConfig& c, Var x, const std::string& scope, const std::string& out) {
  auto s = g.scope(scope);
  Var h = mlp(x, c.hidden, Act::Relu);
  Var z = dense(h, 1, "logit");
  return sigmoid(z, out);
}

void add_loss(Graph& g, ModelHandle& h, Var l) {
  g.mark_loss(l.id);
  h.losses.push_back(l.id);
}

void check(const ModelConfig& c) {
  auto bad = [](const std::string& what) { throw GraphError("model config: " + what); };
  if (c.num_fields <= 0) bad("num_fields must be positive");
  if (c.vocab <= 0) bad("vocab must be positive");
  if (c.dim <= 0) bad("embedding dim must be positive");
  for (auto u : c.hidden)
    if (u <= 0) bad("hidden layer sizes must be positive");
  if (c.num_stages < 2) bad("a funnel has at least 2 stages (click, conversion)");
  if (c.num_stages > 2 && c.kind != "esmm") bad("only esmm supports more than 2 stages, got " + c.kind);
  if (c.num_dense < 0) bad("num_dense must be non-negative");
}

}  // namespace

std::vector<std::string> model_kinds() { return {"esmm", "base", "esmm-ns", "division"}; }

ModelHandle build_model(Graph& g, const ModelConfig& c) {
  check(c);
  if (g.size() != 0) throw GraphError("build_model needs an empty graph");
  ModelHandle h;
  h.kind = c.kind;
  Inputs in = make_inputs(g, c, h);
  const std::int64_t S = c.num_stages;

  if (c.kind == "esmm" || c.kind == "esmm-ns") {
    // ESMM: one shared embedding; ESMM-NS: one embedding per tower. One tower per stage, each giving the
    // conditional probability of that stage; cumulative products are the funnel's entire-space probabilities.
    Var shared;
    if (c.kind == "esmm") shared = embed(g, c, in, "embedding");
    std::vector<Var> cond;
    for (std::int64_t st = 0; st < S; ++st) {
      Var x = c.kind == "esmm" ? shared : embed(g, c, in, "embedding_" + tower_scope(st));
      std::string out = st == 0 ? "pctr" : st == 1 ? "pcvr" : "p" + std::to_string(st);
      cond.push_back(tower(g, c, x, tower_scope(st), out));
    }
    std::vector<Var> cum{cond[0]};
    {
      auto s = g.scope("product");
      for (std::int64_t st = 1; st < S; ++st)
        cum.push_back(mul(cum.back(), cond[static_cast<std::size_t>(st)],
                          st == 1 ? "pctcvr" : "p_reach" + std::to_string(st)));
    }
    {
      auto s = g.scope("loss");
      for (std::int64_t st = 0; st < S; ++st)
        add_loss(g, h, bce(cum[static_cast<std::size_t>(st)], in.labels[static_cast<std::size_t>(st)],
                           st == 0 ? "ctr" : st == 1 ? "ctcvr" : "stage" + std::to_string(st)));
    }
    h.pctr = cond[0].id;
    h.pcvr = cond[1].id;
    h.pctcvr = cum[1].id;
    for (auto& v : cum) h.stage_probs.push_back(v.id);
  } else if (c.kind == "base") {
    // BASE: a CTR model over all impressions and a CVR model trained on clicked impressions only (a masked BCE);
    // pCTCVR = pCTR × pCVR from the two separately trained models (disjoint parameters).
    Var pctr = tower(g, c, embed(g, c, in, "embedding_ctr"), "ctr_tower", "pctr");
    Var pcvr = tower(g, c, embed(g, c, in, "embedding_cvr"), "cvr_tower", "pcvr");
    Var pctcvr;
    {
      auto s = g.scope("product");
      pctcvr = mul(pctr, pcvr, "pctcvr");
    }
    {
      auto s = g.scope("loss");
      add_loss(g, h, bce(pctr, in.labels[0], "ctr"));
      // On clicked rows the conversion label equals the click·conversion label.
      add_loss(g, h, bce(pcvr, in.labels[1], in.labels[0], "cvr_on_clicks"));
    }
    h.pctr = pctr.id;
    h.pcvr = pcvr.id;
    h.pctcvr = pctcvr.id;
    h.stage_probs = {pctr.id, pctcvr.id};
  } else if (c.kind == "division") {
    // DIVISION: a CTR model and a CTCVR model trained separately over all impressions; pCVR = pCTCVR / pCTR,
    // clipped to [0, 1].
    Var pctr = tower(g, c, embed(g, c, in, "embedding_ctr"), "ctr_tower", "pctr");
    Var pctcvr = tower(g, c, embed(g, c, in, "embedding_ctcvr"), "ctcvr_tower", "pctcvr");
    Var pcvr;
    {
      auto s = g.scope("product");
      pcvr = divide(pctcvr, pctr, 0.0, 1.0, "pcvr");
    }
    {
      auto s = g.scope("loss");
      add_loss(g, h, bce(pctr, in.labels[0], "ctr"));
      add_loss(g, h, bce(pctcvr, in.labels[1], "ctcvr"));
    }
    h.pctr = pctr.id;
    h.pcvr = pcvr.id;
    h.pctcvr = pctcvr.id;
    h.stage_probs = {pctr.id, pctcvr.id};
  } else {
    throw GraphError("unknown model '" + c.kind + "' (known: esmm, base, esmm-ns, division)");
  }
  g.mark_output(h.pctr);
  g.mark_output(h.pcvr);
  g.mark_output(h.pctcvr);
  for (NodeId v : h.stage_probs) g.mark_output(v);
  h.loss_weights = c.loss_weights;
  if (h.loss_weights.empty()) h.loss_weights.assign(h.losses.size(), 1.0);
  if (h.loss_weights.size() != h.losses.size())
    throw GraphError("model config: " + std::to_string(c.loss_weights.size()) + " loss weights given, model has " +
                     std::to_string(h.losses.size()) + " losses");
  return h;
}

nlohmann::json to_json(const ModelConfig& c) {
  return nlohmann::json{{"kind", c.kind},           {"num_fields", c.num_fields}, {"vocab", c.vocab},
                        {"dim", c.dim},             {"hidden", c.hidden},         {"num_stages", c.num_stages},
                        {"num_dense", c.num_dense}, {"pool", c.pool == Pool::Sum ? "sum" : "mean"},
                        {"loss_weights", c.loss_weights}};
}

ModelConfig model_config_from_json(const nlohmann::json& j) {
  ModelConfig c;
  auto get = [&](const char* k, auto& dst) {
    if (!j.contains(k)) return;
    try {
      j.at(k).get_to(dst);
    } catch (const nlohmann::json::exception& e) {
      throw GraphError(std::string("model config: key '") + k + "' has the wrong type: " + e.what());
    }
  };
  if (!j.is_object()) throw GraphError("model config: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const char* known[] = {"kind", "num_fields", "vocab", "dim", "hidden", "num_stages", "num_dense", "pool",
                                  "loss_weights"};
    bool ok = false;
    for (auto* k : known) ok = ok || it.key() == k;
    if (!ok) throw GraphError("model config: unknown key '" + it.key() + "'");
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
  if (pool != "sum" && pool != "mean") throw GraphError("model config: pool must be sum or mean, got '" + pool + "'");
  c.pool = pool == "sum" ? Pool::Sum : Pool::Mean;
  return c;
}

}  // namespace funnel
