#pragma once
// Shared by the model tests: a small config, graph queries and a batch feeder with consistent funnel labels.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/gradflow.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"

namespace funnel::test {

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

// Fills ids (cell 4 repeats cell 0; cell 7, in another row and field when there are 3+ fields, too), consistent 0/1
// labels (ctcvr ≤ click; row 0 reaches every stage, row 1 clicks only, the rest random) and dense features.
template <class T>
inline void feed(Executor<T>& ex, const ModelHandle& h, const ModelConfig& c, std::int64_t B, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> id(0, c.vocab - 1);
  ex.set_batch(B);
  IdBatch& ib = ex.ids(h.ids);
  ib.reset(B, c.num_fields);
  for (std::int64_t k = 0; k < B * c.num_fields; ++k) {
    ib.push(k == 4 || k == 7 ? ib.ids[0] : id(rng));
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

// The model of config `c` built, its parameters initialised from `init_seed` and a batch of `rows` rows fed from
// `batch_seed` (nothing run yet).
template <class T>
struct Fed {
  ModelConfig c;
  Graph g;
  ModelHandle h;
  Executor<T> ex;

  Fed(ModelConfig cfg, std::int64_t rows, std::uint64_t init_seed, std::uint64_t batch_seed)
      : c(std::move(cfg)), h(build_model(g, c)), ex(g) {
    ex.init_params(init_seed);
    feed(ex, h, c, rows, batch_seed);
  }
};

// A small model of `kind` (with `options`) Fed in double precision and run forward: the fixture of the by-hand loss
// tests. The accessors read row r of a column or label, and a loss by its short name.
struct ForwardRun : Fed<double> {
  std::int64_t rows;

  ForwardRun(const std::string& kind, const nlohmann::json& options, std::int64_t rows_, std::uint64_t init_seed,
             std::uint64_t batch_seed)
      : Fed<double>(with_options(small(kind), options), rows_, init_seed, batch_seed), rows(rows_) {
    ex.forward();
  }
  double col(const std::string& name, std::size_t r) const { return ex.value(h.column(name))(r, 0); }
  double click(std::size_t r) { return ex.input(h.labels[0])(r, 0); }
  double conv(std::size_t r) { return ex.input(h.labels[1])(r, 0); }
  double loss(const std::string& name) const {
    for (std::size_t k = 0; k < h.loss_names.size(); ++k)
      if (h.loss_names[k] == name) return ex.scalar(h.losses[k]);
    FAIL("no loss '" << name << "'");
    return 0;
  }
  static ModelConfig with_options(ModelConfig c, const nlohmann::json& options) {
    if (!options.is_null()) c.options = options;
    return c;
  }
};

// Whether loss `l` reaches (structurally, through differentiable slots) any parameter under `scope`.
inline bool loss_reaches(const Graph& g, const GradFlow& gf, NodeId l, const std::string& scope) {
  for (NodeId p : g.params())
    if (in_scope(g, p, scope) && gf.at(p, l).structural) return true;
  return false;
}

// Forward pass of `kind` on a small batch: probabilities in range, the model's pCTCVR / pCVR relation (product,
// or DIVISION's clipped ratio) and both loss values recomputed by hand (BASE's CVR loss over clicked rows).
inline void check_forward_numerics(const std::string& kind) {
  INFO(kind);
  ForwardRun f(kind, nullptr, 6, 7, 3);
  double l_ctr = 0, l_second = 0, clicks = 0;
  for (std::size_t r = 0; r < 6; ++r) {
    const double ctr = f.col("pctr", r), cvr = f.col("pcvr", r), ctcvr = f.col("pctcvr", r);
    CHECK((ctr > 0 && ctr < 1));
    CHECK((cvr >= 0 && cvr <= 1));
    CHECK((ctcvr > 0 && ctcvr < 1));
    CHECK(f.conv(r) <= f.click(r));
    if (kind == "division") {
      CHECK(cvr == Approx(std::min(1.0, ctcvr / ctr)).epsilon(1e-12));
    } else {
      CHECK(ctcvr == ctr * cvr);
    }
    l_ctr += bce(ctr, f.click(r));
    if (kind == "base") {
      l_second += f.click(r) * bce(cvr, f.conv(r));
      clicks += f.click(r);
    } else {
      l_second += bce(ctcvr, f.conv(r));
    }
  }
  CHECK(f.ex.scalar(f.h.losses[0]) == Approx(l_ctr / 6).epsilon(1e-10));
  CHECK(f.ex.scalar(f.h.losses[1]) == Approx(kind == "base" ? l_second / clicks : l_second / 6).epsilon(1e-10));
}

}  // namespace funnel::test
