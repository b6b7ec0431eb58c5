#pragma once
// Shared by the train / eval / predict / compare subcommands: data loading, model flags, output helpers.
#include <string>

#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/readers.hpp"
#include "models/model.hpp"
#include "tools/cli/command.hpp"

namespace funnel::cli {

// Flags understood by load_data().
extern const std::set<std::string> kDataFlags;

struct LoadedData {
  Dataset data;
  FeatureMap map;          // empty for synthetic data
  nlohmann::json json;     // how to map new data the same way (goes into checkpoints)
  std::string description;
};

// Reads `spec` (synthetic[:...] or a reader spec). `map_json`, when not null, is a checkpoint's data JSON: the
// data is mapped the same way as the training data was.
LoadedData load_data(const std::string& spec, const Flags& flags, const nlohmann::json* map_json = nullptr);

// Reads the data flags into ReadOptions.
ReadOptions read_options(const Flags& flags);

// A one-line summary of a data set: rows, clicks, conversions, fields, vocab.
std::string describe(const Dataset& d);

// Write `text` to `path` atomically (temp file + rename).
void write_file_atomic(const std::string& path, const std::string& text);

// --model-options KEY=VALUE,...: the model's own knobs, as a JSON object (empty when the flag is absent).
nlohmann::json model_options_flag(const Flags& flags);

// Set the number of threads (funnel::set_num_threads: the worker pool that also splits gemms; BLAS stays at one).
void set_threads(int n);

}  // namespace funnel::cli
