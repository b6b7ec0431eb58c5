#include "data/dataset.hpp"

namespace funnel {

void gather_batch(const Dataset& d, std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) {
  const std::int64_t F = d.num_fields, S = d.num_stages, D = d.num_dense;
  ids.reset(static_cast<std::int64_t>(rows.size()), F);
  const bool blocks = d.has_blocks();
  std::size_t b = 0;
  for (std::int64_t r : rows) {
    const std::int32_t blk = blocks ? d.row_block[static_cast<std::size_t>(r)] : -1;
    for (std::int64_t f = 0; f < F; ++f) {
      const auto beg = d.offsets[static_cast<std::size_t>(r * F + f)];
      const auto end = d.offsets[static_cast<std::size_t>(r * F + f + 1)];
      for (auto k = beg; k < end; ++k) ids.push(d.ids[static_cast<std::size_t>(k)], d.weights[static_cast<std::size_t>(k)]);
      if (blk >= 0) {
        // Shared ids after the row's own: the order a reader that copies them into the row would produce.
        const auto bb = d.block_offsets[static_cast<std::size_t>(blk * F + f)];
        const auto be = d.block_offsets[static_cast<std::size_t>(blk * F + f + 1)];
        for (auto k = bb; k < be; ++k)
          ids.push(d.block_ids[static_cast<std::size_t>(k)], d.block_weights[static_cast<std::size_t>(k)]);
      }
      ids.end_cell();
    }
    if (labels)
      for (std::int64_t s = 0; s < S; ++s) labels[b * S + s] = d.labels[static_cast<std::size_t>(r * S + s)];
    if (dense && D)
      for (std::int64_t j = 0; j < D; ++j) dense[b * D + j] = d.dense[static_cast<std::size_t>(r * D + j)];
    ++b;
  }
}

}  // namespace funnel
