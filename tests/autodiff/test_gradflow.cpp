// Gradient-flow analysis, and the paper's claims about which loss trains which parameters:
//   ESMM: the CTR loss gives exactly zero gradient to the CVR tower; the CTCVR loss trains both towers; the shared
//         embedding gets gradients from both losses.
//   BASE: the CVR tower learns only from the CVR loss (on clicked rows); ESMM-NS: each embedding table only from
//   the losses of its own tower's output.
#include <catch2/catch.hpp>

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>

#include "autodiff/gradflow.hpp"
#include "core/error.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"

using namespace funnel;

namespace {

ModelConfig small(const std::string& kind) { return test::small(kind, {.vocab = 40, .dim = 4, .hidden = {8, 4}}); }

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Every parameter whose name starts with `prefix`; at least one must exist.
std::vector<NodeId> params_under(const Graph& g, const std::string& prefix) {
  std::vector<NodeId> out;
  for (NodeId p : g.params())
    if (starts_with(g.node(p).name, prefix)) out.push_back(p);
  REQUIRE_FALSE(out.empty());
  return out;
}

// The loss reaches the parameter: structurally, with a non-zero gradient, and perturbing the parameter moves it.
void check_reaches(const GradFlow& gf, const Graph& g, NodeId p, NodeId loss) {
  INFO(g.node(p).name << " <- " << g.node(loss).name);
  const GradFlowEntry& e = gf.at(p, loss);
  CHECK(e.structural);
  CHECK(e.nonzero);
  CHECK(e.max_abs > 0.0);
  CHECK(e.perturb_changes);
}

// The loss gives exactly nothing: unreachable, gradient all zeros, the loss value bit-identical under perturbation.
void check_blocked(const GradFlow& gf, const Graph& g, NodeId p, NodeId loss) {
  INFO(g.node(p).name << " <- " << g.node(loss).name);
  const GradFlowEntry& e = gf.at(p, loss);
  CHECK_FALSE(e.structural);
  CHECK_FALSE(e.nonzero);
  CHECK(e.max_abs == 0.0);
  CHECK_FALSE(e.perturb_changes);
}

// What a loss gives the parameters under a prefix: check_reaches or check_blocked.
struct Expect {
  NodeId loss;
  bool reaches;
};

// A small model of `kind` built and analyzed; under() checks every parameter under a prefix against each loss.
struct Analyzed {
  Graph g;
  ModelHandle h;
  GradFlow gf;
  explicit Analyzed(const std::string& kind) : h(build_model(g, small(kind))), gf(analyze_grad_flow(g, {})) {}
  void under(const std::string& prefix, std::initializer_list<Expect> want) const {
    for (NodeId p : params_under(g, prefix))
      for (const Expect& e : want) e.reaches ? check_reaches(gf, g, p, e.loss) : check_blocked(gf, g, p, e.loss);
  }
};

}  // namespace

TEST_CASE("grad flow on a hand-built graph: reach sets follow differentiable slots", "[autodiff][gradflow]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId wa = g.add_param("wa", Shape{3, 2}, Init::normal(1.0));
  NodeId wb = g.add_param("wb", Shape{3, 2}, Init::normal(1.0));
  NodeId ya = g.add_op("matmul", {x, wa});
  NodeId yb = g.add_op("matmul", {x, wb});
  NodeId la = g.add_op("sum", {ya}, {}, "la");
  NodeId lb = g.add_op("sum", {g.add_op("mul", {ya, yb})}, {}, "lb");
  g.mark_loss(la);
  g.mark_loss(lb);
  GradFlowOptions o;
  o.batch = 4;
  GradFlow gf = analyze_grad_flow(g, o);
  REQUIRE(gf.losses == std::vector<NodeId>{la, lb});
  REQUIRE(gf.loss_names == std::vector<std::string>{"la", "lb"});
  check_reaches(gf, g, wa, la);
  check_reaches(gf, g, wa, lb);
  check_blocked(gf, g, wb, la);
  check_reaches(gf, g, wb, lb);
  // The input gets no gradient (no parameter upstream); edges: wb -> yb carries lb only.
  CHECK(gf.node_losses(x).empty());
  CHECK(gf.edge_losses(yb, 1) == std::vector<std::size_t>{1});
  CHECK(gf.edge_losses(yb, 0).empty());
  CHECK(gf.node_losses(ya) == std::vector<std::size_t>{0, 1});
  CHECK(gf.disagreements().empty());
  CHECK(to_text(gf, g).find("wb") != std::string::npos);
  CHECK_THROWS_AS(gf.at(x, la), GraphError);
}

TEST_CASE("grad flow needs a loss", "[autodiff][gradflow]") {
  Graph g;
  g.add_param("w", Shape{2}, Init::zeros());
  CHECK_THROWS_AS(analyze_grad_flow(g, {}), GraphError);
}

TEST_CASE("feed_random_batch: valid ids below the table rows, 0/1 labels with both values", "[autodiff][gradflow]") {
  Graph g;
  ModelHandle h = build_model(g, small("esmm"));
  Executor<double> ex(g);
  ex.init_params(3);
  std::mt19937_64 rng(5);
  feed_random_batch(ex, 10, rng);
  const IdBatch& b = ex.ids(h.ids);
  REQUIRE(b.complete());
  CHECK(b.batch == 10);
  CHECK(b.fields == 3);
  for (auto id : b.ids) {
    CHECK(id >= 0);
    CHECK(id < 40);
  }
  for (NodeId l : h.labels) {
    int ones = 0, zeros = 0;
    for (double v : ex.input(l)) {
      CHECK((v == 0.0 || v == 1.0));
      (v == 1.0 ? ones : zeros)++;
    }
    CHECK(ones > 0);
    CHECK(zeros > 0);
  }
}

TEST_CASE("ESMM: CTR loss gives exactly zero gradient to the CVR tower, CTCVR trains both, shared embedding both",
          "[autodiff][gradflow][paper]") {
  const Analyzed a("esmm");
  REQUIRE(a.h.losses.size() == 2);
  const NodeId ctr = a.h.losses[0], ctcvr = a.h.losses[1];
  REQUIRE(a.gf.numeric);
  INFO(to_text(a.gf, a.g));
  a.under("cvr_tower/", {{ctr, false}, {ctcvr, true}});
  a.under("ctr_tower/", {{ctr, true}, {ctcvr, true}});
  REQUIRE(params_under(a.g, "embedding/").size() == 1);
  a.under("embedding/", {{ctr, true}, {ctcvr, true}});
  CHECK(a.gf.disagreements().empty());
}

TEST_CASE("BASE: the CVR tower and its embedding learn only from the CVR loss", "[autodiff][gradflow][paper]") {
  const Analyzed a("base");
  REQUIRE(a.h.losses.size() == 2);
  const NodeId ctr = a.h.losses[0], cvr = a.h.losses[1];
  INFO(to_text(a.gf, a.g));
  for (const char* prefix : {"cvr_tower/", "embedding_cvr/"}) a.under(prefix, {{ctr, false}, {cvr, true}});
  for (const char* prefix : {"ctr_tower/", "embedding_ctr/"}) a.under(prefix, {{ctr, true}, {cvr, false}});
  CHECK(a.gf.disagreements().empty());
}

TEST_CASE("ESMM-NS: each embedding table gets gradients only through its own tower", "[autodiff][gradflow][paper]") {
  const Analyzed a("esmm-ns");
  const NodeId ctr = a.h.losses[0], ctcvr = a.h.losses[1];
  INFO(to_text(a.gf, a.g));
  // The CTR tower's table feeds pCTR, which both losses read; the CVR tower's table only pCVR -> pCTCVR.
  a.under("embedding_ctr_tower/", {{ctr, true}, {ctcvr, true}});
  a.under("embedding_cvr_tower/", {{ctr, false}, {ctcvr, true}});
  // No table is shared: the CVR table's gradient never comes from the CTR tower's path and vice versa.
  CHECK(a.gf.node_losses(params_under(a.g, "embedding_cvr_tower/")[0]) == std::vector<std::size_t>{1});
  CHECK(a.gf.disagreements().empty());
}

TEST_CASE("DIVISION: the CTR and CTCVR models are trained by their own losses only", "[autodiff][gradflow][paper]") {
  const Analyzed a("division");
  const NodeId ctr = a.h.losses[0], ctcvr = a.h.losses[1];
  INFO(to_text(a.gf, a.g));
  a.under("ctcvr_tower/", {{ctr, false}, {ctcvr, true}});
  a.under("ctr_tower/", {{ctr, true}, {ctcvr, false}});
}

// A loss that reads a parameter only through stop_gradient: no gradient by design. The loss moves when the
// parameter is perturbed, which is expected and no alarm; the entry says "value only".
TEST_CASE("grad flow through stop_gradient: value only, moves, no alarm", "[autodiff][gradflow]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId wa = g.add_param("wa", Shape{3, 1}, Init::normal(1.0));
  NodeId wb = g.add_param("wb", Shape{3, 1}, Init::normal(1.0));
  NodeId wc = g.add_param("wc", Shape{3, 1}, Init::normal(1.0));
  NodeId ya = g.add_op("matmul", {x, wa});
  NodeId yb = g.add_op("matmul", {x, wb});
  g.add_op("matmul", {x, wc});  // read by no loss
  NodeId l = g.add_op("sum", {g.add_op("mul", {ya, g.add_op("stop_gradient", {yb})})}, {}, "l");
  g.mark_loss(l);
  GradFlowOptions o;
  o.batch = 4;
  GradFlow gf = analyze_grad_flow(g, o);
  check_reaches(gf, g, wa, l);
  CHECK_FALSE(gf.at(wa, l).value_only);
  const GradFlowEntry& e = gf.at(wb, l);
  CHECK_FALSE(e.structural);
  CHECK(e.value_only);
  CHECK_FALSE(e.nonzero);
  CHECK(e.perturb_changes);
  CHECK_FALSE(gf.at(wc, l).value_only);
  check_blocked(gf, g, wc, l);
  CHECK(gf.disagreements().empty());
  CHECK(to_text(gf, g).find("stopped") != std::string::npos);
}

namespace {
// Models whose counterfactual losses weight rows by 1/propensity with the propensity (pCTR) behind stop_gradient:
// every CTR-tower parameter is "value only" for those losses (zero gradient, the loss moves), and the analysis
// raises no alarm.
void check_propensity_stopped(const std::string& kind, const std::vector<std::string>& weighted_losses) {
  INFO(kind);
  const Analyzed a(kind);
  const Graph& g = a.g;
  const ModelHandle& h = a.h;
  const GradFlow& gf = a.gf;
  INFO(to_text(gf, g));
  for (std::size_t k = 0; k < h.losses.size(); ++k) {
    const bool weighted =
        std::find(weighted_losses.begin(), weighted_losses.end(), h.loss_names[k]) != weighted_losses.end();
    if (!weighted) continue;
    for (NodeId p : params_under(g, "ctr_tower/")) {
      INFO(g.node(p).name << " <- " << h.loss_names[k]);
      const GradFlowEntry& e = gf.at(p, h.losses[k]);
      CHECK_FALSE(e.structural);
      CHECK(e.value_only);
      CHECK(e.max_abs == 0.0);
      CHECK(e.perturb_changes);
    }
  }
  a.under("ctr_tower/", {{h.losses[0], true}});
  const auto dis = gf.disagreements();
  INFO((dis.empty() ? std::string() : dis[0]));
  CHECK(dis.empty());
}
}  // namespace

TEST_CASE("ESCM²-IPS/DR and DCMT: the propensity behind stop_gradient raises no grad-flow alarm",
          "[autodiff][gradflow][paper]") {
  check_propensity_stopped("escm2-ips", {"cvr_ips"});
  check_propensity_stopped("escm2-dr", {"cvr_dr", "imputation"});
  check_propensity_stopped("dcmt", {"cvr_causal"});
}
