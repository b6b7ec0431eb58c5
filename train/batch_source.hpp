#pragma once
/// @file
/// Where the training loop, evaluation and prediction (train/loop.hpp) take their batches from: a BatchSource binds
/// one batch after another into a Model's inputs (ids, labels, dense features), an epoch at a time.
///
///   DatasetSource  an in-memory Dataset: rows 0..n-1, or a seeded shuffle of them redrawn every epoch; optionally
///                  one process's share of every batch (data parallel: the r-th of N contiguous parts).
///   CacheSource    a v3 cache streamed from its memory mapping (data/stream.hpp: chunks in a seeded order, a
///                  bounded shuffle window, a reader thread decoding `prefetch` batches ahead); a range of chunks or
///                  every N-th chunk (data parallel: each process reads only its share of the file).
///
/// Both bind a batch the same way, so unshuffled, they give the loop bit-identical batches of the same rows.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/stream.hpp"
#include "data/stream_cache.hpp"
#include "train/model.hpp"

namespace funnel {

/// The batch a source bound: `rows` of the (global) batch, `local` of them bound in this process (equal with one
/// process; 0 rows = the epoch is over).
struct BatchRows {
  std::int64_t rows = 0;   ///< rows of the whole batch, over every process (0: the epoch is over)
  std::int64_t local = 0;  ///< rows of it bound into this process's model (may be 0 when a shard is empty)
};

/// A source of batches for one Model: the loop calls start_epoch, then next until it returns 0 rows. Each call of
/// next overwrites the model's bound inputs and the arrays entire() and users() point to. Not thread-safe: one
/// loop drives a source (CacheSource has its own reader thread inside).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  /// Throws funnel::Error when the data does not fit the model: its fields, dense columns or funnel stages differ
  /// from `cfg`'s, or its ids need more embedding rows than cfg.vocab (`what` names the data in the message).
  virtual void check(const ModelConfig& cfg, const std::string& what) const = 0;
  /// Rows of one epoch (of every process together).
  virtual std::int64_t rows() const = 0;
  /// Starts epoch `epoch` (0-based; epochs are started in order): rewinds and, when shuffling, draws the epoch's
  /// order.
  virtual void start_epoch(std::int64_t epoch) = 0;
  /// Binds this process's part of the next batch into m's inputs (Executor::set_batch, ids, labels, dense
  /// features); {0, 0} once the epoch is over.
  virtual BatchRows next(Model& m) = 0;
  /// The synthetic ground truth of the bound rows: conversion drawn for every row (0/1), or nullptr when the data
  /// has none. Valid until the next call of next.
  virtual const float* conversion_entire() const { return nullptr; }
  /// The same for stage `stage` (0 = click, 1 = conversion, 2, ...; nullptr for a stage the data does not have).
  virtual const float* entire(std::int64_t stage) const { return stage == 1 ? conversion_entire() : nullptr; }
  /// The user keys of the bound rows (for GAUC), or nullptr when the data has none. Valid until the next call of
  /// next.
  virtual const std::int64_t* users() const { return nullptr; }
};

/// A part of a cache: the chunks [chunk_begin, chunk_end) (-1: to the last) and of them every `stride`-th starting
/// at chunk_begin + `offset` (stride 1: all of them).
struct CachePart {
  const CacheFile* file = nullptr;  ///< the opened cache (not owned; must outlive the CacheSource); required
  /// The chunk range [chunk_begin, chunk_end); chunk_end -1: to the last chunk.
  ///@{
  std::int64_t chunk_begin = 0, chunk_end = -1;
  ///@}
  /// Every `stride`-th chunk of the range, starting at chunk_begin + `offset` (data parallel: the process count and
  /// the rank).
  ///@{
  std::int64_t stride = 1, offset = 0;
  ///@}
};

/// Batches from an in-memory Dataset (see the file comment). The Dataset is borrowed: it must outlive the source.
class DatasetSource : public BatchSource {
 public:
  /// Batches of `batch_size` rows of `d` (the last one shorter), in order or shuffled with `seed`: the shuffle of an
  /// epoch permutes the previous epoch's order (one generator for the whole run). With `shards` > 1 this process
  /// binds the `shard`-th of `shards` nearly equal contiguous parts of every batch (shard_of). Throws funnel::Error
  /// when batch_size <= 0 or `shard` is not in [0, shards).
  DatasetSource(const Dataset& d, std::int64_t batch_size, bool shuffle = false, std::uint64_t seed = 1,
                int shard = 0, int shards = 1);
  /// Exactly `rows` of `d` (row indices, copied), in that order, never shuffled, in batches of `batch_size` (0: all
  /// of them in one batch); `shard` and `shards` as above.
  DatasetSource(const Dataset& d, std::span<const std::int64_t> rows, std::int64_t batch_size = 0, int shard = 0,
                int shards = 1);

  void check(const ModelConfig& cfg, const std::string& what) const override;
  std::int64_t rows() const override { return static_cast<std::int64_t>(order_.size()); }
  void start_epoch(std::int64_t epoch) override;
  BatchRows next(Model& m) override;
  const float* conversion_entire() const override { return entire(1); }
  const float* entire(std::int64_t stage) const override;
  const std::int64_t* users() const override { return d_.has_user_keys() ? users_.data() : nullptr; }

 private:
  const Dataset& d_;
  std::int64_t batch_;
  bool shuffle_;
  std::mt19937_64 rng_;
  int shard_, shards_;
  std::vector<std::int64_t> order_;
  std::int64_t pos_ = 0;
  std::vector<float> entire_;  // stage-major: entire_[s * rows + i]
  std::vector<std::int64_t> users_;
  std::size_t bound_ = 0;  // rows of the bound batch
};

/// The r-th of n nearly equal contiguous parts of `rows` (the first rows.size() mod n parts get one row more): a
/// view into `rows`, empty when `rows` has fewer than r + 1 elements. Requires 0 <= r < n.
std::span<const std::int64_t> shard_of(std::span<const std::int64_t> rows, int r, int n);

/// Batches streamed from a v3 cache (data/stream.hpp; see the file comment): a reader thread decodes batches
/// ahead, and next() waits for it when it is behind. The CacheFile is borrowed: it must outlive the source.
class CacheSource : public BatchSource {
 public:
  /// Streams `part` of the cache in batches of o.batch_size with o's order (o.chunk_* are taken from `part`).
  /// Throws funnel::Error when part.file is null, and what BatchStream throws on bad options.
  CacheSource(const CachePart& part, StreamOptions o);

  void check(const ModelConfig& cfg, const std::string& what) const override;
  std::int64_t rows() const override { return stream_.rows(); }
  void start_epoch(std::int64_t epoch) override { stream_.start_epoch(epoch); }
  BatchRows next(Model& m) override;
  const float* conversion_entire() const override { return entire(1); }
  const float* entire(std::int64_t stage) const override;
  const std::int64_t* users() const override { return has_users_ ? users_.data() : nullptr; }
  /// The underlying stream (its file, options and reader statistics).
  const BatchStream& stream() const { return stream_; }

 private:
  BatchStream stream_;
  bool has_truth_, has_users_;
  std::vector<float> entire_;  // stage-major: entire_[s * rows + i]
  std::vector<std::int64_t> users_;
};

/// Makes a streamed batch the model's bound batch: the ids are swapped in (no copy; the stream's slot receives the
/// model's old buffers, so a steady loop allocates nothing), labels and dense features are copied. `b` must come
/// from a cache that fits the model (check_compatible).
void bind_stream_batch(Model& m, StreamBatch& b);

/// Throws funnel::Error (`<what> does not fit the model: ...`) when the cache does not fit the model: a different
/// number of fields, dense columns or funnel stages, or ids that need more than cfg.vocab embedding rows.
void check_compatible(const ModelConfig& cfg, const CacheFile& f, const std::string& what);

}  // namespace funnel
