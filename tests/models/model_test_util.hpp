#pragma once
// Shared by the model tests: a small config, graph queries and a batch feeder with consistent funnel labels.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "models/model.hpp"

namespace funnel::test {

inline ModelConfig small(const std::string& kind) {
  ModelConfig c;
  c.kind = kind;
  c.num_fields = 3;
  c.vocab = 30;
  c.dim = 3;
  c.hidden = {5, 4};
  return c;
}

inline std::vector<NodeId> tables(const Graph& g) {
  std::vector<NodeId> out;
  for (NodeId p : g.params()) {
    const std::string& n = g.node(p).name;
    if (n.size() >= 6 && n.compare(n.size() - 6, 6, "/table") == 0) out.push_back(p);
  }
  return out;
}

inline std::vector<NodeId> ops_named(const Graph& g, const std::string& op) {
  std::vector<NodeId> out;
  for (const Node& n : g.nodes())
    if (n.kind == NodeKind::Op && n.op == op) out.push_back(n.id);
  return out;
}

inline std::vector<std::string> names(const Graph& g, const std::vector<NodeId>& ids) {
  std::vector<std::string> out;
  for (NodeId v : ids) out.push_back(g.node(v).name);
  return out;
}

inline bool in_scope(const Graph& g, NodeId v, const std::string& scope) {
  return g.node(v).name.rfind(scope + "/", 0) == 0;
}

// Fills ids (a repeated id included), consistent 0/1 labels (ctcvr ≤ click) and dense features.
template <class T>
inline void feed(Executor<T>& ex, const ModelHandle& h, const ModelConfig& c, std::int64_t B, std::uint64_t seed) {
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

inline double bce(double p, double y) { return -(y * std::log(p) + (1 - y) * std::log(1 - p)); }

// Forward pass of `kind` on a small batch: probabilities in range, the model's pCTCVR / pCVR relation (product,
// or DIVISION's clipped ratio) and both loss values recomputed by hand (BASE's CVR loss over clicked rows).
inline void check_forward_numerics(const std::string& kind) {
  INFO(kind);
  ModelConfig c = small(kind);
  Graph g;
  ModelHandle h = build_model(g, c);
  Executor<double> ex(g);
  ex.init_params(7);
  feed(ex, h, c, 6, 3);
  ex.forward();
  const auto& ctr = ex.value(h.column("pctr"));
  const auto& cvr = ex.value(h.column("pcvr"));
  const auto& ctcvr = ex.value(h.column("pctcvr"));
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

}  // namespace funnel::test
