#pragma once
/// @file
/// Gradient checking in double precision: analytical gradients from Executor<double>::backward against central
/// finite differences, the way torch.autograd.gradcheck does (|a - n| <= atol + rtol·|n|).
///
/// Non-differentiable points (ReLU kinks, clipping) are detected per coordinate by comparing the one-sided
/// differences; such coordinates are reported as skipped, never silently passed.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/graph.hpp"

namespace funnel {

/// How gradcheck() compares: a coordinate passes when |analytic − numeric| <= atol + rtol·|numeric|.
struct GradCheckOptions {
  double eps = 1e-6;       ///< finite-difference step, added to and subtracted from one coordinate
  double atol = 1e-5;      ///< absolute tolerance
  double rtol = 1e-3;      ///< relative tolerance
  std::uint64_t seed = 0;  ///< picks the coordinates when max_coords limits them (and seeds op examples)
  std::int64_t max_coords = 0;  ///< per parameter; 0 = every coordinate
};

/// The outcome for one parameter and one loss (or weighted sum of losses).
struct GradCheckRow {
  std::string param;  ///< parameter name
  std::string loss;   ///< loss description ("loss/ctr", "loss/ctr + loss/ctcvr")
  bool sparse = false;        ///< the parameter's gradient is sparse (an embedding table)
  std::int64_t checked = 0;   ///< coordinates compared
  std::int64_t skipped = 0;  ///< at a kink
  double max_abs = 0.0;  ///< largest |analytic − numeric| over the checked coordinates
  double max_rel = 0.0;  ///< largest |analytic − numeric| / |numeric|
  bool pass = true;      ///< every checked coordinate within tolerance
  std::string worst;  ///< the worst coordinate, "[3,1]: analytic 0.12 numeric 0.13"
};

/// Everything one gradient check found.
struct GradCheckResult {
  std::vector<GradCheckRow> rows;  ///< one per checked parameter
  bool repeat_identical = true;  ///< two backward passes gave bit-identical gradients
  bool pass() const;  ///< every row passed and the gradients were repeatable
};

/// Checks every parameter reached by `losses` (weighted sum), at the executor's current parameter values and
/// bound batch. Runs forward/backward itself. Parameters are restored exactly afterwards.
GradCheckResult gradcheck(Executor<double>& ex, const std::vector<LossWeight>& losses, const GradCheckOptions& opt);

// ---- op examples: a small graph around one op, for `funnel gradcheck --op` and the op tests ----
/// One gradient-check case of an op: how to build a small graph around it and how to feed it. Registered by the
/// files of opcheck/ (OpExampleRegistrar) and run by check_op_example.
struct OpExample {
  std::string op;     ///< the op under test
  std::string label;  ///< what the case covers, e.g. "B=3, mean pooling, multi-valued"
  std::int64_t batch = 3;  ///< rows in the batch the example runs
  /// Adds nodes to the graph (the op's differentiable inputs as parameters) and returns the loss node.
  /// probe_loss() below turns any output into a scalar loss.
  std::function<NodeId(Graph&)> build;
  /// Fills Input and Ids nodes (after set_batch). Inputs left unfilled get standard-normal values.
  std::function<void(Executor<double>&, std::mt19937_64&)> feed;
};

/// Adds an example to the registry (at static-init time, through OpExampleRegistrar). Not synchronised.
void register_op_example(OpExample ex);
std::vector<OpExample> op_examples(const std::string& op);  ///< all examples of one op
std::vector<OpExample> all_op_examples();  ///< every registered example, by op
/// Registers an op example from a static object's constructor (the files of opcheck/).
struct OpExampleRegistrar {
  /// Registers `ex`.
  explicit OpExampleRegistrar(OpExample ex) { register_op_example(std::move(ex)); }
};

/// sum(out ⊙ R) with R an input named "<out>_probe": a scalar whose gradient wrt out is R (random when fed by
/// default), so every output element's VJP is exercised with distinct weights.
NodeId probe_loss(Graph& g, NodeId out);

/// Builds, initialises (params ~ their initializers with `seed`, then nudged away from zero), feeds and checks one
/// example.
GradCheckResult check_op_example(const OpExample& ex, const GradCheckOptions& opt);

}  // namespace funnel
