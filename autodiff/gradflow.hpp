#pragma once
/// @file
/// Gradient-flow analysis: which losses reach which parameters.
///
/// Structurally: a loss reaches a node when the node is an ancestor of the loss through op input slots that pass
/// a gradient (Op::differentiable) and the node itself depends on a parameter the same way. This is the set of
/// nodes a backward pass from that loss alone computes gradients for. A parameter the loss's VALUE depends on only
/// through slots that pass no gradient (stop_gradient, a row-weight slot: e.g. ESCM²'s propensity pCTR in 1/pCTR)
/// is "value only": no gradient by design, and the loss moving when it is perturbed is expected, not an alarm.
///
/// Numerically: the graph runs in an Executor<double> on a random batch; for each loss alone a backward pass
/// records whether a parameter's gradient has any non-zero entry (sparse gradients through their row values),
/// and a perturbation probe records whether adding noise to the parameter changes that loss's value at all.
///
/// The result is a table (parameter × loss) plus per-node and per-edge reach sets, for `funnel dot --grad-flow`
/// and the tests of the paper's claims (e.g. ESMM's CTR loss never reaches the CVR tower).
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/graph.hpp"

namespace funnel {

/// What analyze_grad_flow computes besides the structural answer.
struct GradFlowOptions {
  bool numeric = true;       ///< also run the graph (Executor<double>) and look at the gradient values
  bool perturb = true;       ///< numeric only: perturbation probe of each parameter against each loss
  std::uint64_t seed = 1;    ///< parameter init and batch
  std::int64_t batch = 16;   ///< rows of the random batch
};

/// What the analysis found for one parameter and one loss.
struct GradFlowEntry {
  bool structural = false;       ///< the loss reaches the parameter through differentiable slots
  bool value_only = false;       ///< not structural, but the loss's value depends on the parameter (through slots
                                 /// that pass no gradient: stop_gradient, weights)
  /// Numeric results (meaningful when GradFlow::numeric is true):
  bool nonzero = false;          ///< backward from this loss alone gave a gradient with a non-zero entry
  double max_abs = 0.0;          ///< largest |gradient entry|
  bool perturb_changes = false;  ///< adding noise to the parameter changed this loss's value
};

/// The result of a gradient-flow analysis (see the file's description). A plain value: safe to read from several
/// threads.
struct GradFlow {
  std::vector<NodeId> losses;         ///< loss nodes, in node-id order
  std::vector<std::string> loss_names;  ///< the loss nodes' full names, same order
  std::vector<NodeId> params;         ///< parameter nodes, in node-id order
  bool numeric = false;               ///< the numeric columns were filled
  /// table[i][k]: parameter params[i], loss losses[k].
  std::vector<std::vector<GradFlowEntry>> table;
  /// reach[k][v]: loss k's gradient reaches node v (v depends on a parameter and feeds loss k differentiably).
  std::vector<std::vector<char>> reach;
  /// edge_reach[k][v][s]: loss k's gradient flows through input slot s of node v.
  std::vector<std::vector<std::vector<char>>> edge_reach;

  /// Index of a parameter / loss node in params / losses; throws GraphError when absent.
  /// @{
  std::size_t param_index(NodeId p) const;
  std::size_t loss_index(NodeId l) const;
  /// @}
  /// The entry for parameter `param` and loss `loss`; throws GraphError when either is not in the table.
  const GradFlowEntry& at(NodeId param, NodeId loss) const;
  /// The losses (indices) whose gradient reaches node v, or flows through slot s of node v.
  /// @{
  std::vector<std::size_t> node_losses(NodeId v) const;
  std::vector<std::size_t> edge_losses(NodeId v, std::size_t slot) const;
  /// @}
  /// Structural and numeric answers disagree for some entry (a gradient that is structurally reachable but
  /// numerically zero is normal at dead ReLUs; the reverse is a bug). A value-only entry must have a zero gradient;
  /// its loss may move when the parameter is perturbed. Returns a description per disagreement.
  std::vector<std::string> disagreements() const;
};

/// Reach sets and the structural column only.
GradFlow structural_grad_flow(const Graph& g);
/// Structural, plus the numeric columns when opt.numeric. Throws GraphError when the graph has no loss.
GradFlow analyze_grad_flow(const Graph& g, const GradFlowOptions& opt);

/// Fills every Input and Ids node of `ex` with a random batch of `batch` rows (calls set_batch): inputs that
/// only feed non-differentiable slots (labels, weights) get 0/1 values with both values present; other inputs
/// standard-normal values; Ids nodes one id per cell below the row count of every embedding table that reads
/// them. Throws GraphError when an Ids node feeds tables of no known size.
void feed_random_batch(Executor<double>& ex, std::int64_t batch, std::mt19937_64& rng);

/// A plain-text table of the analysis, one row per parameter (for tools and test diagnostics): "reaches",
/// "stopped" (value only) or "-", then the numeric columns.
std::string to_text(const GradFlow& gf, const Graph& g);

}  // namespace funnel
