#pragma once
// Checkpoints: a directory with
//   manifest.json                    format version, the caller's `model` and `data` JSON, step/epoch, and for each
//                                    parameter its name, file, shape, dtype and FNV-1a 64 checksum of the data bytes
//   ctr_tower.dense_0.w.npy          one float32 .npy per parameter (graph name with '/' -> '.')
//   optimizer/emb.table.adam_m.npy   the optimizer's state arrays, the same way (name, step and config in the
//                                    manifest)
//
// Saving is atomic: everything is written and fsync'ed into the sibling directory DIR.tmp-<pid>, which then
// replaces DIR in one step (renameat2 RENAME_EXCHANGE; where the file system lacks it, DIR is renamed aside to
// DIR.old-<pid> first and removed after the new one is in place). A crash at any point leaves the old or the new
// complete checkpoint. An existing DIR is only replaced if it is empty or holds a manifest.json.
//
// Loading checks everything before changing anything: manifest syntax and fields, missing/extra parameters,
// shapes against the graph, .npy headers and sizes, checksums, and the optimizer state; on any error the executor
// and optimizer are left untouched. Errors name the file, the parameter and what was expected.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/executor.hpp"
#include "train/optimizer.hpp"

namespace funnel {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointParam {
  std::string name;
  std::string file;  // relative to the checkpoint directory
  std::vector<std::int64_t> shape;
  std::string checksum;  // "fnv1a64:<16 hex digits>"
};

struct CheckpointInfo {
  int format_version = kCheckpointFormatVersion;
  nlohmann::json model;  // as given to save_checkpoint
  nlohmann::json data;
  std::int64_t step = 0;
  std::int64_t epoch = 0;
  std::vector<CheckpointParam> params;
  std::string optimizer;  // empty when the checkpoint carries no optimizer state
  std::int64_t optimizer_step = 0;
  nlohmann::json optimizer_config;  // to_json(OptimizerConfig) of the saving optimizer, or null
  std::vector<CheckpointParam> optimizer_arrays;
};

// Writes every parameter of `ex` and, when `opt` is not null, its state.
void save_checkpoint(const std::string& dir, Executor<float>& ex, const Optimizer<float>* opt,
                     const nlohmann::json& model, const nlohmann::json& data, std::int64_t step,
                     std::int64_t epoch = 0);

// Reads and validates the manifest only (e.g. to rebuild the model from info.model before loading).
CheckpointInfo read_checkpoint_info(const std::string& dir);

// Loads every parameter of ex's graph (the checkpoint must hold exactly the graph's parameters, with the same
// shapes). When `opt` is not null and the checkpoint has optimizer state, that state is imported (it must be of
// the same optimizer kind: an Error otherwise; pass nullptr to load the parameters only). When the checkpoint
// has no optimizer state, `opt` is left as it is and info.optimizer is empty.
CheckpointInfo load_checkpoint(const std::string& dir, Executor<float>& ex, Optimizer<float>* opt);

// "<graph name with '/' replaced by '.'>.npy"
std::string checkpoint_file_name(const std::string& param_name);
// FNV-1a 64 of `n` bytes, as "fnv1a64:<16 lower-case hex digits>".
std::string checkpoint_checksum(const void* bytes, std::size_t n);

namespace testing {
// Called by save_checkpoint at named points ("param:<name>" after each parameter file, "optimizer:<name>" after
// each optimizer array, "manifest" after the manifest, "swap" just before DIR is replaced). A hook that throws
// simulates a failure at that point. Not thread-safe; pass an empty function to remove it.
void set_checkpoint_fault_hook(std::function<void(std::string_view stage)> hook);
// Pretend the file system lacks renameat2(RENAME_EXCHANGE), to exercise the rename-aside path (whose extra hook
// stage "aside" sits between moving the old checkpoint aside and moving the new one in).
void set_checkpoint_no_exchange(bool on);
}  // namespace testing

}  // namespace funnel
