#include "data/dataset.hpp"

#include <algorithm>

#include "core/parallel.hpp"
#include "data/id_arrays.hpp"

namespace funnel {

void gather_batch(const Dataset& d, std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) {
  const std::int64_t F = d.num_fields, S = d.num_stages, D = d.num_dense;
  const auto B = static_cast<std::int64_t>(rows.size());
  ids.reset(B, F);
  const bool blocks = d.has_blocks();
  // Two passes over the rows, both split over the threads: cell sizes (into offsets[cell + 1]), a prefix sum, then
  // every cell's ids copied to its place. Rows are read in random order, so the copy is bound by memory latency.
  ids.offsets.resize(static_cast<std::size_t>(B * F + 1));
  std::int64_t* off = ids.offsets.data();
  const std::int64_t grain = std::max<std::int64_t>(1, 2048 / std::max<std::int64_t>(F, 1));
  auto block_of = [&](std::int64_t r) { return blocks ? d.row_block[static_cast<std::size_t>(r)] : std::int32_t{-1}; };
  // Rows are visited in random order: fetch the offsets (pass 1) and the ids and weights (pass 2) of the row
  // kAhead positions on while this one is copied.
  constexpr std::int64_t kAhead = 4;
  const std::int64_t* doff = d.offsets.data();
  auto prefetch_span = [](const void* p, std::size_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o);
    __builtin_prefetch(c + bytes - 1);
  };
  parallel_for(B, grain, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      if (b + kAhead < b1)
        prefetch_span(doff + rows[static_cast<std::size_t>(b + kAhead)] * F,
                      sizeof(std::int64_t) * static_cast<std::size_t>(F + 1));
      const std::int64_t r = rows[static_cast<std::size_t>(b)];
      const std::int32_t blk = block_of(r);
      const std::int64_t* ro = d.offsets.data() + r * F;
      const std::int64_t* bo = blk >= 0 ? d.block_offsets.data() + static_cast<std::int64_t>(blk) * F : nullptr;
      for (std::int64_t f = 0; f < F; ++f)
        off[b * F + f + 1] = (ro[f + 1] - ro[f]) + (bo ? bo[f + 1] - bo[f] : 0);
    }
  });
  off[0] = 0;
  for (std::int64_t c = 1; c <= B * F; ++c) off[c] += off[c - 1];
  const auto total = static_cast<std::size_t>(off[B * F]);
  detail::resize_ids(ids, total);
  std::int64_t* out_ids = ids.ids.data();
  float* out_w = ids.weights.data();
  parallel_for(B, grain, [&](std::int64_t b0, std::int64_t b1) {
    for (std::int64_t b = b0; b < b1; ++b) {
      if (b + kAhead < b1) {
        const std::int64_t* ro = doff + rows[static_cast<std::size_t>(b + kAhead)] * F;
        const auto n = static_cast<std::size_t>(ro[F] - ro[0]);
        if (n > 0) {
          prefetch_span(d.ids.data() + ro[0], n * sizeof(std::int64_t));
          prefetch_span(d.weights.data() + ro[0], n * sizeof(float));
        }
      }
      const std::int64_t r = rows[static_cast<std::size_t>(b)];
      const std::int32_t blk = block_of(r);
      for (std::int64_t f = 0; f < F; ++f) {
        std::int64_t o = off[b * F + f];
        const auto beg = d.offsets[static_cast<std::size_t>(r * F + f)];
        const auto end = d.offsets[static_cast<std::size_t>(r * F + f + 1)];
        for (auto k = beg; k < end; ++k, ++o) {
          out_ids[o] = d.ids[static_cast<std::size_t>(k)];
          out_w[o] = d.weights[static_cast<std::size_t>(k)];
        }
        if (blk >= 0) {
          // Shared ids after the row's own: the order a reader that copies them into the row would produce.
          const auto bb = d.block_offsets[static_cast<std::size_t>(blk * F + f)];
          const auto be = d.block_offsets[static_cast<std::size_t>(blk * F + f + 1)];
          for (auto k = bb; k < be; ++k, ++o) {
            out_ids[o] = d.block_ids[static_cast<std::size_t>(k)];
            out_w[o] = d.block_weights[static_cast<std::size_t>(k)];
          }
        }
      }
      if (labels)
        for (std::int64_t s = 0; s < S; ++s) labels[b * S + s] = d.labels[static_cast<std::size_t>(r * S + s)];
      if (dense && D)
        for (std::int64_t j = 0; j < D; ++j) dense[b * D + j] = d.dense[static_cast<std::size_t>(r * D + j)];
    }
  });
}

}  // namespace funnel
