#pragma once
/// @file
/// A training run as a library: data (train/data_spec.hpp), a registered model, an optimizer, optionally resumed
/// from a checkpoint; the loop with hooks (train/loop.hpp: on_step, after_gradients, on_epoch, save, stop);
/// checkpoints and a metrics report. The `funnel` CLI is one user of it; a program of one's own is another:
///
///   TrainerOptions o;
///   o.model.kind = "esmm";
///   Trainer t(o, load_train_data({.train = "synthetic"}, ReadOptions{}));
///   TrainHooks h;
///   h.on_step = [](const StepInfo& i) { /* e.g. print i.running_losses */ };
///   TrainResult r = t.train(h);
///   t.save("out/ck", r.steps);
///
/// Distributed: give the Trainer a parallelism strategy (train/strategy.hpp), e.g.
/// make_strategy("replicated", process_communicator()) when the MPI layer is linked in; the same calls then train
/// every process on its share of the data and save one checkpoint.
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "ops/gemm_backend.hpp"
#include "train/checkpoint.hpp"
#include "train/data_spec.hpp"
#include "train/loop.hpp"
#include "train/metrics_report.hpp"
#include "train/model.hpp"
#include "train/optimizer.hpp"
#include "train/strategy.hpp"

namespace funnel {

/// Everything a Trainer is made with (what `funnel train`'s flags set).
struct TrainerOptions {
  ModelConfig model;               ///< kind, dims, options; fields/vocab/dense/stages come from the data
  bool model_dims_given = false;   ///< dim / hidden set by the user: a resumed checkpoint must agree
  TrainOptions train;  ///< epochs, batch size, seed, ...
  std::string optimizer = "adam";  ///< adam | adagrad | sgd
  OptimizerConfig opt;  ///< the optimizer's learning rate and options
  std::string init_dir;            ///< resume from this checkpoint (parameters, optimizer state, step)
  bool reset_optimizer = false;    ///< with init_dir: take the parameters only, start the optimizer afresh
  int threads = 1;                 ///< funnel's worker pool (set_num_threads) when the trainer is made
  GemmPrecision precision = GemmPrecision::fp32;  ///< of the float gemms' inputs (set_gemm_precision), ditto
  nlohmann::json config;           ///< the run's effective configuration (an object, or null): saved in checkpoints
                                   ///< and in metrics_json
};

/// A whole training run: data, model, optimizer, strategy, loop, checkpoints, metrics.
class Trainer {
 public:
  /// Builds the model for the data (and from the checkpoint when init_dir is set: its config must match), its
  /// parameter store as `strategy` asks (ParallelStrategy::store_options), then attaches the strategy (collective
  /// for a distributed one). Null strategy: one process (LocalStrategy).
  Trainer(const TrainerOptions& o, std::shared_ptr<const TrainData> data,
          std::shared_ptr<ParallelStrategy> strategy = nullptr);

  /// Trains from the current step (0, or the checkpoint's) for o.train's epochs/steps: train/loop.hpp's loop over
  /// the strategy's share of the data (train_source()), evaluating its share of eval_source() after every epoch.
  TrainResult train(const TrainHooks& hooks = {});
  /// o.train.max_steps counted from the current step (what train() passes to the loop).
  TrainOptions loop_options() const;
  /// The training data as a batch source: in memory (shuffled with o.train.seed) or streamed from the cache
  /// (o.train.shuffle_window, o.train.prefetch). With `shards` > 1, the `shard`-th process's share: of every
  /// in-memory batch the shard-th contiguous part; of a streamed cache every shards-th chunk from the shard-th
  /// (each process reads only its chunks, and its batches are its own).
  std::unique_ptr<BatchSource> train_source(int shard = 0, int shards = 1) const;
  /// The evaluation data in order (nullptr without evaluation), or the shard-th process's share of it.
  std::unique_ptr<BatchSource> eval_source(int shard = 0, int shards = 1) const;
  /// Writes a checkpoint of the model, optimizer state and data mapping (atomically), as the strategy does it
  /// (ParallelStrategy::save: collective; one process writes). `epoch`: the epochs trained into the model (the
  /// manifest's "epoch"); by default start_epoch().
  void save(const std::string& dir, std::int64_t step, std::int64_t epoch = -1);
  /// This process's store as a checkpoint (what save() does in one process).
  void write_checkpoint(const std::string& dir, std::int64_t step, std::int64_t epoch = -1);
  /// The epochs trained into the model before this run: the --init checkpoint's, or 0 for a fresh model.
  std::int64_t start_epoch() const { return start_epoch_; }

  Model& model() { return *model_; }  ///< the model being trained
  Optimizer<float>& optimizer() { return *opt_; }  ///< its optimizer
  ParallelStrategy& strategy() { return *strategy_; }  ///< how the run is spread over processes
  const TrainerOptions& options() const { return o_; }  ///< o.model completed from the data / checkpoint
  const TrainData& data() const { return *data_; }  ///< the training (and evaluation) data
  std::int64_t start_step() const { return start_step_; }  ///< the current step: 0, the checkpoint's, or after train()

  std::string model_description() const;                       ///< one line: model, sizes, optimizer, batch...
  const std::string& loss_name(std::size_t k) const;           ///< the model's k-th loss ("ctr", "ctcvr")
  nlohmann::json metrics_json(const TrainResult& r) const;     ///< the run and every epoch's metrics

 private:
  TrainerOptions o_;
  std::shared_ptr<const TrainData> data_;
  std::shared_ptr<ParallelStrategy> strategy_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer<float>> opt_;
  std::int64_t start_step_ = 0;
  std::int64_t start_epoch_ = 0;
};

/// A model and its parameters from a checkpoint directory, for evaluation and prediction.
struct LoadedModel {
  std::unique_ptr<Model> model;  ///< the model with the checkpoint's parameters
  CheckpointInfo info;  ///< info.data maps new data the way the training data was mapped
};
/// Reads the model and its parameters from a checkpoint directory (no optimizer state).
LoadedModel load_model(const std::string& checkpoint_dir);

}  // namespace funnel
