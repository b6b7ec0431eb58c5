#pragma once
// Shared by the train / eval / predict / compare subcommands: data flags, model flags, output helpers.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/readers.hpp"
#include "ops/gemm_backend.hpp"
#include "models/model.hpp"
#include "cli/command.hpp"
#include "cli/options.hpp"
#include "train/data_spec.hpp"

namespace funnel::cli {

/// The reader flags (--on-bad-row, --buckets, ...), one row per flag bound to its field of ReadOptions
/// (cli/options.hpp).
const OptionTable<ReadOptions>& read_option_table();
// Flags understood by read_options() / read_data(): the names of read_option_table().
extern const std::set<std::string> kDataFlags;

// Reads the data flags into ReadOptions.
ReadOptions read_options(const Flags& flags);

// funnel::load_data with the reader flags; prints the skipped-row note, if any, to stderr.
LoadedData read_data(const std::string& spec, const Flags& flags, const nlohmann::json* map_json = nullptr);


// Exit 2 when two of the output `flags` given name the same file (the second write would destroy the first).
void check_distinct_outputs(const Flags& f, const std::vector<std::string>& flags);

// --model-options KEY=VALUE,...: the model's own knobs, as a JSON object (empty when the flag is absent).
nlohmann::json model_options_flag(const Flags& flags);

/// --threads as the training table's row reads it (its check and default), for commands that train nothing.
int threads_flag(const Flags& f);
// Set the number of threads (funnel::set_num_threads: the worker pool that also splits gemms; BLAS stays at one).
void set_threads(int n);
// --precision fp32|bf16 (exit 2 naming the flag on another value); set_precision applies it for eval/predict.
GemmPrecision precision_flag(const Flags& f);
/// Exit 2 when bf16 cannot be used as the environment asks (FUNNEL_BF16, FUNNEL_GEMM); says once on stderr when
/// bf16 is emulated.
void check_precision(GemmPrecision p);
void set_precision(const Flags& f);

}  // namespace funnel::cli
