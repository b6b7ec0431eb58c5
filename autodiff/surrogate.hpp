#pragma once
/// @file
/// The surrogate a backward pass differentiates when the graph holds gradient stops.
///
/// An op that passes no gradient through any input slot (stop_gradient) makes the analytic gradient the
/// derivative of a surrogate function in which that op's output is a constant, not of the loss itself: ESCM²'s
/// risk weights rows by 1/pCTR but must not train the CTR tower through the weight. A finite-difference check of
/// such a graph must therefore hold those outputs fixed at their values at the point of the check. Surrogate
/// copies the graph with every such node replaced by an Input of the same name and shape (node ids unchanged),
/// and an Executor<double> over the copy that takes the original's batch, parameters and the held values.
#include <memory>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/graph.hpp"

namespace funnel {

/// The op nodes of `g` that pass no gradient through any slot while depending on something (gradient stops).
std::vector<NodeId> gradient_stops(const Graph& g);

/// A copy of an executor's graph with its gradient stops held constant, for finite-difference checks (see the
/// file's description). Not thread-safe; one per checking executor.
class Surrogate {
 public:
  /// Copies src's graph; nothing is run. The copy's node ids equal the original's.
  explicit Surrogate(const Executor<double>& src);
  Surrogate(const Surrogate&) = delete;
  Surrogate& operator=(const Surrogate&) = delete;

  /// Takes src's batch (inputs and ids), parameters and the current values of the gradient stops (src's forward
  /// must have run at the point of the check).
  void sync(Executor<double>& src);
  Executor<double>& executor() { return *ex_; }                  ///< the executor over the copy
  const std::vector<NodeId>& stops() const { return stops_; }  ///< the held nodes (gradient_stops of the original)

 private:
  Graph g_;
  std::vector<NodeId> stops_;
  std::unique_ptr<Executor<double>> ex_;
};

}  // namespace funnel
