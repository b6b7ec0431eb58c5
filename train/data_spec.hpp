#pragma once
/// @file
/// Training data from specs: "synthetic[:k=v,...]" or a reader spec (csv:, slots:, aliccp:, cache:), mapped with a
/// new feature map or with a checkpoint's, and the train / evaluation split a training run uses.
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

/// A data set read from a spec (load_data), with what is needed to map more data the same way.
struct LoadedData {
  Dataset data;            ///< the rows, mapped to ids
  FeatureMap map;          ///< the feature map the rows were mapped with; empty for synthetic data
  /// How to map new data the same way (goes into checkpoints as the manifest's "data"): {"kind": "synthetic",
  /// "fields", "vocab_per_field", "stages"} or {"kind": "mapped", "map": the feature map, "columns": a csv header}.
  nlohmann::json json;
  std::string description; ///< "SPEC: N rows, ..." (describe), for the user
  std::string skipped;     ///< "skipped N bad rows of M: reason=n ..." when rows were skipped, else empty
  std::int64_t rows_read = -1;             ///< input data rows looked at (kept + skipped)
  std::vector<std::int64_t> skipped_rows;  ///< 1-based input row numbers of the skipped rows, ascending
};

/// Reads `spec` ("synthetic[:k=v,...]" or a reader spec: csv:, slots:, aliccp:, cache: decoded into memory) with
/// the reader `options`. `map_json`, when not null, is a checkpoint's data JSON: the data is mapped the same way as
/// the training data was (and must be of the same kind: synthetic of the same shape, or mapped real data). Without
/// it a new feature map is built from the data. Throws funnel::Error on a bad spec, a kind or shape that does not
/// match `map_json`, and what the readers throw on bad data (unless options skip bad rows: then LoadedData::skipped
/// says how many).
LoadedData load_data(const std::string& spec, const ReadOptions& options, const nlohmann::json* map_json = nullptr);

/// A one-line summary of a data set: rows, clicks, conversions, fields, vocab (dense columns, stages; for a cache
/// also its chunks). Reads the labels of every row of a Dataset; a cache's counts come from its header.
///@{
std::string describe(const Dataset& d);
std::string describe(const CacheFile& f);
///@}

/// Whether `spec` names a cache ("cache:PATH").
bool is_cache_spec(const std::string& spec);
/// A cache: spec opened for streaming (memory-mapped, nothing decoded); with `map_json` (a checkpoint's data JSON)
/// its feature map must be that one (else a clear error: convert again with that map). Throws funnel::Error when the
/// file cannot be opened or is not a valid cache, and on a map mismatch. `spec` must be a cache spec.
std::shared_ptr<const CacheFile> open_cache(const std::string& spec, const nlohmann::json* map_json = nullptr);

/// Where a training run's data comes from (load_train_data); `funnel train` fills it from --data, --eval-data,
/// --eval-fraction, --stages and --init.
struct DataSources {
  std::string train = "synthetic";  ///< the training data spec (as for load_data)
  std::string eval{};               ///< the evaluation data spec; empty: hold out the tail of the training data
  double eval_fraction = 0.2;       ///< the fraction of the training rows held out when `eval` is empty, in (0, 1)
  std::int64_t stages = 2;          ///< synthetic data gets this many funnel stages unless its spec says
  nlohmann::json init_map{};        ///< resuming: the checkpoint's data mapping (null: build one from the data)
  bool stream_caches = true;        ///< cache: specs are streamed from the file (else decoded into memory)
};

/// The data of a training run: the training set with its mapping, and the evaluation set mapped the same way.
/// A cache: spec (with DataSources::stream_caches) is not loaded: the file is opened (memory-mapped) and streamed
/// by the training loop (train_cache, train_chunk_end); train.data then holds the data's shape only (fields, vocab,
/// dense columns, stages; no rows). Without an evaluation spec the last chunks nearest to eval_fraction of the
/// rows are held out (a cache of a single chunk is decoded into memory instead, to hold out rows). An evaluation
/// cache is streamed too; any other evaluation spec is read into `eval`.
struct TrainData {
  LoadedData train;  ///< the training set (or, streamed, its shape only), its feature map and mapping JSON
  Dataset eval;      ///< the evaluation set in memory (empty when it is streamed from eval_cache)
  bool has_eval = false;  ///< whether there is an evaluation set (load_train_data always makes one)
  std::string eval_description;  ///< a one-line summary of the evaluation set, for the user
  std::vector<std::string> notes;  ///< skipped-row summaries of the reads, for the user
  /// The streamed caches, or null when that set is in memory (eval_cache may be train_cache: a held-out tail).
  ///@{
  std::shared_ptr<const CacheFile> train_cache, eval_cache;
  ///@}
  std::int64_t train_chunk_end = -1;                       ///< train_cache's chunks [0, end) (-1: all)
  std::int64_t eval_chunk_begin = 0;                       ///< eval_cache's chunks [begin, last]
  bool streamed() const { return train_cache != nullptr; }  ///< the training set is streamed from train_cache
  bool eval_streamed() const { return eval_cache != nullptr; }  ///< the evaluation set is streamed from eval_cache
};
/// Loads (or opens, for streamed caches) a training run's data as TrainData describes: the training set with a new
/// feature map or, with s.init_map, the checkpoint's; the evaluation set mapped the same way, or the held-out tail.
/// Throws funnel::Error on bad data (as load_data), an eval_fraction outside (0, 1), or fewer than 2 rows to split.
std::shared_ptr<TrainData> load_train_data(const DataSources& s, const ReadOptions& options);

}  // namespace funnel
