#pragma once
/// @file
/// A consumer of the rows a reader produces, instead of an in-memory Dataset (ReadOptions::sink): the reader hands
/// over its rows every chunk_rows() rows and each shared block as soon as it is read, so reading a file of any size
/// into a sink keeps one chunk of rows in memory. Used by `convert` (CacheWriter, data/stream_cache.hpp).
#include <cstdint>
#include <span>

namespace funnel {

struct Dataset;
class FeatureMap;

/// Where a reader streams its rows instead of building a Dataset (see the file's description). Called from the
/// reading thread only.
class RowSink {
 public:
  virtual ~RowSink() = default;
  /// Rows per hand-over.
  virtual std::int64_t chunk_rows() const = 0;
  /// Rows of `part` (offsets, ids, weights, labels, dense, row_block; row_block indexes the blocks in the order
  /// add_block() received them). Ids are provisional while a vocabulary map is being built.
  virtual void add_rows(const Dataset& part) = 0;
  /// One shared block: num_fields cell ends (relative to the block's first id), then its ids and weights.
  virtual void add_block(const std::int64_t* cell_ends, const std::int64_t* ids, const float* weights) = 0;
  /// After the last row: uses[b] = kept rows referring to block b. A sink must count the blocks' ids for a
  /// vocabulary map (map.count(ids, uses[b])) and finish it (the reader's Dataset holds no ids to finish).
  virtual void end_rows(FeatureMap& map, std::span<const std::int64_t> uses) = 0;
};

}  // namespace funnel
