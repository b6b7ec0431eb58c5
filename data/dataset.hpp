#pragma once
/// @file
/// An in-memory dataset of impressions: categorical ids per field (CSR, multi-valued cells allowed), optional dense
/// features, and cumulative funnel labels. Readers (data/*.cpp) and the synthetic generator produce it; the
/// trainer cuts batches out of it.
///
/// Labels are cumulative: stage 0 = click, stage 1 = click·conversion (the CTCVR label), stage s = reached stage s.
/// A row that reached stage s reached every stage before it.
///
/// Shared blocks: ids that many rows have in common (the Ali-CCP user features of a common_feature_index) can be
/// stored once, as a block, instead of being copied into every row. A block has a cell per field, like a row.
/// Row r may refer to one block (row_block[r] >= 0); its cell (r, f) is then its own ids (offsets/ids/weights)
/// followed by the ids of field f of that block. Without blocks (csv, slots, synthetic data) row_block and the
/// block arrays are empty and a cell is just its own ids. gather_batch, split_tail and the cache understand blocks;
/// code that reads the arrays directly must too (see cell_size / for_each_id below).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/ids.hpp"

namespace funnel {

/// Rows of impressions held in memory (see the file's description). A plain aggregate: readers, the generator and
/// the cache fill its arrays; everything else reads them. Const access from several threads is safe.
struct Dataset {
  std::int64_t num_fields = 0;  ///< F: categorical fields per row
  std::int64_t num_stages = 2;  ///< label columns (funnel stages)
  std::int64_t num_dense = 0;  ///< dense features per row
  std::int64_t vocab = 0;  ///< embedding rows: every id is in [0, vocab)
  std::vector<std::string> field_names;  ///< the fields' names, F of them
  std::vector<std::string> dense_names;  ///< the dense columns' names

  /// Row r, field f: ids[offsets[r*F+f] .. offsets[r*F+f+1]) with weights (the row's own ids).
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int64_t> ids;  ///< the rows' own ids (embedding rows), cell after cell
  std::vector<float> weights;  ///< one weight per id
  std::vector<float> dense;            ///< rows × num_dense
  std::vector<std::uint8_t> labels;    ///< rows × num_stages, cumulative, 0/1

  /// Shared blocks (empty when the dataset has none). row_block: one entry per row, a block index or -1.
  /// Block b, field f: block_ids[block_offsets[b*F+f] .. block_offsets[b*F+f+1]) with block_weights.
  std::vector<std::int32_t> row_block;
  std::vector<std::int64_t> block_offsets;  ///< blocks × F + 1 entries (empty when there are no blocks)
  std::vector<std::int64_t> block_ids;  ///< the blocks' ids, cell after cell
  std::vector<float> block_weights;  ///< one weight per block id

  /// Ground truth (synthetic data only; empty otherwise).
  std::vector<float> true_prob;             ///< rows × num_stages: p(stage s | stage s-1, x)
  std::vector<std::uint8_t> entire_labels;  ///< rows × num_stages: stage s drawn for every row as if stage s-1 happened

  /// User keys (for GAUC): one per row, or empty. Data with shared blocks and no keys of its own (Ali-CCP) uses its
  /// block as the key: the block is the row's common-features row, i.e. its user. A row without a key (-1) counts
  /// in no user's AUC.
  std::vector<std::int64_t> user_keys;

  /// Number of rows (from the label array).
  std::int64_t rows() const { return num_stages ? static_cast<std::int64_t>(labels.size()) / num_stages : 0; }
  bool has_truth() const { return !entire_labels.empty(); }  ///< synthetic ground truth is present
  bool has_blocks() const { return !row_block.empty(); }  ///< rows refer to shared blocks
  /// Rows have user keys (their own or their blocks)
  bool has_user_keys() const { return !user_keys.empty() || has_blocks(); }
  /// Row r's user key (see user_keys), -1 for none.
  std::int64_t user_key(std::int64_t r) const {
    const auto i = static_cast<std::size_t>(r);
    return !user_keys.empty() ? user_keys[i] : has_blocks() ? row_block[i] : -1;
  }
  /// Number of shared blocks.
  std::int64_t num_blocks() const {
    return block_offsets.empty() || num_fields <= 0 ? 0
                                                     : (static_cast<std::int64_t>(block_offsets.size()) - 1) / num_fields;
  }
  /// Row r's label of stage s (0 or 1; cumulative).
  std::uint8_t label(std::int64_t r, std::int64_t s) const {
    return labels[static_cast<std::size_t>(r * num_stages + s)];
  }
  /// Number of ids of cell (r, f), own and shared.
  std::int64_t cell_size(std::int64_t r, std::int64_t f) const {
    const auto i = static_cast<std::size_t>(r * num_fields + f);
    std::int64_t n = offsets[i + 1] - offsets[i];
    if (const std::int32_t b = row_block.empty() ? -1 : row_block[static_cast<std::size_t>(r)]; b >= 0) {
      const auto j = static_cast<std::size_t>(b * num_fields + f);
      n += block_offsets[j + 1] - block_offsets[j];
    }
    return n;
  }
  /// Calls fn(id, weight) for every id of cell (r, f) in order: own ids, then the block's.
  template <class Fn>
  void for_each_id(std::int64_t r, std::int64_t f, Fn&& fn) const {
    const auto i = static_cast<std::size_t>(r * num_fields + f);
    for (auto k = offsets[i]; k < offsets[i + 1]; ++k)
      fn(ids[static_cast<std::size_t>(k)], weights[static_cast<std::size_t>(k)]);
    if (const std::int32_t b = row_block.empty() ? -1 : row_block[static_cast<std::size_t>(r)]; b >= 0) {
      const auto j = static_cast<std::size_t>(b * num_fields + f);
      for (auto k = block_offsets[j]; k < block_offsets[j + 1]; ++k)
        fn(block_ids[static_cast<std::size_t>(k)], block_weights[static_cast<std::size_t>(k)]);
    }
  }
  /// Total ids of all cells (own + shared, counting a block once per row that uses it).
  std::int64_t total_ids() const {
    std::int64_t n = static_cast<std::int64_t>(ids.size());
    for (const std::int32_t b : row_block)
      if (b >= 0)
        n += block_offsets[static_cast<std::size_t>((b + 1) * num_fields)] -
             block_offsets[static_cast<std::size_t>(b * num_fields)];
    return n;
  }
};

/// Copy the rows `rows` of `d` into a batch: ids (B×F cells, own then shared ids per cell), labels (B × num_stages,
/// as float 0/1, row-major) and dense features (B × num_dense). Keeps the capacity of the outputs, so a steady-state
/// loop does not allocate.
void gather_batch(const Dataset& d, std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense);

/// The first broken structural invariant of `d` (array sizes, monotone offsets, ids in [0, vocab), block
/// references in range), or "" if there is none. Used by the cache reader, the fuzzers and tests.
std::string dataset_problem(const Dataset& d);

}  // namespace funnel
