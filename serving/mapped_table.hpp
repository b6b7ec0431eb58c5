#pragma once
/// @file
/// MappedTable: an embedding table of a checkpoint, memory-mapped read-only from its .npy file instead of read into
/// memory. The Predictor scores from it directly: the rows a request uses are paged in from the file (shared with
/// the page cache and with every other process mapping the same file); nothing of the table's size is allocated.
///
/// Opening checks the file as a checkpoint load checks it, before anything is scored: a regular file; its .npy
/// header (magic, version, dict); dtype little-endian float32, C order; the shape the manifest lists (rows × dim);
/// the file holds exactly the header's bytes (a truncated or padded file is refused); the data starts at a multiple
/// of 64 bytes (every .npy funnel writes does; a float row never straddles an unaligned address); and the data's
/// FNV-1a checksum is the manifest's. Every error names the file and what was expected.
///
/// The mapping is MAP_PRIVATE and PROT_READ: nothing can write through it. Checkpoints are never rewritten in place
/// (a save writes new files and swaps the directory), so a mapped version keeps its bytes while a newer one is
/// saved beside it; a reload maps the new files and the old mapping goes with the last ServingModel using it.
/// After the checksum pass the pages are released (madvise MADV_DONTNEED), so a loaded Predictor keeps resident
/// only the rows it has read since.
#include <cstddef>
#include <cstdint>
#include <string>

#include "autodiff/table_storage.hpp"
#include "train/manifest.hpp"

namespace funnel {

/// One embedding table of a checkpoint, memory-mapped read-only from its .npy file and checked on opening (see the
/// file comment). Move-only; owns the mapping and unmaps it when destroyed. Its accessors are const and may be
/// called from any number of threads at once.
class MappedTable {
 public:
  /// An empty table: no mapping, data() null, rows() and dim() 0.
  MappedTable() = default;
  /// Maps `p` (an entry of the checkpoint's manifest) of the checkpoint in `dir` and checks it (header, dtype,
  /// shape, size, alignment, checksum). Throws funnel::Error naming the file and what was expected.
  MappedTable(const std::string& dir, const CheckpointParam& p);
  ~MappedTable();  ///< Unmaps the file (pointers from data() dangle afterwards).
  /// Takes over o's mapping; o is left without one (data() null).
  MappedTable(MappedTable&& o) noexcept;
  /// Unmaps this table's file, then takes over o's mapping; o is left without one (data() null).
  MappedTable& operator=(MappedTable&& o) noexcept;
  MappedTable(const MappedTable&) = delete;
  MappedTable& operator=(const MappedTable&) = delete;

  const float* data() const { return data_; }  ///< rows × dim floats, row-major, inside the mapping
  std::int64_t rows() const { return rows_; }  ///< Rows of the table (its vocabulary size), from the manifest.
  std::int64_t dim() const { return dim_; }  ///< Floats per row (the embedding dimension), from the manifest.
  const std::string& path() const { return path_; }  ///< The mapped file: `dir` + "/" + the manifest's file name.
  /// The mapped range (the whole file), e.g. to check that data() lies in it: its first byte (the .npy header's).
  const void* map_begin() const { return map_; }
  std::size_t map_bytes() const { return map_bytes_; }  ///< Length of the mapped range in bytes (the file's size).

 private:
  void unmap();

  std::string path_;
  void* map_ = nullptr;
  std::size_t map_bytes_ = 0;
  const float* data_ = nullptr;
  std::int64_t rows_ = 0, dim_ = 0;
};

/// A checkpoint's embedding table as the table storage of a parameter store (autodiff/table_storage.hpp): its rows
/// are a MappedTable's, read-only; nothing of the table's size is allocated (the store's lookup tensor stays
/// 0 × dim). What the Predictor's store holds for each table: load_checkpoint checks the table's manifest entry
/// and reads nothing, the Predictor pools the table's rows from the mapping. Initialising keeps the file's rows;
/// applying a gradient or making optimizer slots is an Error.
class MappedTableStorage final : public TableStorage<float> {
 public:
  /// Maps and checks `p` of the checkpoint in `dir` (MappedTable's constructor and its errors).
  MappedTableStorage(const std::string& dir, const CheckpointParam& p) : t_(dir, p) {}
  const char* kind() const override { return "mapped"; }    ///< "mapped"
  std::int64_t rows() const override { return t_.rows(); }  ///< rows of the mapped table
  std::int64_t dim() const override { return t_.dim(); }    ///< values per row
  /// Leaves the lookup tensor empty (0 × dim) and the gradient without rows: lookups read the mapping.
  void bind(Tensor<float>& lookup, SparseRows<float>* grad) override;
  bool held_in_store() const override { return false; }  ///< false: the rows are the checkpoint file's
  void init(const TableRowDraw<float>&) override {}  ///< nothing: the rows are the checkpoint file's
  std::int64_t held_rows() const override { return t_.rows(); }  ///< every row (read-only)
  std::int64_t table_row(std::int64_t i) const override { return i; }  ///< held row i is table row i
  const float* held_values() const override { return t_.data(); }  ///< the mapped rows
  /// An Error: the table is read-only.
  void apply(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) override;
  /// An Error: the table is read-only.
  void apply_lookup(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) override;
  /// An Error: a read-only table has no optimizer state.
  void make_slots(std::size_t n, const float* initial) override;
  const MappedTable& table() const { return t_; }  ///< the mapping

 private:
  MappedTable t_;
};

}  // namespace funnel
