// Model zoo: the structure of each model (embeddings, towers, losses, outputs), its numerics on a small batch
// (pCTCVR = pCTR·pCVR, DIVISION's clipped pCVR, the loss values), config validation and the JSON round trip.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/error.hpp"
#include "models/zoo.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

ModelConfig small(const std::string& kind) {
  ModelConfig c;
  c.kind = kind;
  c.num_fields = 3;
  c.vocab = 30;
  c.dim = 3;
  c.hidden = {5, 4};
  return c;
}

std::vector<NodeId> tables(const Graph& g) {
  std::vector<NodeId> out;
  for (NodeId p : g.params()) {
    const std::string& n = g.node(p).name;
    if (n.size() >= 6 && n.compare(n.size() - 6, 6, "/table") == 0) out.push_back(p);
  }
  return out;
}

std::vector<NodeId> ops_named(const Graph& g, const std::string& op) {
  std::vector<NodeId> out;
  for (const Node& n : g.nodes())
    if (n.kind == NodeKind::Op && n.op == op) out.push_back(n.id);
  return out;
}

std::vector<std::string> names(const Graph& g, const std::vector<NodeId>& ids) {
  std::vector<std::string> out;
  for (NodeId v : ids) out.push_back(g.node(v).name);
  return out;
}

bool in_scope(const Graph& g, NodeId v, const std::string& scope) {
  return g.node(v).name.rfind(scope + "/", 0) == 0;
}

// Fills ids (a repeated id included), consistent 0/1 labels (ctcvr ≤ click) and dense features.
template <class T>
void feed(Executor<T>& ex, const ModelHandle& h, const ModelConfig& c, std::int64_t B, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> id(0, c.vocab - 1);
  ex.set_batch(B);
  IdBatch& ib = ex.ids(h.ids);
  ib.reset(B, c.num_fields);
  for (std::int64_t k = 0; k < B * c.num_fields; ++k) {
    ib.push(k == 4 ? ib.ids[0] : id(rng));
    ib.end_cell();
  }
  std::bernoulli_distribution coin(0.5);
  for (std::int64_t r = 0; r < B; ++r) {
    bool reached = true;
    for (std::size_t s = 0; s < h.labels.size(); ++s) {
      reached = reached && (r < 2 ? r == 0 || s == 0 : coin(rng));  // row 0 reaches every stage, row 1 clicks only
      ex.input(h.labels[s]).data()[r] = reached ? T(1) : T(0);
    }
  }
  std::normal_distribution<double> nd(0.0, 1.0);
  for (NodeId d : h.dense)
    for (auto& v : ex.input(d)) v = static_cast<T>(nd(rng));
}

double bce(double p, double y) { return -(y * std::log(p) + (1 - y) * std::log(1 - p)); }

}  // namespace

TEST_CASE("model_kinds lists the four models", "[models][zoo]") {
  CHECK(model_kinds() == std::vector<std::string>{"esmm", "base", "esmm-ns", "division"});
}

TEST_CASE("every zoo model exposes ids, labels, B×1 outputs and scalar losses", "[models][zoo]") {
  for (const auto& kind : model_kinds()) {
    INFO(kind);
    Graph g;
    ModelHandle h = build_model(g, small(kind));
    CHECK(h.kind == kind);
    CHECK(g.node(h.ids).kind == NodeKind::Ids);
    CHECK(g.node(h.ids).num_fields == 3);
    CHECK(h.dense.empty());
    REQUIRE(h.labels.size() == 2);
    for (NodeId l : h.labels) {
      CHECK(g.node(l).kind == NodeKind::Input);
      CHECK(g.node(l).shape == Shape{kBatch, 1});
    }
    for (NodeId o : {h.pctr, h.pcvr, h.pctcvr}) {
      CHECK(g.node(o).shape == Shape{kBatch, 1});
      CHECK(g.node(o).is_output);
    }
    CHECK(h.pctr != h.pcvr);
    CHECK(h.pcvr != h.pctcvr);
    CHECK(h.stage_probs == std::vector<NodeId>{h.pctr, h.pctcvr});
    REQUIRE(h.losses.size() == 2);
    CHECK(g.losses() == h.losses);
    for (NodeId l : h.losses) CHECK(g.node(l).shape == Shape{});
    CHECK(h.loss_weights == std::vector<double>{1.0, 1.0});
    // Every parameter reaches some loss.
    auto anc = g.ancestors(h.losses);
    for (NodeId p : g.params()) {
      INFO(g.node(p).name);
      CHECK(anc[p]);
    }
  }
}

TEST_CASE("ESMM: one shared embedding table, two towers, losses ctr and ctcvr on pctr and pctcvr", "[models][zoo]") {
  Graph g;
  ModelHandle h = build_model(g, small("esmm"));
  auto t = tables(g);
  REQUIRE(t.size() == 1);
  CHECK(g.node(t[0]).name == "embedding/table");
  CHECK(g.node(t[0]).shape == Shape{30, 3});
  CHECK(ops_named(g, "embedding").size() == 1);  // one lookup feeds both towers
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr"});
  CHECK(g.node(h.pctr).name == "ctr_tower/pctr");
  CHECK(g.node(h.pcvr).name == "cvr_tower/pcvr");
  CHECK(g.node(h.pctcvr).name == "product/pctcvr");
  CHECK(g.node(h.pctcvr).op == "mul");
  CHECK(g.node(h.pctcvr).inputs == std::vector<NodeId>{h.pctr, h.pcvr});
  // ctr loss: BCE(pctr, click); ctcvr loss: BCE(pctcvr, click·conversion). pcvr itself has no loss.
  CHECK(g.node(h.losses[0]).inputs == std::vector<NodeId>{h.pctr, h.labels[0]});
  CHECK(g.node(h.losses[1]).inputs == std::vector<NodeId>{h.pctcvr, h.labels[1]});
  CHECK(g.node(h.labels[0]).name == "input/click");
  CHECK(g.node(h.labels[1]).name == "input/ctcvr");
  // The towers: hidden {5, 4} then a 1-unit logit; first layer reads F·D = 9 features.
  for (const std::string tower : {"ctr_tower", "cvr_tower"}) {
    CHECK(g.node(g.at(tower + "/dense_0/w")).shape == Shape{9, 5});
    CHECK(g.node(g.at(tower + "/dense_1/w")).shape == Shape{5, 4});
    CHECK(g.node(g.at(tower + "/logit/w")).shape == Shape{4, 1});
  }
  std::size_t ctr_params = 0, cvr_params = 0;
  for (NodeId p : g.params()) {
    ctr_params += in_scope(g, p, "ctr_tower");
    cvr_params += in_scope(g, p, "cvr_tower");
  }
  CHECK(ctr_params == 6);
  CHECK(cvr_params == 6);
  CHECK(g.params().size() == 13);
}

TEST_CASE("ESMM-NS, BASE and DIVISION have two embedding tables and their own losses", "[models][zoo]") {
  struct Case {
    std::string kind;
    std::vector<std::string> tables, losses;
  };
  for (const Case& c : {Case{"esmm-ns", {"embedding_ctr_tower/table", "embedding_cvr_tower/table"}, {"loss/ctr", "loss/ctcvr"}},
                        Case{"base", {"embedding_ctr/table", "embedding_cvr/table"}, {"loss/ctr", "loss/cvr_on_clicks"}},
                        Case{"division", {"embedding_ctr/table", "embedding_ctcvr/table"}, {"loss/ctr", "loss/ctcvr"}}}) {
    INFO(c.kind);
    Graph g;
    ModelHandle h = build_model(g, small(c.kind));
    CHECK(names(g, tables(g)) == c.tables);
    CHECK(ops_named(g, "embedding").size() == 2);
    CHECK(names(g, h.losses) == c.losses);
    // The two halves share no parameter: each table feeds one tower only.
    for (NodeId t : tables(g)) CHECK(g.consumers(t).size() == 1);
  }
  Graph g;
  ModelHandle h = build_model(g, small("base"));
  // BASE's CVR loss is the BCE of pcvr against the ctcvr label, weighted by the click label.
  CHECK(g.node(h.losses[1]).inputs == std::vector<NodeId>{h.pcvr, h.labels[1], h.labels[0]});
  Graph gd;
  ModelHandle hd = build_model(gd, small("division"));
  CHECK(gd.node(hd.pcvr).op == "divide");
  CHECK(gd.node(hd.pcvr).inputs == std::vector<NodeId>{hd.pctcvr, hd.pctr});
  CHECK(gd.node(hd.pcvr).attrs.get_num("lo", -1) == 0.0);
  CHECK(gd.node(hd.pcvr).attrs.get_num("hi", -1) == 1.0);
}

TEST_CASE("ESMM with three stages: three towers, labels, cumulative products and losses", "[models][zoo]") {
  ModelConfig c = small("esmm");
  c.num_stages = 3;
  Graph g;
  ModelHandle h = build_model(g, c);
  REQUIRE(h.labels.size() == 3);
  CHECK(g.node(h.labels[2]).name == "input/stage2");
  REQUIRE(h.losses.size() == 3);
  CHECK(names(g, h.losses) == std::vector<std::string>{"loss/ctr", "loss/ctcvr", "loss/stage2"});
  REQUIRE(h.stage_probs.size() == 3);
  CHECK(h.stage_probs[0] == h.pctr);
  CHECK(h.stage_probs[1] == h.pctcvr);
  const Node& reach = g.node(h.stage_probs[2]);
  CHECK(reach.op == "mul");
  CHECK(reach.inputs[0] == h.pctcvr);
  CHECK(g.node(reach.inputs[1]).name == "stage2_tower/p2");
  CHECK(tables(g).size() == 1);
  CHECK(g.node(h.losses[2]).inputs == std::vector<NodeId>{h.stage_probs[2], h.labels[2]});
  CHECK(h.loss_weights.size() == 3);

  Executor<double> ex(g);
  ex.init_params(3);
  feed(ex, h, c, 6, 1);
  ex.forward();
  for (std::size_t r = 0; r < 6; ++r)
    CHECK(ex.value(h.stage_probs[2])(r, 0) == ex.value(h.pctcvr)(r, 0) * ex.value(reach.inputs[1])(r, 0));
}

TEST_CASE("dense features are concatenated to the embeddings", "[models][zoo]") {
  for (const auto& kind : model_kinds()) {
    INFO(kind);
    ModelConfig c = small(kind);
    c.num_dense = 2;
    Graph g;
    ModelHandle h = build_model(g, c);
    REQUIRE(h.dense.size() == 1);
    CHECK(g.node(h.dense[0]).shape == Shape{kBatch, 2});
    CHECK(g.node(h.dense[0]).name == "input/dense");
    for (const Node& n : g.nodes())
      if (n.kind == NodeKind::Param && n.name.find("dense_0/w") != std::string::npos) {
        INFO(n.name);
        CHECK(n.shape == Shape{11, 5});  // F·D + num_dense
      }
    Executor<float> ex(g);
    ex.init_params(1);
    feed(ex, h, c, 5, 2);
    CHECK_NOTHROW(ex.forward());
  }
}

TEST_CASE("forward numerics: probabilities, pCTCVR = pCTR·pCVR, DIVISION's clipped ratio, loss values",
          "[models][zoo]") {
  for (const auto& kind : model_kinds()) {
    INFO(kind);
    ModelConfig c = small(kind);
    Graph g;
    ModelHandle h = build_model(g, c);
    Executor<double> ex(g);
    ex.init_params(7);
    feed(ex, h, c, 6, 3);
    ex.forward();
    const auto& ctr = ex.value(h.pctr);
    const auto& cvr = ex.value(h.pcvr);
    const auto& ctcvr = ex.value(h.pctcvr);
    const auto& click = ex.input(h.labels[0]);
    const auto& conv = ex.input(h.labels[1]);
    double l_ctr = 0, l_second = 0, clicks = 0;
    for (std::size_t r = 0; r < 6; ++r) {
      CHECK((ctr(r, 0) > 0 && ctr(r, 0) < 1));
      CHECK((cvr(r, 0) >= 0 && cvr(r, 0) <= 1));
      CHECK((ctcvr(r, 0) > 0 && ctcvr(r, 0) < 1));
      CHECK(conv(r, 0) <= click(r, 0));
      if (kind == "division") {
        CHECK(cvr(r, 0) == Approx(std::min(1.0, ctcvr(r, 0) / ctr(r, 0))).epsilon(1e-12));
      } else {
        CHECK(ctcvr(r, 0) == ctr(r, 0) * cvr(r, 0));
      }
      l_ctr += bce(ctr(r, 0), click(r, 0));
      if (kind == "base") {
        l_second += click(r, 0) * bce(cvr(r, 0), conv(r, 0));
        clicks += click(r, 0);
      } else {
        l_second += bce(ctcvr(r, 0), conv(r, 0));
      }
    }
    CHECK(ex.scalar(h.losses[0]) == Approx(l_ctr / 6).epsilon(1e-10));
    CHECK(ex.scalar(h.losses[1]) == Approx(kind == "base" ? l_second / clicks : l_second / 6).epsilon(1e-10));
  }
}

TEST_CASE("DIVISION clips pCVR to [0, 1] when pCTCVR exceeds pCTR", "[models][zoo]") {
  ModelConfig c = small("division");
  Graph g;
  ModelHandle h = build_model(g, c);
  Executor<double> ex(g);
  ex.init_params(1);
  // Push the CTCVR logit up and the CTR logit down.
  ex.param("ctcvr_tower/logit/b").fill(6.0);
  ex.param("ctr_tower/logit/b").fill(-6.0);
  feed(ex, h, c, 6, 4);
  ex.forward({h.pcvr});
  for (std::size_t r = 0; r < 6; ++r) {
    CHECK(ex.value(h.pctcvr)(r, 0) > ex.value(h.pctr)(r, 0));
    CHECK(ex.value(h.pcvr)(r, 0) == 1.0);
  }
}

TEST_CASE("bad model configs are GraphErrors saying what is wrong", "[models][zoo]") {
  auto err = [](ModelConfig c) {
    Graph g;
    try {
      build_model(g, c);
    } catch (const GraphError& e) {
      return std::string(e.what());
    }
    return std::string("<no GraphError>");
  };
  ModelConfig c = small("esmm");
  c.kind = "dcn";
  CHECK_THAT(err(c), Contains("dcn"));
  c = small("esmm");
  c.num_fields = 0;
  CHECK_THAT(err(c), Contains("num_fields"));
  c = small("esmm");
  c.vocab = -1;
  CHECK_THAT(err(c), Contains("vocab"));
  c = small("esmm");
  c.dim = 0;
  CHECK_THAT(err(c), Contains("dim"));
  c = small("esmm");
  c.hidden = {4, 0};
  CHECK_THAT(err(c), Contains("hidden"));
  c = small("esmm");
  c.num_stages = 1;
  CHECK_THAT(err(c), Contains("2 stages"));
  c = small("base");
  c.num_stages = 3;
  CHECK_THAT(err(c), Contains("base"));
  c = small("esmm");
  c.num_dense = -1;
  CHECK_THAT(err(c), Contains("num_dense"));
  c = small("esmm");
  c.loss_weights = {1.0};
  CHECK_THAT(err(c), Contains("1 loss weights") && Contains("2 losses"));
  // A graph that already has nodes.
  Graph g;
  input(g, "x", {kBatch, 1});
  CHECK_THROWS_WITH(build_model(g, small("esmm")), Contains("empty graph"));
  // Custom loss weights are passed through.
  c = small("esmm");
  c.loss_weights = {1.0, 0.25};
  Graph g2;
  CHECK(build_model(g2, c).loss_weights == std::vector<double>{1.0, 0.25});
}

TEST_CASE("model config JSON round trip", "[models][zoo]") {
  ModelConfig c;
  c.kind = "esmm-ns";
  c.num_fields = 7;
  c.vocab = 1234;
  c.dim = 5;
  c.hidden = {9, 3, 2};
  c.num_stages = 2;
  c.num_dense = 4;
  c.pool = Pool::Mean;
  c.loss_weights = {0.5, 2.0};
  nlohmann::json j = to_json(c);
  CHECK(j["kind"] == "esmm-ns");
  CHECK(j["pool"] == "mean");
  ModelConfig d = model_config_from_json(j);
  CHECK(d.kind == c.kind);
  CHECK(d.num_fields == c.num_fields);
  CHECK(d.vocab == c.vocab);
  CHECK(d.dim == c.dim);
  CHECK(d.hidden == c.hidden);
  CHECK(d.num_stages == c.num_stages);
  CHECK(d.num_dense == c.num_dense);
  CHECK(d.pool == c.pool);
  CHECK(d.loss_weights == c.loss_weights);
  CHECK(to_json(d) == j);
  // Through text as well.
  CHECK(to_json(model_config_from_json(nlohmann::json::parse(j.dump()))) == j);
  // Missing keys keep their defaults.
  ModelConfig dflt;
  ModelConfig e = model_config_from_json(nlohmann::json::object({{"kind", "base"}}));
  CHECK(e.kind == "base");
  CHECK(e.vocab == dflt.vocab);
  CHECK(e.hidden == dflt.hidden);
  CHECK(e.pool == Pool::Sum);
}

TEST_CASE("model config JSON errors name the offending key", "[models][zoo]") {
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"kind", "esmm"}, {"hiden", {1, 2}}}),
                    Contains("unknown key") && Contains("'hiden'"));
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json{{"kind", "esmm"}, {"hiden", {1, 2}}}), GraphError);
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"vocab", "many"}}), Contains("'vocab'"));
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"hidden", 5}}), Contains("'hidden'"));
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"pool", "max"}}), Contains("pool") && Contains("max"));
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json::array({1, 2})), GraphError);
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json("esmm")), GraphError);
}
