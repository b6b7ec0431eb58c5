#pragma once
// Training data from specs: "synthetic[:k=v,...]" or a reader spec (csv:, slots:, aliccp:, cache:), mapped with a
// new feature map or with a checkpoint's, and the train / evaluation split a training run uses.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"

namespace funnel {

struct LoadedData {
  Dataset data;
  FeatureMap map;          // empty for synthetic data
  nlohmann::json json;     // how to map new data the same way (goes into checkpoints)
  std::string description; // "SPEC: N rows, ..."
  std::string skipped;     // "skipped N bad rows of M: reason=n ..." when rows were skipped, else empty
  std::int64_t rows_read = -1;             // input data rows looked at (kept + skipped)
  std::vector<std::int64_t> skipped_rows;  // 1-based input row numbers of the skipped rows, ascending
};

// Reads `spec`. `map_json`, when not null, is a checkpoint's data JSON: the data is mapped the same way as the
// training data was (and must be of the same kind: synthetic of the same shape, or mapped real data).
LoadedData load_data(const std::string& spec, const ReadOptions& options, const nlohmann::json* map_json = nullptr);

// A one-line summary of a data set: rows, clicks, conversions, fields, vocab (dense columns, stages).
std::string describe(const Dataset& d);
std::string describe(const CacheFile& f);

// A cache: spec opened for streaming (memory-mapped, nothing decoded); with `map_json` (a checkpoint's data JSON)
// its feature map must be that one (else a clear error: convert again with that map).
bool is_cache_spec(const std::string& spec);
std::shared_ptr<const CacheFile> open_cache(const std::string& spec, const nlohmann::json* map_json = nullptr);

struct DataSources {
  std::string train = "synthetic";  // a data spec
  std::string eval{};               // empty: hold out the last eval_fraction of the training data
  double eval_fraction = 0.2;
  std::int64_t stages = 2;          // synthetic data gets this many funnel stages unless its spec says
  nlohmann::json init_map{};        // resuming: the checkpoint's data mapping (null: build one from the data)
  bool stream_caches = true;        // cache: specs are streamed from the file (else decoded into memory)
};

// The data of a training run: the training set with its mapping, and the evaluation set mapped the same way.
// A cache: spec (with DataSources::stream_caches) is not loaded: the file is opened (memory-mapped) and streamed
// by the training loop (train_cache, train_chunks); train.data then holds the data's shape only (fields, vocab,
// dense columns, stages; no rows). Without an evaluation spec the last chunks nearest to eval_fraction of the
// rows are held out (a cache of a single chunk is decoded into memory instead, to hold out rows). An evaluation
// cache is streamed too; any other evaluation spec is read into `eval`.
struct TrainData {
  LoadedData train;
  Dataset eval;
  bool has_eval = false;
  std::string eval_description;
  std::vector<std::string> notes;  // skipped-row summaries of the reads, for the user
  std::shared_ptr<const CacheFile> train_cache, eval_cache;  // streamed (eval_cache may be train_cache)
  std::int64_t train_chunk_end = -1;                       // train_cache's chunks [0, end) (-1: all)
  std::int64_t eval_chunk_begin = 0;                       // eval_cache's chunks [begin, last]
  bool streamed() const { return train_cache != nullptr; }
  bool eval_streamed() const { return eval_cache != nullptr; }
};
std::shared_ptr<TrainData> load_train_data(const DataSources& s, const ReadOptions& options);

}  // namespace funnel
