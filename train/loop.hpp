#pragma once
// The training loop: epochs of shuffled mini-batches, compute gradients, apply the optimizer, evaluate on the
// whole evaluation set after each epoch. Deterministic for a given seed (and thread count).
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "train/metrics.hpp"
#include "train/optimizer.hpp"
#include "train/model.hpp"

namespace funnel {

struct TrainOptions {
  std::int64_t epochs = 1;
  std::int64_t batch_size = 1024;
  std::int64_t max_steps = 0;  // 0 = no limit
  std::uint64_t seed = 1;
  bool shuffle = true;
  std::int64_t save_every = 0;  // call hooks.save every N steps (0 = never)
  std::int64_t eval_batch_size = 4096;
};

struct StepInfo {
  std::int64_t step = 0;   // global step count (1-based, after the step)
  std::int64_t epoch = 0;  // 0-based
  std::int64_t rows_done = 0;
  std::int64_t rows_total = 0;  // in this epoch
  std::vector<double> running_losses;  // exponential moving average per loss
  double rows_per_sec = 0.0;           // training loop only, this epoch
};

struct EpochReport {
  std::int64_t epoch = 0;
  std::int64_t steps = 0;
  double samples_per_sec = 0.0;  // training loop only
  std::vector<double> mean_losses;  // mean training loss per loss node over the epoch
  bool has_eval = false;
  FunnelMetrics eval;
};

struct TrainHooks {
  // After the backward pass and before the optimizer step, with the step about to be taken (1-based): the
  // gradients are in m.exec() (grad_mut, sparse_grad_mut) and may be changed, e.g. all-reduced across processes.
  std::function<void(Model& m, std::int64_t step)> after_gradients;
  std::function<void(const StepInfo&)> on_step;        // after every step
  std::function<void(const EpochReport&)> on_epoch;    // after every epoch's evaluation
  std::function<void(std::int64_t step, std::int64_t epoch)> save;  // every save_every steps
  const std::atomic<bool>* stop = nullptr;             // checked after every step
};

struct TrainResult {
  std::vector<EpochReport> epochs;
  std::int64_t steps = 0;
  bool stopped = false;  // by the stop flag
};

// Trains `m` on `train` starting at global step `start_step`. NaN/Inf anywhere in the forward pass throws
// NonFiniteError naming the node.
TrainResult train(Model& m, Optimizer<float>& opt, const Dataset& train, const Dataset* eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step = 0);

// Whole-set metrics of the model on `d` (the paper's: CTR AUC on all, CVR AUC on clicked, CTCVR AUC on all).
FunnelMetrics evaluate(Model& m, const Dataset& d, std::int64_t batch_size);

// Split off the last `fraction` of rows (for a held-out evaluation set when none is given). With shared blocks
// (Dataset::row_block) each part keeps only the blocks its rows use, renumbered in order of first use.
void split_tail(const Dataset& all, double fraction, Dataset& head, Dataset& tail);

}  // namespace funnel
