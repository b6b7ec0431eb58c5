#pragma once
// Pieces shared by the gradient-check examples of opcheck/: the common example (an op over fresh parameters, its
// output weighted by a probe), the example of a reduction to a scalar, and the BCE family's label feeding and
// squared-loss example.
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "autodiff/gradcheck.hpp"

namespace funnel::detail {

/// Attributes with only numbers, or only integer lists.
/// @{
inline Attrs num_attrs(std::map<std::string, double> num) {
  Attrs a;
  a.num = std::move(num);
  return a;
}
inline Attrs ints_attrs(std::map<std::string, std::vector<std::int64_t>> ints) {
  Attrs a;
  a.ints = std::move(ints);
  return a;
}
/// @}

/// The example `label` of `op`: the op (with `attrs`) over parameters of the given names and shapes, in that slot
/// order, each drawn from `init`; its output turned into the loss by probe_loss. Nothing is fed.
inline OpExample probe_example(const std::string& op, const std::string& label, std::int64_t batch,
                               std::vector<std::pair<std::string, Shape>> params, Init init = Init::normal(1.0),
                               Attrs attrs = {}) {
  return {op, label, batch,
          [op, params = std::move(params), init, attrs = std::move(attrs)](Graph& g) {
            std::vector<NodeId> in;
            for (const auto& p : params) in.push_back(g.add_param(p.first, p.second, init));
            return probe_loss(g, g.add_op(op, in, attrs));
          },
          nullptr};
}

/// The example `label` of `op`, a reduction to a scalar s, over a parameter "x" of `shape` ~ N(0, 1); the loss is
/// s·s, so that dL/ds depends on s.
inline OpExample squared_scalar_example(const std::string& op, const std::string& label, Shape shape) {
  return {op, label, 3,
          [op, shape = std::move(shape)](Graph& g) {
            NodeId x = g.add_param("x", shape, Init::normal(1.0));
            NodeId s = g.add_op(op, {x});
            NodeId sq = g.add_op("mul", {s, s});
            g.mark_loss(sq);
            return sq;
          },
          nullptr};
}

/// Feeds the input "y" 0/1 labels (1 with probability 0.4) and, when the graph has an input "w", weights in [0, 2].
inline void feed_labels(Executor<double>& e, std::mt19937_64& rng) {
  std::bernoulli_distribution coin(0.4);
  for (auto& v : e.input("y")) v = coin(rng) ? 1.0 : 0.0;
  if (auto w = e.graph().find("w")) {
    std::uniform_real_distribution<double> u(0.0, 2.0);
    for (auto& v : e.input(*w)) v = u(rng);
  }
}

/// The example `label` of a mean loss `op` over a 6×1 parameter `x` drawn from `init`, 0/1 labels "y" and, when
/// `weighted`, row weights "w" (fed by feed_labels); the loss is squared so that dL/dl depends on l.
inline OpExample squared_loss_example(const std::string& op, const std::string& label, const std::string& x, Init init,
                                      bool weighted) {
  return {op, label, 6,
          [op, x, init, weighted](Graph& g) {
            std::vector<NodeId> in{g.add_param(x, Shape{6, 1}, init), g.add_input("y", Shape{6, 1})};
            if (weighted) in.push_back(g.add_input("w", Shape{6, 1}));
            NodeId l = g.add_op(op, in);
            NodeId sq = g.add_op("mul", {l, l});
            g.mark_loss(sq);
            return sq;
          },
          feed_labels};
}

}  // namespace funnel::detail
