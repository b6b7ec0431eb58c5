#pragma once
/// @file
/// Dataset cache, format v3: compact, chunked, memory-mapped and read in place.
///
/// What is stored (data/stream_cache.cpp has the byte layout):
///   * rows in chunks of a fixed number of rows (the last may be shorter). Per chunk: where each row's own ids
///     start (u32), the length of every cell (u8, u16 or u32: the narrowest that fits the chunk), the ids after
///     mapping (u32), their weights (f32; omitted when all are 1), the labels packed as one byte per row (bit s =
///     reached stage s), the shared block of each row (i32, only with blocks) and the dense features (f32).
///   * shared blocks (Ali-CCP user features), stored once: where each block's ids start (u64), cell lengths, ids,
///     weights (omitted when all are 1).
///   * meta (JSON): sizes, field and dense names, the feature map, the chunk table with a checksum per chunk and
///     one for the blocks, then a fixed-size footer that locates the meta and carries its checksum.
/// The file is written front to back (chunks as they fill), so `convert` needs one chunk of rows in memory, not
/// the data set; the meta at the end lets the writer learn sizes (and the vocabulary's final ids) as it goes.
///
/// Reading (CacheFile): the meta and the block section are checked when the file is opened; each chunk is checked
/// (checksum and structure: offsets, ids < vocab, block references) the first time it is read. Rows are decoded
/// straight from the mapping into a batch (gather) — nothing copies the whole set to the heap, except
/// to_dataset(), the in-memory path for small data and tests. Caches of older formats, truncated files and corrupt
/// ones are refused with a message that says which and what to do.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/row_sink.hpp"

namespace funnel {

/// The format version this build writes and reads; older caches are refused with a message to convert again.
inline constexpr std::uint32_t kCacheVersion = 3;
/// Rows per chunk unless a writer is told otherwise.
inline constexpr std::int64_t kDefaultChunkRows = 65536;

/// Writes a v3 cache front to back. Rows and blocks can be added in any interleaving (a row may only refer to
/// blocks added before the chunk holding it is written, i.e. add blocks first or stream them as a reader does).
/// The output goes to FILE.tmp.PID (with side files FILE.tmp.PID.b*) and is renamed to FILE by commit(); the
/// destructor removes the temporary files of an uncommitted writer.
class CacheWriter : public RowSink {
 public:
  /// Starts a cache for `file` with these fields, dense columns and stages (1 to 8), `chunk_rows` rows per chunk
  /// (1 to 2^24), opening its temporary file. Throws funnel::Error on a bad size or when the file cannot be created.
  CacheWriter(const std::string& file, std::vector<std::string> field_names, std::vector<std::string> dense_names,
              std::int64_t num_stages = 2, std::int64_t chunk_rows = kDefaultChunkRows);
  ~CacheWriter() override;
  CacheWriter(const CacheWriter&) = delete;
  CacheWriter& operator=(const CacheWriter&) = delete;

  /// RowSink: rows of `part` (its own arrays; row_block indexes blocks in the order they were added), one block.
  std::int64_t chunk_rows() const override { return chunk_rows_; }
  void add_rows(const Dataset& part) override;
  void add_block(const std::int64_t* cell_ends, const std::int64_t* ids, const float* weights) override;
  /// Vocabulary maps: counts each block's ids uses[b] times, finishes the map and keeps the provisional -> final
  /// table for commit(). Nothing to do for hash maps.
  void end_rows(FeatureMap& map, std::span<const std::int64_t> uses) override;

  /// Writes the last chunk, the blocks, the meta and the footer; renames the file into place. `map` must be ready
  /// (and, if ids were written provisional, finished by end_rows()).
  void commit(const FeatureMap& map);
  std::int64_t rows() const { return rows_; }  ///< rows added so far
  std::int64_t bytes_written() const { return static_cast<std::int64_t>(pos_); }  ///< bytes written to the file so far

 private:
  struct Impl;
  void flush_chunk();
  std::unique_ptr<Impl> impl_;
  std::int64_t chunk_rows_;
  std::int64_t rows_ = 0;
  std::uint64_t pos_ = 0;
};

/// A v3 cache opened for reading (memory-mapped). Thread-safe for concurrent gathers.
class CacheFile {
 public:
  /// Opens and maps `path`, checks its footer, meta and shared blocks. Throws funnel::Error naming the file when it is
  /// not a v3 cache, is truncated or fails a check.
  explicit CacheFile(const std::string& path);
  ~CacheFile();
  CacheFile(const CacheFile&) = delete;
  CacheFile& operator=(const CacheFile&) = delete;

  const std::string& path() const { return path_; }  ///< the file opened
  std::int64_t rows() const { return rows_; }  ///< rows in the cache
  std::int64_t num_fields() const { return num_fields_; }  ///< categorical fields per row
  std::int64_t num_stages() const { return num_stages_; }  ///< funnel stages (label columns)
  std::int64_t num_dense() const { return num_dense_; }  ///< dense features per row
  std::int64_t vocab() const { return vocab_; }  ///< embedding rows of the stored feature map
  std::int64_t num_blocks() const { return num_blocks_; }  ///< shared blocks (Ali-CCP common-feature rows)
  const std::vector<std::string>& field_names() const { return field_names_; }  ///< the categorical fields, in order
  const std::vector<std::string>& dense_names() const { return dense_names_; }  ///< the dense columns, in order
  const FeatureMap& map() const { return map_; }  ///< the feature map the ids were made with (ready)
  std::int64_t file_bytes() const { return static_cast<std::int64_t>(size_); }  ///< size of the file
  std::int64_t clicks() const { return clicks_; }  ///< rows with a click (label bit 0)
  std::int64_t conversions() const { return conversions_; }  ///< rows with a conversion (label bit 1)

  std::int64_t num_chunks() const { return static_cast<std::int64_t>(chunks_.size()); }  ///< number of chunks
  std::int64_t chunk_rows() const { return chunk_rows_; }  ///< rows of every chunk but the last
  std::int64_t chunk_of(std::int64_t row) const { return row / chunk_rows_; }  ///< the chunk holding `row`
  std::int64_t chunk_begin(std::int64_t c) const { return c * chunk_rows_; }  ///< the first row of chunk c
  /// Rows in chunk c (chunk_rows() except for a shorter last one).
  std::int64_t chunk_size(std::int64_t c) const;

  /// Checks chunk c (checksum, structure) unless done before; throws funnel::Error naming the file and chunk.
  void verify_chunk(std::int64_t c) const;
  /// Drops chunk c's pages from this process's resident set (they stay in the page cache); a hint.
  void release_chunk(std::int64_t c) const;

  /// Rows `rows` (any order, any chunks) into a batch, exactly as gather_batch() does from to_dataset(): ids per
  /// cell (own, then the block's), labels B × num_stages as 0/1 floats, dense B × num_dense. Verifies chunks on
  /// first use. Keeps the capacity of the outputs.
  void gather(std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) const;
  /// Labels of one row (bit s = reached stage s).
  std::uint8_t label_bits(std::int64_t row) const;
  /// Synthetic ground truth (data made by make_synthetic): whether the cache has it, and a row's drawn outcome of
  /// every stage (bit s = stage s reached in the entire space).
  bool has_truth() const { return !chunks_.empty() && chunks_[0].entire != nullptr; }
  /// A row's drawn outcome of every stage; only when has_truth().
  std::uint8_t entire_bits(std::int64_t row) const;
  /// User keys (for GAUC): the csv --user-column's keys when written, else a row's shared block (Ali-CCP's
  /// common-features row); -1 for a row without either.
  bool has_user_keys() const;
  /// A row's user key, -1 for none.
  std::int64_t user_key(std::int64_t row) const;

  /// The whole cache as an in-memory Dataset (small data, tests, the in-memory path).
  Dataset to_dataset() const;

 private:
  struct Chunk {
    std::uint64_t offset = 0, bytes = 0, checksum = 0;
    std::int64_t rows = 0, n_ids = 0;
    int width = 1;
    bool ones = true;
    const std::uint32_t* id_start = nullptr;
    const unsigned char* cell_len = nullptr;
    const std::uint32_t* ids = nullptr;
    const float* weights = nullptr;
    const std::uint8_t* labels = nullptr;
    const std::int32_t* row_block = nullptr;
    const float* dense = nullptr;
    const float* true_prob = nullptr;       ///< synthetic ground truth (optional)
    const std::uint8_t* entire = nullptr;
    const std::int64_t* users = nullptr;     ///< csv user keys (optional)
  };
  [[noreturn]] void fail(const std::string& what) const;
  void check_blocks();
  std::int64_t block_cell(std::int64_t b, std::int64_t f) const;
  std::string path_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
  std::int64_t rows_ = 0, num_fields_ = 0, num_stages_ = 0, num_dense_ = 0, vocab_ = 0, num_blocks_ = 0;
  std::int64_t chunk_rows_ = 1, clicks_ = 0, conversions_ = 0;
  std::vector<std::string> field_names_, dense_names_;
  FeatureMap map_;
  std::vector<Chunk> chunks_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> verified_;
  /// blocks
  const std::uint64_t* block_start_ = nullptr;
  const unsigned char* block_len_ = nullptr;
  int block_width_ = 1;
  const std::uint32_t* block_ids_ = nullptr;
  const float* block_weights_ = nullptr;
  bool has_blocks_ = false;
};

struct ReadOptions;
struct ReadReport;

/// Reads `spec` (csv:, slots:, aliccp:, cache:) and writes it as a v3 cache to `out`, streaming: rows go to the
/// file a chunk at a time, shared blocks as they are read. Memory: the readers' per-row scratch, one chunk, the
/// Ali-CCP key index (common_feature_index -> block) and one counter per block; with a vocabulary map
/// (mapping.kind == Vocab) also the map itself (one entry per distinct value, needed to assign the ids) and a
/// 4-byte provisional -> final table per distinct value. Hash maps keep no vocabulary. A cache: spec is decoded in
/// memory. Returns the rows written.
std::int64_t convert_to_cache(const std::string& spec, const ReadOptions& options, FeatureMap& map,
                              const std::string& out, ReadReport* report = nullptr,
                              std::int64_t chunk_rows = kDefaultChunkRows);

}  // namespace funnel
