#pragma once
/// @file
/// The one training loop, evaluation and prediction of funnel, over any BatchSource (train/batch_source.hpp: an
/// in-memory Dataset or a v3 cache streamed from disk; optionally one process's share of the data).
///
/// A step: the source binds the next batch, compute gradients (forward, losses, backward), the strategy's and the
/// user's after_gradients hooks, apply the optimizer. How the processes of a distributed run agree and reduce is the
/// parallelism strategy's (train/strategy.hpp); without one the run is one process. An epoch is one pass of the
/// source; the evaluation after it scores a whole evaluation set with exact AUCs.
/// Deterministic for a given seed (and thread count).
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/dataset.hpp"
#include "train/batch_source.hpp"
#include "train/lr_schedule.hpp"
#include "train/metrics.hpp"
#include "train/optimizer.hpp"
#include "train/model.hpp"

namespace funnel {

class ParallelStrategy;  // train/strategy.hpp

/// How long and on what batches the loop trains.
struct TrainOptions {
  std::int64_t epochs = 1;  ///< passes over the training data
  std::int64_t batch_size = 1024;  ///< rows of a (global) batch
  std::int64_t max_steps = 0;  ///< 0 = no limit
  std::uint64_t seed = 1;  ///< of the data order
  bool shuffle = true;  ///< shuffle the rows every epoch
  std::int64_t save_every = 0;  ///< call hooks.save every N steps (0 = never)
  std::int64_t eval_batch_size = 4096;  ///< rows of an evaluation batch
  /// Streamed caches only (CacheSource): rows of the shuffle window, batches decoded ahead by the reader thread.
  std::int64_t shuffle_window = 1 << 18;
  std::int64_t prefetch = 4;  ///< batches the reader thread decodes ahead
  /// The learning rate over the run (train/lr_schedule.hpp): set on the optimizer before every step from its
  /// configured rate, which is put back when the run ends. lr_schedule.steps = 0 with an active schedule: the loop
  /// counts the run's steps from the source (epochs × batches, at most max_steps).
  LrSchedule lr_schedule;
  /// Time every op of the steady steps (after the warm-up, not the evaluation): TrainResult::profile.
  bool profile = false;
};

/// One op node's share of the steady training steps (TrainOptions::profile).
struct OpTime {
  std::string node;  ///< the node's full name
  std::string op;    ///< its op
  double forward_ms = 0.0;   ///< its forward, per steady step
  double backward_ms = 0.0;  ///< its backward (with adding fan-out gradients), per steady step
  /// The part of forward_ms + backward_ms outside loops that ran on more than one thread: serial work, during which
  /// the other threads wait (equal to the sum with one thread).
  double serial_ms = 0.0;
  /// The part in which the training thread, done with its share of a parallel loop, waited for the other threads.
  double wait_ms = 0.0;
};

/// What on_step sees after every step.
struct StepInfo {
  std::int64_t step = 0;   ///< global step count (1-based, after the step)
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t rows_done = 0;  ///< rows trained in this epoch so far
  std::int64_t rows_total = 0;  ///< in this epoch
  std::vector<double> running_losses;  ///< exponential moving average per loss
  double rows_per_sec = 0.0;           ///< training loop only, this epoch
};

/// One epoch of training and the evaluation after it.
struct EpochReport {
  std::int64_t epoch = 0;  ///< 0-based
  std::int64_t steps = 0;  ///< steps taken in the epoch
  double samples_per_sec = 0.0;  ///< training loop only
  std::vector<double> mean_losses;  ///< mean training loss per loss node over the epoch
  bool has_eval = false;  ///< an evaluation ran after the epoch
  FunnelMetrics eval;  ///< its whole-set metrics
};

/// What after_gradients (the strategy's and the user's) sees of a step, and may change.
struct GradientStep {
  std::int64_t step = 0;        ///< the step about to be taken (1-based)
  BatchRows batch;              ///< rows of the batch, and how many this process computed gradients for
  std::exception_ptr error;     ///< binding the batch or computing its gradients failed in this process
  bool stop = false;            ///< in: this process was asked to stop before the step (TrainHooks::stop); a
                                ///< strategy that agrees on stopping sets the processes' decision
  std::span<float> losses;      ///< the batch's mean losses (this process's rows); the strategy makes them the
                                ///< global batch's
};

/// Where a whole-set evaluation is (EvalHooks::on_batch, after every batch).
struct EvalProgress {
  std::int64_t batches = 0;  ///< batches scored so far
  std::int64_t rows_done = 0;  ///< rows scored so far
  std::int64_t rows_total = 0;  ///< of the source
  double rows_per_sec = 0.0;  ///< scoring rate so far
};

/// What a whole-set evaluation calls back and looks at.
struct EvalHooks {
  const std::atomic<bool>* stop = nullptr;                ///< checked after every batch: EvalInterrupted when set
  std::function<void(const EvalProgress&)> on_batch;      ///< after every batch
};

/// Thrown by evaluate() when its stop flag is set: no metrics (a part of the set would mislead).
struct EvalInterrupted : Error {
  EvalInterrupted() : Error("evaluation interrupted") {}
};

/// The user's hooks into the loop (the strategy's run around them: train/strategy.hpp).
struct TrainHooks {
  /// After the backward pass (and the strategy's reduction) and before the optimizer step: the gradients are in
  /// m.params() (ParamStore::grad, sparse_grad) and may be changed. Called even when this process failed (s.error
  /// set: the gradients are not valid); the loop rethrows the error after the hook returns. A throw from the hook
  /// ends training without applying the step. (A strategy that applies the optimizer in shares, e.g. the
  /// replicated data-parallel one, makes s.losses the global batch's only in its optimizer step.)
  std::function<void(Model& m, GradientStep& s)> after_gradients;
  std::function<void(const StepInfo&)> on_step;        ///< after every step
  std::function<void(const EpochReport&)> on_epoch;    ///< after every epoch's evaluation
  std::function<void(std::int64_t step, std::int64_t epoch)> save;  ///< every save_every steps
  const std::atomic<bool>* stop = nullptr;             ///< checked after every step and every evaluation batch
  std::function<void(const EvalProgress&)> on_eval_batch;  ///< the evaluation after an epoch: after every batch
};

/// What a training run did.
struct TrainResult {
  std::vector<EpochReport> epochs;  ///< every epoch that took a step
  std::int64_t steps = 0;  ///< the global step count at the end
  bool stopped = false;  ///< by the stop flag
  bool stopped_in_eval = false;  ///< ... during the evaluation after an epoch (that epoch then has no metrics)
  /// The training loop's rate after its first kWarmupSteps steps (in which buffers, optimizer slots and gemm
  /// kernels are made and first touched), as benchmarks time a loop: rows and seconds of the later steps only
  /// (0 when the run took no more steps than that).
  static constexpr std::int64_t kWarmupSteps = 5;
  std::int64_t steady_rows = 0;  ///< rows of the steps after the warm-up
  std::int64_t steady_steps = 0;  ///< how many steps those were
  double steady_seconds = 0.0;  ///< their seconds
  /// Where those seconds went: waiting for the batch (the source's next(): binding it, and for a streaming source
  /// any wait for its reader), the forward and backward passes, and everything after them (the strategy's
  /// exchange, the after-gradients hook, the optimizer). The three sum to steady_seconds.
  double steady_batch_seconds = 0.0;     ///< waiting for and binding the batches
  double steady_gradient_seconds = 0.0;  ///< the forward and backward passes
  double steady_update_seconds = 0.0;    ///< the exchange, the hook and the optimizer
  /// With TrainOptions::profile: every op node that ran in the steady steps, the most expensive first.
  std::vector<OpTime> profile;
  /// With TrainOptions::profile, per steady step (core/parallel.hpp ThreadTimes): the milliseconds inside loops that
  /// ran on more than one thread, and each thread's milliseconds running chunks of them (0: the training thread,
  /// which also runs everything outside the loops; a worker idles for the rest of the step).
  double profile_loop_ms = 0.0;
  double profile_wait_ms = 0.0;  ///< the training thread's waits for the others inside those loops (ThreadTimes)
  std::vector<double> profile_thread_busy_ms;  ///< one per thread (empty without a profile)
  /// steady_rows / steady_seconds (0 without steady steps).
  double steady_samples_per_sec() const {
    return steady_seconds > 0 ? static_cast<double>(steady_rows) / steady_seconds : 0.0;
  }
};

/// The evaluation after each epoch (empty: none). It may throw EvalInterrupted (the stop flag, see EvalHooks):
/// training then ends as stopped.
using EvalFn = std::function<FunnelMetrics(Model&)>;

/// Trains `m` on `train` (o.epochs passes; o.batch_size and the order are the source's) starting at global step
/// `start_step`, evaluating with `eval` after every epoch. NaN/Inf anywhere in the forward pass throws
/// NonFiniteError naming the node. `strategy`: the parallelism strategy whose hooks run in every step (null: one
/// process, LocalStrategy); `train` is then this process's share of the data.
TrainResult train(Model& m, Optimizer<float>& opt, BatchSource& train, const EvalFn& eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step = 0, ParallelStrategy* strategy = nullptr);
/// The same on in-memory data: batches of o.batch_size rows, shuffled with o.seed when o.shuffle.
TrainResult train(Model& m, Optimizer<float>& opt, const Dataset& train, const Dataset* eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step = 0);

/// The forward pass of `targets` (B×1 nodes) over one epoch of `src`, in its order: out(values, rows) per batch,
/// one pointer per target to `rows` values (valid during the call); `src` stays bound to the batch meanwhile.
void forward_each_batch(Model& m, BatchSource& src, const std::vector<NodeId>& targets,
                        const std::function<void(const std::vector<const float*>&, std::int64_t)>& out);

/// Whole-set metrics of every stage of the model on one epoch of `src` (for two stages the paper's: CTR AUC on all,
/// CVR AUC on clicked, CTCVR AUC on all; GAUCs when the source has user keys; see StreamingFunnelMetrics for the
/// memory this takes). `combine`, when given, runs on the accumulated
/// metrics before the result (e.g. StreamingFunnelMetrics::merge across the processes that each scored a share).
/// `hooks`: progress after every batch, and a stop flag (EvalInterrupted); with `combine` (several processes) a stop
/// flag must be set on all of them alike, or none.
FunnelMetrics evaluate(Model& m, BatchSource& src, const std::function<void(StreamingFunnelMetrics&)>& combine = {},
                       const EvalHooks& hooks = {});
/// The same on an in-memory data set, in batches of `batch_size` rows.
FunnelMetrics evaluate(Model& m, const Dataset& d, std::int64_t batch_size);

/// One value per row for each of the model's prediction columns (ModelHandle::columns), every row of `d` in order.
Predictions predict(Model& m, const Dataset& d, std::int64_t batch_size);
/// The values of the B×1 nodes `nodes` for every row of `d`, in order: out[k][row].
std::vector<std::vector<float>> predict_nodes(Model& m, const Dataset& d, std::int64_t batch_size,
                                              const std::vector<NodeId>& nodes);

/// Split off the last `fraction` of rows (for a held-out evaluation set when none is given). With shared blocks
/// (Dataset::row_block) each part keeps only the blocks its rows use, renumbered in order of first use.
void split_tail(const Dataset& all, double fraction, Dataset& head, Dataset& tail);

}  // namespace funnel
