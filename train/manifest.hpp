#pragma once
/// @file
/// A checkpoint's manifest.json: what it holds and how it is checked (see train/checkpoint.hpp for the layout).
/// parse_checkpoint_manifest checks every field it reads, and each error names the manifest file and the field
/// (e.g. "ckpt/manifest.json: field 'params[1].shape' must be ..."); bytes from the file are shown escaped
/// (funnel::printable), never raw. It depends on nothing but nlohmann-json, so the manifest fuzzer links it alone.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace funnel {

/// The manifest's "format_version" this build writes and reads (another version is refused, naming both).
inline constexpr int kCheckpointFormatVersion = 1;
/// The value of the manifest's "format" field: the marker by which funnel recognises its own checkpoints.
inline constexpr const char* kCheckpointFormat = "funnel-checkpoint";
/// Largest manifest read, in bytes (64 MiB).
inline constexpr std::size_t kMaxManifestBytes = std::size_t{64} << 20;
/// Largest array a manifest may describe, in elements (2^36; a larger shape is refused before any allocation).
inline constexpr std::int64_t kMaxCheckpointArrayElements = std::int64_t{1} << 36;

/// One array of a checkpoint as its manifest lists it: a parameter (CheckpointInfo::params) or an optimizer state
/// array (CheckpointInfo::optimizer_arrays). The dtype is always float32.
struct CheckpointParam {
  /// The parameter's graph name (e.g. "ctr_tower/dense_0/w"), or `<param>/<slot>` for optimizer state (e.g.
  /// "emb/table/adam_m"); unique within its list.
  std::string name;
  std::string file;  ///< relative to the checkpoint directory: NAME.npy or optimizer/NAME.npy
  std::vector<std::int64_t> shape;  ///< the array's shape (at most 8 non-negative dimensions, rows first)
  std::string checksum;  ///< FNV-1a 64 of the .npy file's data bytes: "fnv1a64:" and 16 lower-case hex digits
};

/// What a checkpoint's manifest says, every field checked (parse_checkpoint_manifest).
struct CheckpointInfo {
  int format_version = kCheckpointFormatVersion;  ///< the manifest's format version (always the one this build reads)
  nlohmann::json model;  ///< as given to save_checkpoint (an object): how to rebuild the model
  nlohmann::json data;   ///< as given to save_checkpoint (an object): how the training data was mapped
  nlohmann::json config; ///< the run's effective configuration (an object; {} when none was saved)
  std::int64_t step = 0;   ///< the global training step at the save (>= 0)
  std::int64_t epoch = 0;  ///< the epoch at the save (>= 0)
  std::vector<CheckpointParam> params;  ///< one entry per parameter of the model
  std::string optimizer;  ///< the optimizer's registered name; empty when the checkpoint carries no optimizer state
  std::int64_t optimizer_step = 0;  ///< the optimizer's step count (Adam's bias correction resumes from it)
  nlohmann::json optimizer_config;  ///< to_json(OptimizerConfig) of the saving optimizer, or null
  std::vector<CheckpointParam> optimizer_arrays;  ///< the optimizer's state arrays, files under optimizer/
};

/// Parses and checks manifest text; `path` names the file in messages. Throws funnel::Error naming the file and the
/// field on invalid JSON, a missing or mistyped field, another format or version, a bad file name, checksum or
/// shape, or a repeated name or file. Reads nothing but `text`.
CheckpointInfo parse_checkpoint_manifest(std::string_view text, const std::string& path);

/// True when `name` is a file name a checkpoint may hold for an array: letters, digits, '.', '_', '-', not
/// starting with '.', ending in ".npy", at most 600 characters, optionally under "optimizer/".
bool is_checkpoint_array_file(std::string_view name);

}  // namespace funnel
