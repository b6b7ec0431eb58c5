#pragma once
// The training flags shared by `train` and `compare`: flags -> TrainerOptions and DataSources (the library's
// Trainer does the rest), and the epoch table both print.
#include <memory>
#include <string>

#include "cli/common.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {

struct RunOptions {
  TrainerOptions trainer;
  DataSources data;
};
// Reads and validates the model, optimizer, loop and data flags (UsageError naming the flag).
RunOptions run_options(const Flags& f);

// `funnel train`'s flags: those that take a value and the switches (the Python module's train() takes the same).
std::set<std::string> train_valued_flags();
std::set<std::string> train_switches();
// run_options and the streaming flags only `train` has (--shuffle-window, --prefetch).
RunOptions train_run_options(const Flags& f);
// The metrics JSON of a run (--metrics-json): the trainer's, with this run's steps and where it resumed from
// (`start_step`: the trainer's start_step() before it trained).
nlohmann::json train_metrics_json(const Trainer& t, const TrainResult& r, std::int64_t start_step);

// Loads the run's data (reader flags from `f`) and prints the readers' skipped-row notes to stderr.
std::shared_ptr<TrainData> load_run_data(const RunOptions& o, const Flags& f);

// Exit 2 (naming the flags) when the embedding table of `vocab` rows and its optimizer state cannot fit in memory.
void check_model_fits(const TrainerOptions& o, std::int64_t vocab);

// The per-epoch metrics table.
std::string format_epochs(const TrainResult& r, const Trainer& t);

}  // namespace funnel::cli
