#pragma once
/// @file
/// ParallelStrategy: how a training run is spread over processes. The Trainer (train/trainer.hpp) is given one and
/// the loop (train/loop.hpp) calls its hooks at fixed points of every step; the strategy owns everything the
/// processes must agree on (a stop request, an error on any process, batch sizes, the gradients, the evaluation's
/// metrics, who writes a checkpoint). LocalStrategy is one process; the MPI layer (distributed/) registers
/// "replicated" (replicated data parallel) and "row-sharded" (embedding tables spread by rows) when it is built.
///
/// A step of the loop with its hooks:
///
///   before_step()                   the step's clock starts
///   bind the batch, forward, backward (an error is caught, not thrown yet)
///   after_gradients(m, g)           agree on stop and errors, reduce gradients and losses
///   TrainHooks::after_gradients     the user's hook; then the loop rethrows a caught error
///   apply_optimizer(m, opt, g)      the optimizer step (all of it, or this process's share)
///   after_step(info), TrainHooks::on_step, before_save() + TrainHooks::save every save_every steps
///   stop_after_step(g, flag)        whether the run ends after this step
///
/// and around the run: train_source / eval_source (each process's share of the data), evaluate (whole-set metrics
/// from every process's share), before_training / after_training, save (a checkpoint, collective).
///
/// Writing one: derive from ParallelStrategy, override what differs from one process, and register a factory by
/// name (register_strategy) from the strategy's own file; `funnel train` picks strategies by name.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/batch_source.hpp"
#include "train/communicator.hpp"
#include "train/loop.hpp"
#include "train/metrics.hpp"
#include "train/model.hpp"
#include "train/optimizer.hpp"

namespace funnel {

class Trainer;

/// The hooks of a parallelism strategy (see the file comment for where the loop calls each). Every default is what
/// one process alone does; collective hooks must be called by every process at the same point.
class ParallelStrategy {
 public:
  virtual ~ParallelStrategy() = default;
  /// The name it is registered under ("local", "replicated", "row-sharded").
  virtual std::string name() const = 0;
  /// The processes the strategy spans.
  virtual Communicator& comm() = 0;
  /// True on the process that prints and writes files (rank 0).
  bool lead() { return comm().rank() == 0; }

  /// Options of the model's parameter store, e.g. embedding tables not allocated (their rows live elsewhere).
  virtual ParamStoreOptions store_options() const { return {}; }
  /// Once the Trainer has built (and perhaps loaded from --init) its model and optimizer: e.g. take this
  /// process's rows of the embedding tables. Collective.
  virtual void attach(Trainer& t);
  /// This process's share of the training data, as a batch source.
  virtual std::unique_ptr<BatchSource> train_source(const Trainer& t);
  /// This process's share of the evaluation data (nullptr without evaluation).
  virtual std::unique_ptr<BatchSource> eval_source(const Trainer& t);

  /// Before the loop's first step.
  virtual void before_training() {}
  /// At the start of every step, before the batch is bound.
  virtual void before_step() {}
  /// After the backward pass (or a failure in this process: g.error), before the user's after_gradients hook:
  /// agree on a stop request (g.stop becomes the decision of every process) and on errors (throw on every process
  /// when any failed), reduce the gradients and the losses.
  virtual void after_gradients(Model& m, GradientStep& g);
  /// The optimizer step on the reduced gradients; g.losses are the global batch's once it returns.
  virtual void apply_optimizer(Model& m, Optimizer<float>& opt, GradientStep& g);
  /// Whether the run ends after this step: by default a stop asked before the step or during it.
  virtual bool stop_after_step(const GradientStep& g, const std::atomic<bool>* stop_flag) {
    return g.stop || (stop_flag && stop_flag->load());
  }
  /// After every step, before TrainHooks::on_step (e.g. a replica check).
  virtual void after_step(const StepInfo& info);
  /// Whole-set metrics of the evaluation data from this process's share `mine` (eval_source's).
  virtual FunnelMetrics evaluate(Model& m, BatchSource& mine, const EvalHooks& hooks);
  /// Before the periodic save hook (TrainHooks::save): e.g. make sharded optimizer state whole.
  virtual void before_save() {}
  /// After the loop returned normally.
  virtual void after_training() {}
  /// Writes a checkpoint of `t` (collective: every process calls it): by default the lead process writes its
  /// store (Trainer::write_checkpoint).
  virtual void save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch);
};

/// One process alone: every hook is the default.
class LocalStrategy final : public ParallelStrategy {
 public:
  std::string name() const override { return "local"; }  ///< "local"
  Communicator& comm() override { return comm_; }           ///< a LocalCommunicator

 private:
  LocalCommunicator comm_;
};

/// What a strategy is made with, from the command line.
struct StrategyOptions {
  std::int64_t check_every = 0;  ///< compare the replicas' parameters every K steps (0 = never; replicated ones)
};

/// Makes a strategy over communicator `c` (which must outlive it).
using StrategyFactory = std::function<std::unique_ptr<ParallelStrategy>(Communicator& c, const StrategyOptions& o)>;

/// Registers a strategy under `name` (from its own file, at static-initialisation time). Returns true, for use as a
/// static initialiser. An Error when the name is taken.
bool register_strategy(const std::string& name, const std::string& help, StrategyFactory make);
/// True when a strategy of that name is registered ("local" always is).
bool has_strategy(const std::string& name);
/// The registered names, "local" first, then in name order.
std::vector<std::string> strategy_names();
/// The strategy `name` over `c`; an Error listing the registered names when there is none of that name.
std::unique_ptr<ParallelStrategy> make_strategy(const std::string& name, Communicator& c,
                                                const StrategyOptions& o = {});

/// Collective, at start: every process must run with the same effective configuration (flags and defaults as a
/// JSON object). Compares a hash of it over the processes; when they differ every process throws funnel::Error
/// naming its rank and showing its own configuration, so replicas never silently train different models.
void check_same_config(Communicator& c, const nlohmann::json& config);

}  // namespace funnel
