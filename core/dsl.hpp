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
///
/// The op functions (one per registered op of the same name) each add one op node to the graph of their first
/// argument, named `name` under the current scope (empty: the op's name with a counter), and return it. The op's
/// shape rule runs
/// at once and throws ShapeError naming the node and the input shapes when they do not fit; `funnel ops` prints
/// every op's rule.
#include <cstdint>
#include <string>
#include <vector>

#include "core/graph.hpp"

namespace funnel {

/// A handle on one node of a graph: what the DSL functions take and return. Cheap to copy; valid as long as the
/// graph lives (a default-constructed Var refers to no graph and must not be used).
struct Var {
  Graph* g = nullptr;  ///< the graph the node belongs to
  NodeId id = 0;       ///< the node
  const Node& node() const { return g->node(id); }                 ///< the node itself
  const Shape& shape() const { return g->node(id).shape; }         ///< its shape
  const std::string& name() const { return g->node(id).name; }     ///< its full, scope-qualified name
};

/// The activation dense() and mlp() put after each layer (None: the layer stays linear).
enum class Act { None, Relu, Sigmoid, Tanh };
/// How embedding() combines the rows of a multi-valued cell: their weighted sum or weighted mean.
enum class Pool { Sum, Mean };

/// @{
/// Leaves: a dense input fed per batch, categorical ids with `num_fields` fields per row, a trainable parameter
/// with its initializer. Same rules and errors as Graph::add_input, add_ids and add_param.
Var input(Graph& g, const std::string& name, Shape shape);
Var ids(Graph& g, const std::string& name, std::int64_t num_fields);
Var param(Graph& g, const std::string& name, Shape shape, Init init);
/// @}

/// x (B×K) times w (K×N): B×N.
Var matmul(Var x, Var w, const std::string& name = "");
/// x (B×N) plus the row vector b (N), broadcast over the rows.
Var bias_add(Var x, Var b, const std::string& name = "");
/// Element-wise sum of two tensors of the same shape.
Var add(Var a, Var b, const std::string& name = "");
/// Element-wise product of two tensors of the same shape.
Var mul(Var a, Var b, const std::string& name = "");
Var divide(Var a, Var b, double lo, double hi, const std::string& name = "");  ///< clip(a / b, lo, hi)
/// max(x, 0), element-wise.
Var relu(Var x, const std::string& name = "");
/// 1 / (1 + e^−x), element-wise: a probability from a logit.
Var sigmoid(Var x, const std::string& name = "");
/// The tensors `xs` side by side along `axis` (1: columns); the other dimensions must agree.
Var concat(const std::vector<Var>& xs, std::int64_t axis = 1, const std::string& name = "");
Var reshape(Var x, Shape shape, const std::string& name = "");  ///< may keep kBatch as the first dim
Var flatten(Var x, const std::string& name = "");              ///< B×d1×d2×... -> B×(d1·d2·...)
Var sum(Var x, const std::string& name = "");                  ///< all elements -> scalar
Var mean(Var x, const std::string& name = "");                 ///< all elements -> scalar
Var scale(Var x, double w, const std::string& name = "");      ///< w · x
/// Mean binary cross-entropy on probabilities (clamped to [eps, 1-eps]); with `weight` (B×1), the weighted mean
/// Σ wᵢ·ℓᵢ / Σ wᵢ (0 when Σ wᵢ = 0), e.g. a mask of clicked rows.
/// p and y have the same shape; y may be soft (in [0, 1]). The result is a scalar.
/// @{
Var bce(Var p, Var y, const std::string& name = "");
Var bce(Var p, Var y, Var weight, const std::string& name = "");
/// @}
Var bce_logits(Var z, Var y, const std::string& name = "");  ///< stable: max(z,0) - z·y + log1p(exp(-|z|))
/// Losses in log space, for probabilities that are products of sigmoids (the funnel's stages): log_sigmoid(z) =
/// log σ(z), a sum of those is log Π σ(zₛ), and bce_logprob / bce_logprob_rows take that log-probability a,
/// computing log(1 − p) as log1mexp(a) — no probability is formed or clamped.
/// @{
Var log_sigmoid(Var z, const std::string& name = "");
Var bce_logprob(Var a, Var y, const std::string& name = "");
/// @}
Var bce_logprob(Var a, Var y, Var weight, const std::string& name = "");  ///< Σ wᵢℓᵢ / Σ wᵢ, as bce's
Var bce_logprob_rows(Var a, Var y, const std::string& name = "");  ///< per element, no reduction; soft labels
/// Embedding lookup of every field of `ids` (B×F) in `table` (V×D): output B×F×D. Multi-valued cells are pooled
/// (sum or mean of the weighted rows). The table's gradient is sparse.
Var embedding(Var table, Var ids, Pool pool = Pool::Sum, const std::string& name = "");

/// Ops of the later funnel models (ESCM², AITM, MMoE/PLE, DCMT).
Var softmax(Var x, const std::string& name = "");        ///< over the last axis, row by row
/// Hyperbolic tangent, element-wise.
Var tanh(Var x, const std::string& name = "");
Var stop_gradient(Var x, const std::string& name = "");  ///< y = x, no gradient to x
Var clip(Var x, double lo, double hi, const std::string& name = "");  ///< min(max(x, lo), hi)
Var shift(Var x, double c, const std::string& name = "");             ///< x + c
Var dot(Var a, Var b, const std::string& name = "");     ///< over the last axis: B×E×d -> B×E, B×d -> B×1
Var weighted_sum(Var w, Var x, const std::string& name = "");  ///< w: B×E, x: B×E×d -> Σ_e w[:,e]·x[:,e,:], B×d
Var bce_rows(Var p, Var y, const std::string& name = "");  ///< per-element BCE, no reduction; soft labels allowed

/// a + b: add(a, b) with an automatic name.
inline Var operator+(Var a, Var b) { return add(a, b); }
/// a * b (element-wise): mul(a, b) with an automatic name.
inline Var operator*(Var a, Var b) { return mul(a, b); }

/// Composites. A dense layer in scope `name`: params `w` (K×units, Glorot uniform) and `b` (zeros), then the activation.
Var dense(Var x, std::int64_t units, const std::string& name, Act act = Act::None);
/// Dense layers `dense_0`, `dense_1`, ... with `act` after each.
Var mlp(Var x, const std::vector<std::int64_t>& hidden, Act act = Act::Relu);

}  // namespace funnel
