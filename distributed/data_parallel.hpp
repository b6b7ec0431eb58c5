#pragma once
// Replicated data-parallel training: every rank holds the whole model, computes the gradient of its part of each
// global batch, and the Reducer makes the gradients of the whole batch identical on every rank before each
// optimizer step. With the same data order (same seed, or --no-shuffle) step k sees the same global rows as one
// process with the same batch size: rank r takes the r-th of N nearly equal contiguous parts of the batch.
//
// Each step also agrees, in one small all-reduce, on (a) a stop request (a signal on any rank: every rank
// finishes the current step, then stops) and (b) an error on any rank (NaN/Inf in the forward pass, bad data):
// every rank then throws RemoteError with the failing rank's host and message (for NaN: the node's name), and
// no rank applies that step.
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "distributed/comm.hpp"
#include "distributed/reducer.hpp"
#include "train/loop.hpp"
#include "train/metrics.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

namespace funnel::dist {

// An error raised on one rank, reported on every rank.
struct RemoteError : Error {
  RemoteError(int rank_, std::string host_, std::string node_, const std::string& what)
      : Error(what), rank(rank_), host(std::move(host_)), node(std::move(node_)) {}
  int rank;
  std::string host;
  std::string node;  // the non-finite node, when the error was a NaN/Inf
};

// The ranks' parameters differ (found by the periodic hash check).
struct ReplicaMismatch : Error {
  using Error::Error;
};

struct DataParallelOptions {
  std::int64_t check_every = 0;  // compare a hash of every parameter across ranks every K steps (0 = never)
};

struct DataParallelStats {
  std::int64_t steps = 0;
  double comm_seconds = 0.0;     // in the step's collectives (including waiting for slower ranks)
  double compute_seconds = 0.0;  // local forward + backward
  std::uint64_t dense_bytes = 0;   // sums over steps, this rank's payload
  std::uint64_t sparse_bytes = 0;
  std::uint64_t sparse_rows = 0;
  std::uint64_t merged_rows = 0;
  std::int64_t hash_checks = 0;
};

// The r-th of n nearly equal contiguous parts of `rows` (the first size%n parts get one row more).
std::span<const std::int64_t> shard_of(std::span<const std::int64_t> rows, int r, int n);

class DataParallel {
 public:
  DataParallel(Communicator& c, Model& m, DataParallelOptions o = {});

  // One step on the global batch `rows` of `d`: local forward/backward on this rank's shard, agreement,
  // reduction, optimizer step. Returns true when any rank asked to stop (the step was still applied).
  // Throws RemoteError (every rank) when any rank failed; nothing is applied then.
  bool step(const Dataset& d, std::span<const std::int64_t> rows, Optimizer<float>& opt, bool stop_requested);

  // The global batch's mean losses of the last step (identical on every rank).
  const std::vector<float>& losses() const { return losses_; }
  const DataParallelStats& stats() const { return stats_; }
  const ReduceBytes& last_bytes() const { return reducer_.last_bytes(); }
  std::size_t dense_floats() const { return reducer_.dense_floats(); }
  Communicator& comm() { return c_; }

  // FNV-1a hash of every parameter's bytes.
  std::uint64_t param_hash();
  // All ranks compare param_hash(); ReplicaMismatch naming the ranks that differ from rank 0.
  void check_replicas(std::int64_t step);

 private:
  Communicator& c_;
  Model& m_;
  DataParallelOptions o_;
  Reducer reducer_;
  std::vector<float> losses_, extra_;
  std::int64_t steps_ = 0;
  DataParallelStats stats_;
};

// The training loop of funnel::train (same epochs, order, hooks, stop flag, save points) with each step run by
// `dp`. hooks.on_step / on_epoch / save run on every rank (callers print and save on rank 0 only). The stop
// flag is agreed: a stop on any rank ends every rank after the same step. Evaluation uses evaluate_sharded.
TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, const Dataset& train,
                                const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step = 0);

// Every rank scores its contiguous share of `d`'s rows; the scores are gathered (in row order) and the exact
// whole-set metrics computed from them, identical on every rank (exact AUCs over the whole set, not an average
// of per-shard AUCs). Equal to funnel::evaluate on one process up to float rounding of the forward pass at
// another batch size.
FunnelMetrics evaluate_sharded(Communicator& c, Model& m, const Dataset& d, std::int64_t batch_size);

}  // namespace funnel::dist
