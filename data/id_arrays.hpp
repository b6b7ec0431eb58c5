#pragma once
// The id arrays of a batch gathered in place (Dataset::gather_batch, CacheFile::gather): sized once the batch's
// number of ids is known, then written directly.
#include <cstddef>

#include "core/ids.hpp"

namespace funnel::detail {

/// Sizes ids and weights of `b` to `n` entries. A new maximum reserves twice `n`: the number of ids varies from batch
/// to batch, so a steady loop soon stops reallocating.
inline void resize_ids(IdBatch& b, std::size_t n) {
  if (b.ids.capacity() < n) {
    b.ids.reserve(2 * n);
    b.weights.reserve(2 * n);
  }
  b.ids.resize(n);
  b.weights.resize(n);
}

}  // namespace funnel::detail
