// What `--help` says about each flag: meaning, value type, default and allowed values. One table for every command:
// a flag means the same wherever it appears, except where a command-specific row ("command:flag") says otherwise.
// `config` is the machine-readable default written into a run's effective configuration ("" = unset / none).
#include <cstdio>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "cli/command.hpp"
#include "data/formats.hpp"
#include "train/optimizer.hpp"

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
  {"eval-data", {"held-out data to evaluate after every epoch; without it a seeded --eval-fraction of --data is held out", "SPEC", "", "", ""}},
  {"eval-fraction", {"share of --data held out for evaluation when --eval-data is not given", "NUM", "0.2", "0 < x < 1", "0.2"}},
  {"compare:eval-fraction", {"share of --data held out for evaluation when --eval-data is not given", "NUM", "0.5", "0 < x < 1", "0.5"}},
  {"on-bad-row", {"what a malformed input row does: stop with an error naming file, line and field, or be skipped and counted", "TEXT", "error", "error, skip", "error"}},
  {"buckets", {"hash each field's features into this many embedding rows per field (the default mapping)", "INT", "65536", "≥ 1; not with --min-count", "65536"}},
  {"min-count", {"build a vocabulary instead of hashing: features seen fewer times share one row per field", "INT", "", "≥ 1; not with --buckets", ""}},
  {"pool-weights", {"weight of each id in a pooled multi-valued field: 1, or the feature's value (aliccp)", "TEXT", "ones", "ones, values", "ones"}},
  {"max-rows", {"read at most this many rows of each data set (0 = all)", "INT", "0", "≥ 0", "0"}},
  {"user-column", {"csv: the column naming each row's user, for the GAUC metrics (it stays a feature too)", "NAME", "", "a column of the csv header", ""}},
  {"no-header", {"the csv data has no header line: read it with the checkpoint's training columns", "", "off", "", "false"}},
  // model
  {"model", {"model to train (see `funnel models`)", "NAME", "esmm", "a registered model", "esmm"}},
  {"dot:model", {"model to draw (see `funnel models`)", "NAME", "esmm", "a registered model", "esmm"}},
  {"gradcheck:model", {"gradient-check this model: every parameter, through each loss and their weighted sum", "NAME", "", "a registered model", ""}},
  {"models", {"models to compare, comma-separated", "LIST", "every registered model", "registered models", ""}},
  {"model-options", {"the model's own knobs, e.g. cvr_weight=0.5 for escm2-ips or experts=8 for esmm-mmoe (see `funnel models`)", "K=V,...", "", "", ""}},
  {"embedding-dim", {"embedding width per field (the paper: 18)", "INT", "18", "1..4096", "18"}},
  {"hidden", {"hidden layer widths of each tower, comma-separated (the paper: 200,80 after the 360-wide input)", "LIST", "200,80", "each 1..65536", "200,80"}},
  {"pool", {"how a multi-valued field's embeddings are pooled", "TEXT", "sum", "sum, mean", "sum"}},
  {"stages", {"funnel stages for models that take more than two (impression -> click -> conversion = 2)", "INT", "2", "≥ 2", "2"}},
  // optimisation
  {"epochs", {"passes over the training data", "INT", "1", "≥ 1", "1"}},
  {"batch-size", {"rows per step", "INT", "1024", "≥ 1", "1024"}},
  {"eval:batch-size", {"rows per forward pass", "INT", "4096", "≥ 1", "4096"}},
  {"predict:batch-size", {"rows per forward pass", "INT", "4096", "≥ 1", "4096"}},
  {"lr-schedule", {"learning rate over the run: constant, or decayed from --lr to --lr-min over the run's steps along half a cosine or a line (recommended for long single-epoch runs: the saved model is then calibrated, not one sample of Adam's wander)", "TEXT", "constant", "constant, cosine, linear", "constant"}},
  {"lr-min", {"with --lr-schedule cosine|linear: the learning rate reached at the last step", "NUM", "0", "0 ≤ x ≤ --lr", "0"}},
  {"l2", {"L2 weight decay", "NUM", "0", "≥ 0", "0"}},
  {"seed", {"seed of the initialisation and the shuffling", "INT", "1", "≥ 0", "1"}},
  {"dot:seed", {"seed of the numeric gradient-flow probe", "INT", "1", "≥ 0", "1"}},
  {"gradcheck:seed", {"seed of the parameter values and inputs being checked", "INT", "0", "≥ 0", "0"}},
  {"seeds", {"train every model this many times (seed, seed+1, ...) and print mean ± std and paired differences", "INT", "1", "1..1000", "1"}},
  {"vary-data-seed", {"with --seeds: also vary the synthetic data's seed per run", "", "off", "", "false"}},
  {"no-shuffle", {"keep the data order (no per-epoch shuffle)", "", "off", "", "false"}},
  {"max-steps", {"stop after this many steps of this run (0 = no limit; counts this run's steps after --init)", "INT", "0", "≥ 0", "0"}},
  {"shuffle-window", {"cache: data: rows shuffled together inside the seeded random order of chunks (a bounded shuffle, not a full one)", "INT", "262144", "1..2^32", "262144"}},
  {"prefetch", {"cache: data: batches read and decoded ahead of the step by the reader thread", "INT", "4", "1..1024", "4"}},
  {"threads", {"worker threads (gemms and the batch are split over them)", "INT", "1", "1..256", "1"}},
  {"precision", {"gemm inputs: fp32, or bf16 (rounded to bfloat16, fp32 sums; everything else stays fp32)", "STR", "fp32", "fp32, bf16", "fp32"}},
  {"check-replicas", {"under mpirun: every K steps check that all ranks hold the same parameters (0 = never)", "INT", "0", "≥ 0", "0"}},
  {"shard-embeddings", {"under mpirun: rank r of N keeps rows ≡ r (mod N) of every embedding table and their optimizer state; a batch's rows are fetched from their owners, gradients sent back (same results as replicated)", "", "off", "", "false"}},
  // checkpoints and outputs
  {"init", {"resume from this checkpoint: its parameters, optimizer state, step and feature map", "DIR", "", "a funnel checkpoint", ""}},
  {"reset-optimizer", {"with --init: take the parameters only and start the optimizer afresh (e.g. another optimizer)", "", "off", "", "false"}},
  {"save", {"write a checkpoint here (a new or empty directory, or a funnel checkpoint to replace)", "DIR", "", "", ""}},
  {"save-every", {"also checkpoint every N steps (needs --save; 0 = only at the end)", "INT", "0", "≥ 0", "0"}},
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
  {"fields", {"categorical fields of the drawn model", "INT", "20", "≥ 1", "20"}},
  {"vocab", {"embedding rows of the drawn model", "INT", "100000", "≥ 1", "100000"}},
  {"dim", {"embedding width of the drawn model", "INT", "18", "≥ 1", "18"}},
  {"dot:hidden", {"hidden layer widths of the drawn model's towers", "LIST", "200,80", "", "200,80"}},
  {"dot:stages", {"funnel stages of the drawn model", "INT", "2", "≥ 2", "2"}},
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

// The rows written from the registries (optimizers, data formats), so that every registered one is listed; filled
// in at the first look-up (after every static registration, a user's too); a row set by register_flag_help stays.
void registry_rows(std::map<std::string, FlagHelp>& t) {
  std::string names, lr, each;
  std::vector<std::pair<double, std::string>> by_lr;  // consecutive optimizers with one default share an entry
  for (const OptimizerDef* d : optimizer_defs()) {
    names += (names.empty() ? "" : ", ") + d->name;
    if (!d->help.empty()) each += (each.empty() ? ": " : "; ") + d->name + " = " + d->help;
    if (!by_lr.empty() && by_lr.back().first == d->default_lr) by_lr.back().second += ", " + d->name;
    else by_lr.emplace_back(d->default_lr, d->name);
  }
  for (const auto& [v, who] : by_lr) {
    char num[32];
    std::snprintf(num, sizeof num, "%g", v);
    lr += (lr.empty() ? "" : ", ") + std::string(num) + " (" + who + ")";
  }
  t.try_emplace("lr", FlagHelp{"learning rate", "NUM", lr, "> 0", ""});
  t.try_emplace("optimizer",
                FlagHelp{"optimizer (embedding rows are updated sparsely: only the rows a batch touched)" + each, "TEXT",
                         "adam", names, "adam"});
  t.try_emplace("data", FlagHelp{"training data: synthetic[:key=value,...], " + data_format_usages(), "SPEC",
                                 "synthetic", "", "synthetic"});
  t.try_emplace("convert:data",
                FlagHelp{"data to convert into a cache: " + data_format_usages(/*to_cache_only=*/true), "SPEC", "", "",
                         ""});
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
  return nullptr;
}

void register_flag_help(const std::string& key, FlagHelp help) {
  std::lock_guard<std::mutex> lock(mu());
  table()[key] = std::move(help);
}

}  // namespace funnel::cli
