#pragma once
/// @file
/// Shared by the train / eval / predict / compare subcommands: data flags, model flags, output helpers. Each check
/// throws UsageError naming the flag, so a command stops with exit 2 before it reads any data.
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

/// The reader flags (--on-bad-row, --buckets, --min-count, --pool-weights, --max-rows, --user-column), one row per
/// flag bound to its field of ReadOptions (cli/options.hpp).
const OptionTable<ReadOptions>& read_option_table();
/// The flags read_options() and read_data() understand: the names of read_option_table() (without --). A command
/// that reads data adds them to its valued flags.
extern const std::set<std::string> kDataFlags;

/// Reads the data flags into ReadOptions: --on-bad-row error|skip, --pool-weights ones|values, --max-rows (0 = all),
/// --user-column (csv: data only), --min-count (a vocabulary map) or --buckets (hashing, at most 2^30 rows per
/// field; the two exclude each other). Throws UsageError naming the flag on a bad value. Reads no data.
ReadOptions read_options(const Flags& flags);

/// funnel::load_data (train/data_spec.hpp) of the data spec `spec` with the reader flags; prints the skipped-row
/// note, if any, to stderr. `map_json`: a feature map to map the data with (a checkpoint's), or null to build one.
/// Throws UsageError on a bad reader flag and what load_data throws on bad data.
LoadedData read_data(const std::string& spec, const Flags& flags, const nlohmann::json* map_json = nullptr);


/// Exit 2 (UsageError naming both flags) when two of the output `flags` given name the same file (the second
/// write would destroy the first): paths are compared after resolving symlinks and by device and inode. Flags not
/// given or empty are ignored. Writes nothing.
void check_distinct_outputs(const Flags& f, const std::vector<std::string>& flags);

/// --model-options KEY=VALUE,...: the model's own knobs, as a JSON object (empty when the flag is absent). Throws
/// UsageError on malformed text; the keys and values are checked by the model when it is built.
nlohmann::json model_options_flag(const Flags& flags);

/// The number of processes an MPI launcher (mpirun; Open MPI's OMPI_COMM_WORLD_SIZE or PMI_SIZE) started this one
/// among: 1 when none did or the variable is not a positive number. `funnel train` compares it with its
/// communicator's size: a build without the MPI layer started as several processes refuses to run (each process
/// would train alone and write the same outputs).
int launcher_process_count();
/// --threads as the training table's row reads it (its check and default), for commands that train nothing.
int threads_flag(const Flags& f);
/// Sets the number of threads, `n` in [1, 256] (funnel::set_num_threads: the worker pool that also splits gemms;
/// BLAS stays at one), and reads FUNNEL_GEMM and FUNNEL_ISA now. Throws UsageError on `n` out of range or a bad
/// value of either variable, so the command stops before any work. Process-wide: call it from the main thread.
void set_threads(int n);
/// --precision fp32|bf16 (UsageError naming the flag on another value, or on a bad FUNNEL_BF16 or FUNNEL_GEMM).
/// When bf16 will run emulated (no native bf16 gemm on this CPU, the openblas backend, or FUNNEL_BF16=emulated)
/// prints why to stderr, once per process.
GemmPrecision precision_flag(const Flags& f);
/// Exit 2 when bf16 cannot be used as the environment asks (FUNNEL_BF16, FUNNEL_GEMM); says once on stderr when
/// bf16 is emulated.
void check_precision(GemmPrecision p);
/// Applies precision_flag(f) to the process (set_gemm_precision): what eval and predict do before they run.
void set_precision(const Flags& f);

}  // namespace funnel::cli
