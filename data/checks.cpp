// dataset_problem(): the structural invariants of a Dataset (data/dataset.hpp), checked by the cache reader,
// the fuzzers and tests. Kept apart from dataset.cpp so that the fuzz targets (which compile the readers
// without the core library) can use it.
#include <string>

#include "data/dataset.hpp"

namespace funnel {
namespace {

// Offsets of `cells` cells over `n` ids: cells + 1 entries, starting at 0, non-decreasing, ending at n.
std::string csr_problem(const std::vector<std::int64_t>& off, std::int64_t cells, std::size_t n, const char* what) {
  if (static_cast<std::int64_t>(off.size()) != cells + 1)
    return std::string(what) + " offsets: expected " + std::to_string(cells + 1) + " entries, got " +
           std::to_string(off.size());
  if (off.front() != 0) return std::string(what) + " offsets: expected the first to be 0";
  for (std::size_t i = 1; i < off.size(); ++i)
    if (off[i - 1] > off[i]) return std::string(what) + " offsets decrease at entry " + std::to_string(i);
  if (off.back() != static_cast<std::int64_t>(n))
    return std::string(what) + " offsets: expected the last to be the number of ids (" + std::to_string(n) +
           "), got " + std::to_string(off.back());
  return {};
}

std::string ids_problem(const std::vector<std::int64_t>& ids, std::int64_t vocab, const char* what) {
  for (const auto id : ids)
    if (id < 0 || id >= vocab)
      return std::string(what) + ": id " + std::to_string(id) + " outside [0, vocab = " + std::to_string(vocab) + ")";
  return {};
}

}  // namespace

std::string dataset_problem(const Dataset& d) {
  if (d.num_fields < 0 || d.num_stages <= 0 || d.num_dense < 0 || d.vocab < 0) return "negative sizes";
  if (d.labels.size() % static_cast<std::size_t>(d.num_stages) != 0) return "labels size is not rows x num_stages";
  const std::int64_t rows = d.rows(), F = d.num_fields;
  if (d.field_names.size() != static_cast<std::size_t>(F)) return "field names vs num_fields";
  if (d.dense_names.size() != static_cast<std::size_t>(d.num_dense)) return "dense names vs num_dense";
  if (d.dense.size() != static_cast<std::size_t>(rows * d.num_dense)) return "dense size vs rows x num_dense";
  if (auto p = csr_problem(d.offsets, rows * F, d.ids.size(), "row"); !p.empty()) return p;
  if (d.weights.size() != d.ids.size()) return "row weights vs ids";
  if (auto p = ids_problem(d.ids, d.vocab, "row ids"); !p.empty()) return p;
  if (!d.true_prob.empty() && d.true_prob.size() != d.labels.size()) return "true_prob size vs labels";
  if (!d.entire_labels.empty() && d.entire_labels.size() != d.labels.size()) return "entire_labels size vs labels";
  if (!d.user_keys.empty() && static_cast<std::int64_t>(d.user_keys.size()) != d.rows()) return "user_keys size vs rows";
  if (d.row_block.empty()) {
    if (!d.block_offsets.empty() || !d.block_ids.empty() || !d.block_weights.empty())
      return "block arrays without row_block";
    return {};
  }
  if (d.row_block.size() != static_cast<std::size_t>(rows)) return "row_block size vs rows";
  if (F <= 0 || d.block_offsets.empty() || (d.block_offsets.size() - 1) % static_cast<std::size_t>(F) != 0)
    return "block offsets size is not blocks x fields + 1";
  const std::int64_t blocks = d.num_blocks();
  if (auto p = csr_problem(d.block_offsets, blocks * F, d.block_ids.size(), "block"); !p.empty()) return p;
  if (d.block_weights.size() != d.block_ids.size()) return "block weights vs ids";
  if (auto p = ids_problem(d.block_ids, d.vocab, "block ids"); !p.empty()) return p;
  for (std::size_t r = 0; r < d.row_block.size(); ++r)
    if (d.row_block[r] < -1 || d.row_block[r] >= blocks)
      return "row " + std::to_string(r) + " refers to block " + std::to_string(d.row_block[r]) + " of " +
             std::to_string(blocks);
  return {};
}

}  // namespace funnel
