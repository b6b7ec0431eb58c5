#pragma once
/// @file
/// Categorical ids for one batch, the value fed to an Ids node. For row b and field f the ids of that cell are
/// ids[offsets[b*F + f] .. offsets[b*F + f + 1]) with the matching weights (1 for plain categorical values).
/// A single-valued field has exactly one id per cell; a multi-valued field any number (zero for an absent field).
/// Ids index rows of an embedding table; mapping raw feature values to rows is the data layer's job.
#include <cstdint>
#include <vector>

namespace funnel {

/// The ids of one batch for one Ids node, in the ragged layout above. Filled by the data layer with reset(), push()
/// and end_cell(); read by the embedding op. Not synchronised: one writer, or readers only.
struct IdBatch {
  std::int64_t batch = 0;   ///< rows in the batch
  std::int64_t fields = 0;  ///< cells per row (the Ids node's num_fields)
  std::vector<std::int64_t> offsets;  ///< batch*fields + 1 entries, offsets[0] == 0
  std::vector<std::int64_t> ids;  ///< every cell's ids (embedding rows), cell after cell
  std::vector<float> weights;  ///< same length as ids

  /// Start a batch with `b` rows and `f` fields; keeps capacity so a steady-state loop does not allocate.
  void reset(std::int64_t b, std::int64_t f) {
    batch = b;
    fields = f;
    offsets.clear();
    offsets.push_back(0);
    ids.clear();
    weights.clear();
  }
  /// Append one id to the current cell; call end_cell() after each cell (row-major: row, then field).
  void push(std::int64_t id, float w = 1.0f) {
    ids.push_back(id);
    weights.push_back(w);
  }
  /// Closes the current cell (possibly empty) and starts the next.
  void end_cell() { offsets.push_back(static_cast<std::int64_t>(ids.size())); }
  /// True once all batch × fields cells have been closed.
  bool complete() const { return static_cast<std::int64_t>(offsets.size()) == batch * fields + 1; }
};

}  // namespace funnel
