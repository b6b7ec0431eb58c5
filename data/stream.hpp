#pragma once
/// @file
/// Streaming batches from a v3 cache (data/stream_cache.hpp): the row order of an epoch and a reader thread that
/// decodes the next batches while the current one trains.
///
/// Order of an epoch (EpochOrder). Without shuffling: rows 0..n-1. With shuffling: the chunks in a random order
/// (a permutation drawn from the seed and the epoch), their rows streamed through a shuffle window of W rows: the
/// window is filled with the first W rows of the stream; each output row is a uniformly drawn window slot, whose
/// place is taken by the next row of the stream (once the stream is exhausted the window drains in random order).
/// Every row comes out exactly once per epoch; the order depends only on (seed, epoch, W, chunk size).
/// How this differs from a full shuffle: a row can come out at most W rows before its place in the chunk stream,
/// and rows of chunks far apart in the chunk order never meet in one batch; with W >= rows it is a full shuffle.
/// Memory: 8 bytes per window row, one counter per chunk.
///
/// BatchStream: a reader thread walks an epoch's order and fills a bounded queue of `prefetch` batches (ids, labels,
/// dense — what Model needs to bind a batch), decoding rows straight from the mapped file. The consumer takes a
/// batch, uses it, and hands it back with the next call. Chunks are checked on first use; a chunk whose rows have
/// all been decoded is released from the resident set. Errors in the reader thread are rethrown to the consumer.
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/ids.hpp"
#include "data/stream_cache.hpp"

namespace funnel {

/// The row order of one epoch of a cache (see the file's description): sequential, or shuffled by chunks and a
/// window. Deterministic for (seed, epoch, window, chunk size). Not thread-safe.
class EpochOrder {
 public:
  /// Over the chunks [chunk_begin, chunk_end) of the file (chunk_end -1: to the last), of them every `stride`-th
  /// from chunk_begin + `offset`.
  EpochOrder(const CacheFile& f, bool shuffle, std::int64_t window, std::uint64_t seed, std::int64_t epoch,
             std::int64_t chunk_begin = 0, std::int64_t chunk_end = -1, std::int64_t stride = 1,
             std::int64_t offset = 0);
  /// Writes up to `n` next rows to `out`; returns how many (0 once the epoch is over).
  std::size_t next(std::int64_t* out, std::size_t n);
  /// Chunks all of whose rows have been returned since the last call (appended to `out`, which is cleared first).
  void take_finished(std::vector<std::int64_t>& out);

 private:
  bool pull(std::int64_t& row);  ///< next row of the chunk stream
  void emitted(std::int64_t row);
  std::uint64_t rand_below(std::uint64_t n);
  const CacheFile& f_;
  bool shuffle_;
  std::uint64_t state_;
  std::vector<std::int64_t> chunk_order_;
  std::size_t chunk_pos_ = 0;
  std::int64_t in_chunk_ = 0;
  std::vector<std::int64_t> window_;
  std::size_t window_cap_ = 0;
  bool filled_ = false;
  std::vector<std::int64_t> left_;  ///< per chunk: rows not yet returned
  std::vector<std::int64_t> finished_;
};

/// What a BatchStream reads and how.
struct StreamOptions {
  std::int64_t batch_size = 1024;  ///< rows per batch (the last batch of an epoch may be smaller)
  bool shuffle = true;  ///< shuffle each epoch (else rows in file order)
  std::int64_t shuffle_window = 1 << 18;  ///< rows
  std::uint64_t seed = 1;  ///< seed of the shuffle (with the epoch number)
  std::int64_t prefetch = 4;               ///< batches decoded ahead
  bool release_chunks = true;              ///< drop finished chunks from the resident set
  /// @{
  /// the part of the file to read (-1: to the end)
  std::int64_t chunk_begin = 0, chunk_end = -1;
  /// @}
  /// @{
  /// of it every stride-th chunk from chunk_begin + offset
  std::int64_t chunk_stride = 1, chunk_offset = 0;
  /// @}
};

/// The chunk split for a held-out tail: the first chunk of the last `fraction` of the rows (at least one chunk on
/// each side when the file has two or more chunks).
std::int64_t tail_split_chunk(const CacheFile& f, double fraction);
/// Rows of the chunks [chunk_begin, chunk_end) (of every stride-th from chunk_begin + offset).
std::int64_t rows_in_chunks(const CacheFile& f, std::int64_t chunk_begin, std::int64_t chunk_end,
                            std::int64_t stride = 1, std::int64_t offset = 0);

/// One decoded batch, in the layout a Model binds.
struct StreamBatch {
  std::int64_t size = 0;                ///< rows
  std::vector<std::int64_t> rows;       ///< their indexes in the cache
  IdBatch ids;  ///< the batch's categorical ids
  std::vector<float> labels;            ///< size × num_stages, 0/1
  std::vector<float> dense;             ///< size × num_dense
};

/// Decodes an epoch's batches on a reader thread, `prefetch` ahead (see the file's description). One consumer
/// thread calls start_epoch and next; the CacheFile must outlive the stream.
class BatchStream {
 public:
  /// Checks the options (positive batch size and prefetch, a valid chunk range; funnel::Error otherwise) and sizes
  /// the batch buffers; no thread runs until start_epoch.
  BatchStream(const CacheFile& f, const StreamOptions& o);
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  /// Starts (or restarts) epoch `epoch`: a batch in use is handed back, a running epoch is abandoned.
  void start_epoch(std::int64_t epoch);
  /// The next batch of the epoch (waits for the reader thread), or nullptr at its end. The batch stays valid until
  /// the next call of next() or start_epoch(); the caller may swap its buffers with its own (same types).
  StreamBatch* next();
  const CacheFile& file() const { return f_; }  ///< the cache read
  const StreamOptions& options() const { return o_; }  ///< the options it was made with
  /// Rows of one epoch (of the chunks the options select).
  std::int64_t rows() const {
    return rows_in_chunks(f_, o_.chunk_begin, o_.chunk_end, o_.chunk_stride, o_.chunk_offset);
  }
  /// Time the consumer spent waiting for the reader thread (seconds, since construction).
  double wait_seconds() const { return wait_s_; }

 private:
  void stop_reader();
  void reader(std::int64_t epoch);
  const CacheFile& f_;
  StreamOptions o_;
  std::vector<StreamBatch> slots_;
  /// ring of filled slots [head, head + count), produced by the reader in order
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t head_ = 0, count_ = 0;
  bool held_ = false;   ///< the consumer holds slots_[head_]
  bool done_ = false;   ///< the reader reached the end of the epoch
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
  double wait_s_ = 0;
};

}  // namespace funnel
