// What `--help` says about the flags that no options table holds (the training and reader flags are rows of their
// structs' tables: cli/train_flags.cpp, cli/common.cpp): meaning, value type, default and allowed values. One table
// for every command: a flag means the same wherever it appears, except where a command-specific row
// ("command:flag") says otherwise. `config` is the machine-readable default written into a run's effective
// configuration ("" = unset / none).
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "cli/command.hpp"
#include "data/formats.hpp"
#include "cli/train_flags.hpp"

namespace funnel::cli {
namespace {

struct Row {
  const char* key;  // "flag" or "command:flag"
  FlagHelp help;
};

// clang-format off
const Row kRows[] = {
  // data
  {"eval:data", {"data to evaluate (same spec forms as train; mapped with the checkpoint's feature map)", "SPEC", "", "", ""}},
  {"predict:data", {"data to predict (same spec forms as train; mapped with the checkpoint's feature map)", "SPEC", "", "", ""}},
  {"no-header", {"the csv data has no header line: read it with the checkpoint's training columns", "", "off", "", "false"}},
  // model
  {"gradcheck:model", {"gradient-check this model: every parameter, through each loss and their weighted sum", "NAME", "", "a registered model", ""}},
  {"models", {"models to compare, comma-separated", "LIST", "every registered model", "registered models", ""}},
  // optimisation
  {"dot:seed", {"seed of the numeric gradient-flow probe", "INT", "1", "≥ 0", "1"}},
  {"gradcheck:seed", {"seed of the parameter values and inputs being checked", "INT", "0", "≥ 0", "0"}},
  {"seeds", {"train every model this many times (seed, seed+1, ...) and print mean ± std and paired differences", "INT", "1", "1..1000", "1"}},
  {"vary-data-seed", {"with --seeds: also vary the synthetic data's seed per run", "", "off", "", "false"}},
  {"shard-embeddings", {"under mpirun: rank r of N keeps rows ≡ r (mod N) of every embedding table and their optimizer state; a batch's rows are fetched from their owners, gradients sent back (same results as replicated)", "", "off", "", "false"}},
  // checkpoints and outputs
  {"save", {"write a checkpoint here (a new or empty directory, or a funnel checkpoint to replace)", "DIR", "", "", ""}},
  {"metrics-json", {"write the metrics (and the effective configuration) as JSON to this file", "FILE", "", "", ""}},
  {"checkpoint", {"the checkpoint directory to load (written by train --save)", "DIR", "", "", ""}},
  {"out", {"output file", "FILE", "", "", ""}},
  {"predict:out", {"CSV of predictions: a row number column and one column per model output, one line per input row", "FILE", "", "", ""}},
  {"convert:out", {"cache file to write (read later as --data cache:FILE)", "FILE", "", "", ""}},
  {"dot:out", {"file to write; .svg/.png/.pdf are rendered by Graphviz's dot, anything else gets DOT text (default: DOT on stdout)", "FILE", "", "", ""}},
  {"train:plot", {"draw the run as an SVG picture: training losses by step, evaluation AUCs and log losses per epoch, pCVR calibration", "FILE", "", "", ""}},
  {"compare:plot", {"draw the comparison as an SVG picture: AUC per model with ± std error bars per metric, pCVR calibration curves", "FILE", "", "", ""}},
  {"quiet", {"no progress line on a terminal", "", "off", "", "false"}},
  // dot
  {"rankdir", {"layout direction", "TEXT", "TB", "TB, LR", "TB"}},
  {"grad-flow", {"colour parameters and edges by which loss's gradient reaches them (checked numerically)", "", "off", "", "false"}},
  {"backward", {"also draw the backward graph", "", "off", "", "false"}},
  {"no-numeric", {"with --grad-flow: skip the numeric check of the structural analysis", "", "off", "", "false"}},
  {"no-legend", {"leave out the legend", "", "off", "", "false"}},
  {"no-edge-shapes", {"leave out the tensor shapes on edges", "", "off", "", "false"}},
  // gradcheck
  {"op", {"gradient-check this op on its registered examples (see `funnel ops`)", "NAME", "", "a registered op", ""}},
  {"all", {"gradient-check every op and every model", "", "off", "", "false"}},
  {"eps", {"finite-difference step", "NUM", "1e-6", "> 0", "1e-6"}},
  {"rtol", {"relative tolerance", "NUM", "1e-3", "≥ 0", "1e-3"}},
  {"atol", {"absolute tolerance", "NUM", "1e-5", "≥ 0", "1e-5"}},
  {"max-coords", {"check at most this many coordinates per parameter (0 = all; models default to 20)", "INT", "0 (ops), 20 (models)", "≥ 0", ""}},
};
// clang-format on

std::mutex& mu() {
  static std::mutex m;
  return m;
}
std::map<std::string, FlagHelp>& table() {
  static std::map<std::string, FlagHelp> t = [] {
    std::map<std::string, FlagHelp> m;
    for (const Row& r : kRows) m.emplace(r.key, r.help);
    return m;
  }();
  return t;
}

// The row written from the registry of data formats, so that every registered one is listed; filled in at the first
// look-up (after every static registration, a user's too); a row set by register_flag_help stays.
void registry_rows(std::map<std::string, FlagHelp>& t) {
  t.try_emplace("convert:data",
                FlagHelp{"data to convert into a cache: " + data_format_usages(/*to_cache_only=*/true), "SPEC", "", "",
                         ""});
}

// The flags of the options tables (cli/options.hpp) with their structs' defaults: any command that takes one of
// them (eval's --threads, predict's --on-bad-row) gets its help and its check.
const std::map<std::string, FlagSpec>& table_specs() {
  static const std::map<std::string, FlagSpec> specs = [] {
    const RunOptions run_defaults;
    const ReadOptions read_defaults;
    std::vector<FlagSpec> all;
    append_specs(all, run_option_table(), run_defaults);
    append_specs(all, read_option_table(), read_defaults);
    const StrategyOptions strategy_defaults;
    append_specs(all, strategy_option_table(), strategy_defaults);
    std::map<std::string, FlagSpec> m;
    for (auto& s : all) m.emplace(s.name, std::move(s));
    return m;
  }();
  return specs;
}

}  // namespace

const FlagHelp* flag_help(const std::string& command, const std::string& flag) {
  std::lock_guard<std::mutex> lock(mu());
  auto& t = table();
  static bool from_registries = false;
  if (!from_registries) {
    registry_rows(t);
    from_registries = true;
  }
  if (auto it = t.find(command + ":" + flag); it != t.end()) return &it->second;
  if (auto it = t.find(flag); it != t.end()) return &it->second;
  if (auto it = table_specs().find(flag); it != table_specs().end()) return &it->second.help;
  return nullptr;
}

FlagSpec flag_spec(const std::string& command, const std::string& flag, bool is_switch) {
  const FlagHelp* h = flag_help(command, flag);
  FlagSpec s{flag, h ? *h : FlagHelp{}, nullptr};
  // A table's row brings its check, unless the command gives the flag a meaning of its own.
  if (auto it = table_specs().find(flag); it != table_specs().end() && h == &it->second.help) s.check = it->second.check;
  if (!is_switch && s.help.type.empty()) s.help.type = "VALUE";  // an undocumented flag that takes a value
  if (is_switch) s.help.type.clear();
  return s;
}

void register_flag_help(const std::string& key, FlagHelp help) {
  std::lock_guard<std::mutex> lock(mu());
  table()[key] = std::move(help);
}

}  // namespace funnel::cli
