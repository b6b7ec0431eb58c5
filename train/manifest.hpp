#pragma once
// A checkpoint's manifest.json: what it holds and how it is checked (see train/checkpoint.hpp for the layout).
// parse_checkpoint_manifest checks every field it reads, and each error names the manifest file and the field
// (e.g. "ckpt/manifest.json: field 'params[1].shape' must be ..."); bytes from the file are shown escaped
// (funnel::printable), never raw. It depends on nothing but nlohmann-json, so the manifest fuzzer links it alone.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace funnel {

inline constexpr int kCheckpointFormatVersion = 1;
// The value of the manifest's "format" field: the marker by which funnel recognises its own checkpoints.
inline constexpr const char* kCheckpointFormat = "funnel-checkpoint";
// Largest manifest read (bytes) and largest array (elements) a manifest may describe.
inline constexpr std::size_t kMaxManifestBytes = std::size_t{64} << 20;
inline constexpr std::int64_t kMaxCheckpointArrayElements = std::int64_t{1} << 36;

struct CheckpointParam {
  std::string name;
  std::string file;  // relative to the checkpoint directory: NAME.npy or optimizer/NAME.npy
  std::vector<std::int64_t> shape;
  std::string checksum;  // "fnv1a64:<16 hex digits>"
};

struct CheckpointInfo {
  int format_version = kCheckpointFormatVersion;
  nlohmann::json model;  // as given to save_checkpoint (an object)
  nlohmann::json data;   // an object
  nlohmann::json config; // the run's effective configuration (an object; {} when none was saved)
  std::int64_t step = 0;
  std::int64_t epoch = 0;
  std::vector<CheckpointParam> params;
  std::string optimizer;  // empty when the checkpoint carries no optimizer state
  std::int64_t optimizer_step = 0;
  nlohmann::json optimizer_config;  // to_json(OptimizerConfig) of the saving optimizer, or null
  std::vector<CheckpointParam> optimizer_arrays;
};

// Parses and checks manifest text; `path` names the file in messages. Throws funnel::Error.
CheckpointInfo parse_checkpoint_manifest(std::string_view text, const std::string& path);

// True when `name` is a file name a checkpoint may hold for an array: letters, digits, '.', '_', '-', not
// starting with '.', ending in ".npy", optionally under "optimizer/".
bool is_checkpoint_array_file(std::string_view name);

}  // namespace funnel
