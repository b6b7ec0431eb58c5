#pragma once
/// @file
/// Categorical ids for one batch, the value fed to an Ids node. For row b and field f the ids of that cell are
/// ids[offsets[b*F + f] .. offsets[b*F + f + 1]) with the matching weights (1 for plain categorical values).
/// A single-valued field has exactly one id per cell; a multi-valued field any number (zero for an absent field).
/// Ids index rows of an embedding table; mapping raw feature values to rows is the data layer's job.
#include <cstdint>
#include <vector>

namespace funnel {

struct IdBatch {
  std::int64_t batch = 0;
  std::int64_t fields = 0;
  std::vector<std::int64_t> offsets;  ///< batch*fields + 1 entries, offsets[0] == 0
  std::vector<std::int64_t> ids;
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
  void end_cell() { offsets.push_back(static_cast<std::int64_t>(ids.size())); }
  bool complete() const { return static_cast<std::int64_t>(offsets.size()) == batch * fields + 1; }
};

}  // namespace funnel
