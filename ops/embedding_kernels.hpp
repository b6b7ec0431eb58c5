#pragma once
// The float kernels of the embedding op (ops/embedding.cpp), one variant per instruction set (core/simd.hpp):
// pooling the looked-up rows of a range of cells, and scattering the output gradient into the touched rows'
// accumulators. Every variant does the same float operations in the same order, so all give the same bits:
//   pool:    o = w_0·r_0, then o = fma(w_k, r_k, o) for the cell's ids in order; mean: o · (1 / Σ w_k)
//   scatter: acc = fma(s·w_k, dy[cell], acc) for the ids in order, s = 1 (sum) or 1 / Σ w_k (mean)
// The variants exist for the speed of wider registers only; embedding.cpp calls embedding_kernels() (the table of
// the process's ISA), tests call each ISA's table.
#include <cstddef>
#include <cstdint>

#include "core/simd.hpp"

namespace funnel {

struct EmbeddingPoolArgs {
  float* y;               // cells × D output
  const float* table;     // V × D
  std::size_t D;
  const std::int64_t* off;  // cells + 1 offsets into ids / weights
  const std::int64_t* ids;  // every id already checked against [0, V)
  const float* weights;
  std::size_t nids;
  bool mean;
};

struct EmbeddingScatterArgs {
  float* values;               // touched rows × D accumulators (row = slot)
  std::size_t D;
  const float* gy;             // cells × D output gradient
  const std::int64_t* off;     // cells + 1
  const std::int32_t* slot;    // slot of every id, -1 for the ids of a cell without gradient
  const float* weights;
  std::size_t cells;
  bool mean;
};

struct EmbeddingKernels {
  // Pool cells [c0, c1).
  void (*pool)(const EmbeddingPoolArgs& a, std::size_t c0, std::size_t c1);
  // Add every id's term whose slot is in [s0, s1) (walks all cells; slots outside are another thread's).
  void (*scatter)(const EmbeddingScatterArgs& a, std::int64_t s0, std::int64_t s1);
};

// The kernels of `isa` (call them only where simd_isa_supported(isa)).
const EmbeddingKernels& embedding_kernels(SimdIsa isa);
// The kernels of simd_isa().
const EmbeddingKernels& embedding_kernels();

}  // namespace funnel
