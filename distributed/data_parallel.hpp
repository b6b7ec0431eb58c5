#pragma once
/// @file
/// Replicated data-parallel training: every rank holds the whole model, computes the gradient of its part of each
/// global batch, and the Reducer turns them into the whole batch's gradient; by default each rank then applies the
/// dense optimizer to its slice of the parameters only and the ranks all-gather the updated values, so every
/// replica holds the same bits (Reducer::reduce_and_apply; DataParallelOptions::shard_optimizer). With in-memory
/// data and the same data order (same seed, or --no-shuffle) step k sees the same global rows as one process with
/// the same batch size: rank r takes the r-th of N nearly equal contiguous parts of the batch. With a streamed
/// cache each rank reads only its chunks (chunk i: rank i % N) and the global batch is the ranks' own batches
/// together.
///
/// Each step also agrees, in one small all-reduce, on (a) a stop request (a signal on any rank: every rank
/// finishes the current step, then stops) and (b) an error on any rank (NaN/Inf in the forward pass, bad data):
/// every rank then throws RemoteError with the failing rank's host and message (for NaN: the node's name), and
/// no rank applies that step.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "distributed/comm.hpp"
#include "distributed/reducer.hpp"
#include "train/batch_source.hpp"
#include "train/loop.hpp"
#include "train/metrics.hpp"
#include "train/optimizer.hpp"
#include "train/strategy.hpp"
#include "train/trainer.hpp"

namespace funnel::dist {

/// An error raised on one rank, reported on every rank.
struct RemoteError : Error {
  /// The failing rank, its host, the non-finite node (or empty) and the message.
  RemoteError(int rank_, std::string host_, std::string node_, const std::string& what)
      : Error(what), rank(rank_), host(std::move(host_)), node(std::move(node_)) {}
  int rank;  ///< the failing rank
  std::string host;  ///< its host
  std::string node;  ///< the non-finite node, when the error was a NaN/Inf
};

class ShardedEmbeddings;  ///< distributed/sharded_embedding.hpp

/// The ranks' parameters differ (found by the periodic hash check).
struct ReplicaMismatch : Error {
  using Error::Error;
};

/// How the replicated strategy runs.
struct DataParallelOptions {
  std::int64_t check_every = 0;  ///< compare a hash of every parameter across ranks every K steps (0 = never)
  /// Each rank runs the dense optimizer on its slice of the parameters only and the ranks all-gather the updated
  /// values (Reducer::reduce_and_apply); false: every rank all-reduces the gradients and runs the whole step.
  bool shard_optimizer = true;
};

/// Where a rank's time and bytes went (sums over steps).
struct DataParallelStats {
  std::int64_t steps = 0;  ///< steps taken
  double comm_seconds = 0.0;     ///< in the step's collectives (including waiting for slower ranks)
  double wait_seconds = 0.0;     ///< of comm_seconds: the agreement all-reduce, i.e. mostly waiting for the
                                 ///< slowest rank
  double sparse_seconds = 0.0;   ///< of comm_seconds: the embedding rows' all-gather and merge
  double compute_seconds = 0.0;  ///< local forward + backward
  double compute_cpu_seconds = 0.0;  ///< the same, CPU time of the calling thread (what a busy machine cannot skew)
  double optimizer_seconds = 0.0;  ///< in the optimizer step
  double optimizer_cpu_seconds = 0.0;  ///< CPU time of the calling thread in the sharded optimizer update
  std::uint64_t optimizer_elements = 0;  ///< dense parameter elements this rank's optimizer updated (sharded)
  double optimizer_dense_cpu_seconds = 0.0;   ///< of optimizer_cpu_seconds: the dense pieces
  double optimizer_sparse_cpu_seconds = 0.0;  ///< and the merged embedding rows (every rank applies all of them)
  std::uint64_t dense_bytes = 0;   ///< sums over steps, this rank's payload
  std::uint64_t sparse_bytes = 0;  ///< embedding rows handed to the all-gather
  std::uint64_t sparse_rows = 0;  ///< rows of them
  std::uint64_t merged_rows = 0;  ///< distinct rows after the merge
  std::int64_t hash_checks = 0;  ///< replica checks run
};

/// shard_of (train/batch_source.hpp): the r-th of n nearly equal contiguous parts of a batch.
using funnel::shard_of;

/// Replicated data parallelism as a parallelism strategy (train/strategy.hpp, registered as "replicated"):
/// funnel::train's loop (train/loop.hpp) runs on every rank over the rank's share of the data, and DataParallel's
/// hooks agree on stop requests and errors, reduce the gradients and losses, apply the optimizer in slices, merge
/// the evaluation's metrics and check the replicas.
class DataParallel : public ParallelStrategy {
 public:
  /// Over the ranks of `c`, for model `m` (e.g. a model of one's own, with train_data_parallel).
  DataParallel(Communicator& c, Model& m, DataParallelOptions o = {});
  /// For a Trainer: the model is the Trainer's, taken in attach().
  explicit DataParallel(Communicator& c, DataParallelOptions o = {});

  std::string name() const override { return "replicated"; }  ///< "replicated"
  Communicator& comm() override { return c_; }                  ///< the ranks
  /// Takes the Trainer's model (the replicas start equal: same seed, or the same --init checkpoint).
  void attach(Trainer& t) override;
  /// In memory: the rank's part of every global batch; streamed: the rank's chunks, batch sizes agreed
  /// (AgreedSource).
  std::unique_ptr<BatchSource> train_source(const Trainer& t) override;
  /// The rank's share of the evaluation data.
  std::unique_ptr<BatchSource> eval_source(const Trainer& t) override;
  void before_training() override { start_clock(); }  ///< starts the step clock
  void before_step() override { start_clock(); }      ///< starts timing a step (DataParallelStats)
  /// Agrees on a stop request and on an error on any rank (RemoteError on every rank, nothing applied), then
  /// reduces the gradients (weight: this rank's rows / the batch's) and the losses; row-sharded tables
  /// (set_sharded) go to their owners first, who update them. With DataParallelOptions::shard_optimizer the dense
  /// gradients are reduced into each rank's slice only.
  void after_gradients(Model& m, GradientStep& g) override;
  /// The optimizer step: with shard_optimizer each rank updates its slice of the parameters, then the ranks
  /// all-gather the values (Reducer::reduce_and_apply); else every rank the whole step. g.losses become the
  /// global batch's mean losses.
  void apply_optimizer(Model& m, Optimizer<float>& opt, GradientStep& g) override;
  /// The stop decision agreed in after_gradients.
  bool stop_after_step(const GradientStep& g, const std::atomic<bool>*) override { return g.stop; }
  /// The replica check (DataParallelOptions::check_every).
  void after_step(const StepInfo& info) override;
  /// Whole-set metrics from every rank's share (see evaluate(BatchSource&)); a stop flag is not looked at during
  /// the evaluation (the ranks could not agree on it there).
  FunnelMetrics evaluate(Model& m, BatchSource& mine, const EvalHooks& hooks) override;
  void before_save() override { sync_optimizer_state(); }    ///< rank 0 then holds the whole state
  void after_training() override { sync_optimizer_state(); }  ///< the state whole on every rank again
  /// Makes the optimizer state whole, then rank 0 writes the checkpoint.
  void save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) override;

  /// Makes the optimizer state whole on every rank after sharded steps (collective: every rank calls it at the same
  /// point; no communication when it is whole). train_data_parallel and the save hook call it, so checkpoints
  /// written by rank 0 hold what one process would hold.
  void sync_optimizer_state();

  /// One step on the global batch `rows` of `d` (the loop's step, on a one-batch source): local forward/backward
  /// on this rank's shard, agreement, reduction, optimizer step (sharded, then sync_optimizer_state()). Returns
  /// true when any rank asked to stop (the step was still applied). Throws RemoteError (every rank) when any rank
  /// failed; nothing is applied then.
  bool step(const Dataset& d, std::span<const std::int64_t> rows, Optimizer<float>& opt, bool stop_requested);

  /// Metrics of the whole evaluation set from every rank's share `mine` (the same numbers on every rank: exact AUCs
  /// over the union of the shares, not an average of per-shard AUCs).
  FunnelMetrics evaluate(BatchSource& mine);

  /// The global batch's mean losses of the last step (identical on every rank).
  const std::vector<float>& losses() const { return losses_; }
  const DataParallelStats& stats() const { return stats_; }  ///< time and bytes so far
  const ReduceBytes& last_bytes() const { return reducer_.last_bytes(); }  ///< the last step's reduction bytes
  const Reducer& reducer() const { return reducer_; }  ///< the gradient reducer
  std::size_t dense_floats() const { return reducer_.dense_floats(); }  ///< floats of the fused dense buffer

  /// Starts timing a step (DataParallelStats: compute, then exchange, then optimizer).
  void start_clock();

  // [shard hook] Row-sharded embedding tables (distributed/sharded_embedding.hpp): exchange() hands their
  /// gradients to `se` (to their owners, who update them) before the reduction of the dense ones, and param_hash()
  /// leaves them out (each rank holds other rows). Null: every table replicated.
  void set_sharded(ShardedEmbeddings* se) { sharded_ = se; }

  /// FNV-1a hash of every parameter's bytes.
  std::uint64_t param_hash();
  /// All ranks compare param_hash(); ReplicaMismatch naming the ranks that differ from rank 0.
  void check_replicas(std::int64_t step);

 private:
  Model& model();

  Communicator& c_;
  Model* m_ = nullptr;
  DataParallelOptions o_;
  Reducer reducer_;
  ShardedEmbeddings* sharded_ = nullptr;  ///< [shard hook]
  std::vector<float> losses_, extra_;
  bool mine_ = false;  ///< this rank computed gradients in the current step
  std::int64_t steps_ = 0;
  DataParallelStats stats_;
  std::chrono::steady_clock::time_point mark_{};
  double cpu_mark_ = 0;
};

/// A per-rank source (each rank its own batches, e.g. its chunks of a cache) whose batch sizes are agreed: next()
/// returns the sum over the ranks as BatchRows::rows, so every rank ends the epoch at the same step (a rank out of
/// rows contributes none until all are). One small all-reduce per batch.
class AgreedSource : public BatchSource {
 public:
  /// Over this rank's own source `mine` (collective: the ranks' row counts are summed).
  AgreedSource(Communicator& c, std::unique_ptr<BatchSource> mine);
  /// This rank's own source's check.
  void check(const ModelConfig& cfg, const std::string& what) const override { mine_->check(cfg, what); }
  std::int64_t rows() const override { return rows_; }  ///< the sum over the ranks
  void start_epoch(std::int64_t epoch) override { mine_->start_epoch(epoch); }  ///< this rank's own source's
  BatchRows next(Model& m) override;  ///< the next batch; rows summed over the ranks (collective)
  const float* conversion_entire() const override { return mine_->conversion_entire(); }  ///< this rank's own source's
  const float* entire(std::int64_t stage) const override { return mine_->entire(stage); }  ///< this rank's own source's
  const std::int64_t* users() const override { return mine_->users(); }  ///< this rank's own source's

 private:
  Communicator& c_;
  std::unique_ptr<BatchSource> mine_;
  std::int64_t rows_ = 0;
};

/// funnel::train over `train` (every rank its share: DatasetSource with shard = rank, or an AgreedSource) with
/// `dp` as the after_gradients hook; evaluation after each epoch on every rank's share of `eval` (may be null).
/// hooks.on_step / on_epoch / save run on every rank (callers print and save on rank 0 only). The stop flag is
/// agreed: a stop on any rank ends every rank after the same step. The optimizer runs sharded
/// (DataParallelOptions::shard_optimizer); on return its state is whole on every rank again.
TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, BatchSource& train,
                                BatchSource* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step = 0);
/// The same on in-memory data: with the same data order (same seed, or no shuffle) step k sees the same global rows
/// as one process with the same batch size; rank r takes the r-th of N nearly equal contiguous parts of each batch.
TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, const Dataset& train,
                                const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step = 0);

/// Every rank scores its contiguous share of `d`'s rows; the whole-set metrics, identical on every rank. Equal to
/// funnel::evaluate on one process up to the order of the sums.
FunnelMetrics evaluate_sharded(Communicator& c, Model& m, const Dataset& d, std::int64_t batch_size);

/// check_same_config (train/strategy.hpp): every rank must run with the same effective configuration.
using funnel::check_same_config;

}  // namespace funnel::dist
