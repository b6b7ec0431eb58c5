#pragma once
/// @file
/// The graph DSL: build models the way their papers read.
///
///   Graph g;
///   Var x = input(g, "x", {kBatch, 4});
///   Var y = input(g, "y", {kBatch, 1});
///   Var h;
///   { auto s = g.scope("tower"); h = mlp(x, {8}, Act::Relu); }
///   Var p = sigmoid(dense(h, 1, "out"));
///   Var loss = bce(p, y);            // mean binary cross-entropy
///   g.mark_loss(loss.id);
///
/// A Var is a (graph, node) handle; every function adds nodes to the Var's graph under the current scope.
#include <cstdint>
#include <string>
#include <vector>

#include "core/graph.hpp"

namespace funnel {

struct Var {
  Graph* g = nullptr;
  NodeId id = 0;
  const Node& node() const { return g->node(id); }
  const Shape& shape() const { return g->node(id).shape; }
  const std::string& name() const { return g->node(id).name; }
};

enum class Act { None, Relu, Sigmoid, Tanh };
enum class Pool { Sum, Mean };

/// Leaves.
Var input(Graph& g, const std::string& name, Shape shape);
Var ids(Graph& g, const std::string& name, std::int64_t num_fields);
Var param(Graph& g, const std::string& name, Shape shape, Init init);

/// Ops (one per registered op of the same name).
Var matmul(Var x, Var w, const std::string& name = "");
Var bias_add(Var x, Var b, const std::string& name = "");
Var add(Var a, Var b, const std::string& name = "");
Var mul(Var a, Var b, const std::string& name = "");
Var divide(Var a, Var b, double lo, double hi, const std::string& name = "");  ///< clip(a / b, lo, hi)
Var relu(Var x, const std::string& name = "");
Var sigmoid(Var x, const std::string& name = "");
Var concat(const std::vector<Var>& xs, std::int64_t axis = 1, const std::string& name = "");
Var reshape(Var x, Shape shape, const std::string& name = "");  ///< may keep kBatch as the first dim
Var flatten(Var x, const std::string& name = "");              ///< B×d1×d2×... -> B×(d1·d2·...)
Var sum(Var x, const std::string& name = "");                  ///< all elements -> scalar
Var mean(Var x, const std::string& name = "");                 ///< all elements -> scalar
Var scale(Var x, double w, const std::string& name = "");      ///< w · x
/// Mean binary cross-entropy on probabilities (clamped to [eps, 1-eps]); with `weight` (B×1), the weighted mean
/// Σ wᵢ·ℓᵢ / Σ wᵢ (0 when Σ wᵢ = 0), e.g. a mask of clicked rows.
Var bce(Var p, Var y, const std::string& name = "");
Var bce(Var p, Var y, Var weight, const std::string& name = "");
Var bce_logits(Var z, Var y, const std::string& name = "");  ///< stable: max(z,0) - z·y + log1p(exp(-|z|))
/// Losses in log space, for probabilities that are products of sigmoids (the funnel's stages): log_sigmoid(z) =
/// log σ(z), a sum of those is log Π σ(zₛ), and bce_logprob / bce_logprob_rows take that log-probability a,
/// computing log(1 − p) as log1mexp(a) — no probability is formed or clamped.
Var log_sigmoid(Var z, const std::string& name = "");
Var bce_logprob(Var a, Var y, const std::string& name = "");
Var bce_logprob(Var a, Var y, Var weight, const std::string& name = "");  ///< Σ wᵢℓᵢ / Σ wᵢ, as bce's
Var bce_logprob_rows(Var a, Var y, const std::string& name = "");  ///< per element, no reduction; soft labels
/// Embedding lookup of every field of `ids` (B×F) in `table` (V×D): output B×F×D. Multi-valued cells are pooled
/// (sum or mean of the weighted rows). The table's gradient is sparse.
Var embedding(Var table, Var ids, Pool pool = Pool::Sum, const std::string& name = "");

/// Ops of the later funnel models (ESCM², AITM, MMoE/PLE, DCMT).
Var softmax(Var x, const std::string& name = "");        ///< over the last axis, row by row
Var tanh(Var x, const std::string& name = "");
Var stop_gradient(Var x, const std::string& name = "");  ///< y = x, no gradient to x
Var clip(Var x, double lo, double hi, const std::string& name = "");  ///< min(max(x, lo), hi)
Var shift(Var x, double c, const std::string& name = "");             ///< x + c
Var dot(Var a, Var b, const std::string& name = "");     ///< over the last axis: B×E×d -> B×E, B×d -> B×1
Var weighted_sum(Var w, Var x, const std::string& name = "");  ///< w: B×E, x: B×E×d -> Σ_e w[:,e]·x[:,e,:], B×d
Var bce_rows(Var p, Var y, const std::string& name = "");  ///< per-element BCE, no reduction; soft labels allowed

inline Var operator+(Var a, Var b) { return add(a, b); }
inline Var operator*(Var a, Var b) { return mul(a, b); }

/// Composites.
/// A dense layer in scope `name`: params `w` (K×units, Glorot uniform) and `b` (zeros), then the activation.
Var dense(Var x, std::int64_t units, const std::string& name, Act act = Act::None);
/// Dense layers `dense_0`, `dense_1`, ... with `act` after each.
Var mlp(Var x, const std::vector<std::int64_t>& hidden, Act act = Act::Relu);

}  // namespace funnel
