#pragma once
// An in-memory dataset of impressions: categorical ids per field (CSR, multi-valued cells allowed), optional dense
// features, and cumulative funnel labels. Readers (data/*.cpp) and the synthetic generator produce it; the
// trainer cuts batches out of it.
//
// Labels are cumulative: stage 0 = click, stage 1 = click·conversion (the CTCVR label), stage s = reached stage s.
// A row that reached stage s reached every stage before it.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/ids.hpp"

namespace funnel {

struct Dataset {
  std::int64_t num_fields = 0;
  std::int64_t num_stages = 2;
  std::int64_t num_dense = 0;
  std::int64_t vocab = 0;  // embedding rows: every id is in [0, vocab)
  std::vector<std::string> field_names;
  std::vector<std::string> dense_names;

  // Row r, field f: ids[offsets[r*F+f] .. offsets[r*F+f+1]) with weights.
  std::vector<std::int64_t> offsets{0};
  std::vector<std::int64_t> ids;
  std::vector<float> weights;
  std::vector<float> dense;            // rows × num_dense
  std::vector<std::uint8_t> labels;    // rows × num_stages, cumulative, 0/1

  // Ground truth (synthetic data only; empty otherwise).
  std::vector<float> true_prob;             // rows × num_stages: p(stage s | stage s-1, x)
  std::vector<std::uint8_t> entire_labels;  // rows × num_stages: stage s drawn for every row as if stage s-1 happened

  std::int64_t rows() const { return num_stages ? static_cast<std::int64_t>(labels.size()) / num_stages : 0; }
  bool has_truth() const { return !entire_labels.empty(); }
  std::uint8_t label(std::int64_t r, std::int64_t s) const {
    return labels[static_cast<std::size_t>(r * num_stages + s)];
  }
};

// Copy the rows `rows` of `d` into a batch: ids (B×F cells), labels (B × num_stages, as float 0/1, row-major) and
// dense features (B × num_dense). Keeps the capacity of the outputs, so a steady-state loop does not allocate.
void gather_batch(const Dataset& d, std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense);

}  // namespace funnel
