#pragma once
/// @file
/// The training flags shared by `train` and `compare`: flags -> TrainerOptions and DataSources (the library's
/// Trainer does the rest), and the epoch table both print.
#include <memory>
#include <string>

#include "cli/common.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {

/// A training run as the flags describe it: what the Trainer needs and where its data comes from.
struct RunOptions {
  TrainerOptions trainer;  ///< model, optimizer, loop, threads and precision; config = the effective configuration
  DataSources data;        ///< the training and evaluation data specs, the held-out fraction, the --init feature map
};
/// Reads and validates the model, optimizer, loop and data flags (UsageError naming the flag). Also checks the
/// reader flags and --model-options (on a small throwaway graph of the model) and, with --init, reads and checks
/// the checkpoint's manifest: all before any data is read. Records the effective configuration in
/// RunOptions::trainer.config.
RunOptions run_options(const Flags& f);

/// The flags of `funnel train` that take a value (the reader flags of kDataFlags included); the Python module's
/// train() takes the same.
std::set<std::string> train_valued_flags();
/// The switches of `funnel train` (flags without a value).
std::set<std::string> train_switches();
/// run_options and the streaming flags only `train` has (--shuffle-window, --prefetch), with their range checks.
RunOptions train_run_options(const Flags& f);
/// The metrics JSON of a run (--metrics-json): the trainer's, with this run's steps and where it resumed from
/// (`start_step`: the trainer's start_step() before it trained).
nlohmann::json train_metrics_json(const Trainer& t, const TrainResult& r, std::int64_t start_step);

/// Loads the run's data (reader flags from `f`) and prints the readers' skipped-row notes to stderr, then checks
/// that the model fits in memory (check_model_fits). Throws what load_train_data throws on bad data.
std::shared_ptr<TrainData> load_run_data(const RunOptions& o, const Flags& f);

/// Exit 2 (UsageError naming the flags) when the embedding table of `vocab` rows, its gradient and its optimizer
/// state (float32) need more bytes than the machine's physical memory.
void check_model_fits(const TrainerOptions& o, std::int64_t vocab);

/// The per-epoch metrics table the commands print (metrics_table of the run's epochs).
std::string format_epochs(const TrainResult& r, const Trainer& t);

}  // namespace funnel::cli
