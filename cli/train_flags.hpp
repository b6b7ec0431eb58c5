#pragma once
/// @file
/// The training flags shared by `train` and `compare`: flags -> TrainerOptions and DataSources (the library's
/// Trainer does the rest), and the epoch table both print.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/options.hpp"
#include "train/strategy.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {

/// A training run as the flags describe it: what the Trainer needs and where its data comes from.
struct RunOptions {
  TrainerOptions trainer;  ///< model, optimizer, loop, threads and precision; config = the effective configuration
  DataSources data;        ///< the training and evaluation data specs, the held-out fraction, the --init feature map
};
/// ModelConfig's table: --model, --model-options, --embedding-dim, --hidden, --pool, --stages.
const OptionTable<ModelConfig>& model_config_table();
/// StrategyOptions' table: --check-replicas (a run under mpirun).
const OptionTable<StrategyOptions>& strategy_option_table();
/// The training flags, one row per flag bound to its field of RunOptions (cli/options.hpp): the tables of
/// DataSources, ModelConfig, TrainOptions and TrainerOptions. Every command that trains registers its flags from it.
const OptionTable<RunOptions>& run_option_table();
/// The flags of a command that trains: the rows of run_option_table() but those named in `skip` (defaults from
/// `defaults`), the reader flags (read_option_table()), and the command's own `valued` flags and `switches` (help
/// by name: flag_spec).
std::vector<FlagSpec> training_flag_specs(const std::string& command, const RunOptions& defaults,
                                          const std::vector<std::string>& skip,
                                          const std::set<std::string>& valued, const std::set<std::string>& switches);

/// Reads and validates the model, optimizer, loop and data flags (UsageError naming the flag) into `defaults`: the
/// flags given replace their fields, the others keep theirs. Also checks the reader flags and --model-options (on
/// a small throwaway graph of the model) and, with --init, reads and checks the checkpoint's manifest: all before
/// any data is read. Records the effective configuration in RunOptions::trainer.config.
RunOptions run_options(const Flags& f, RunOptions defaults = {});

/// `funnel train`'s flags (training_flag_specs with train's outputs and MPI flags).
std::vector<FlagSpec> train_flag_specs();
/// The flags of `funnel train` that take a value (the reader flags of kDataFlags included); the Python module's
/// train() takes the same.
std::set<std::string> train_valued_flags();
/// The switches of `funnel train` (flags without a value).
std::set<std::string> train_switches();
/// run_options of `funnel train` (all of run_option_table(): the streaming flags --shuffle-window and --prefetch
/// too, with their range checks).
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
