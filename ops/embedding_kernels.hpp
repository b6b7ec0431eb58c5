#pragma once
/// @file
/// The float kernels of the embedding op (ops/embedding.cpp), one variant per instruction set (core/simd.hpp):
/// pooling the looked-up rows of a range of cells, and scattering the output gradient into the touched rows'
/// accumulators. Every variant does the same float operations in the same order, so all give the same bits:
///   pool:    o = w_0·r_0, then o = fma(w_k, r_k, o) for the cell's ids in order; mean: o · (1 / Σ w_k)
///   scatter: acc = fma(s·w_k, dy[cell], acc) for the ids in order, s = 1 (sum) or 1 / Σ w_k (mean)
///   rows:    the same sums, one slot at a time from its ids grouped ahead (acc starts at 0 in registers)
/// The variants exist for the speed of wider registers only; embedding.cpp calls embedding_kernels() (the table of
/// the process's ISA), tests call each ISA's table.
#include <cstddef>
#include <cstdint>

#include "core/simd.hpp"

namespace funnel {

/// What EmbeddingKernels::pool reads and writes: the ids of every cell (a batch row's field) and the table they
/// index. Plain pointers, owned by the caller and valid for the call.
struct EmbeddingPoolArgs {
  float* y;               ///< cells × D output, row-major: cell c's pooled row at y + c·D
  const float* table;     ///< V × D embedding table, row-major
  std::size_t D;          ///< floats per row (the embedding dimension)
  const std::int64_t* off;  ///< cells + 1 offsets into ids / weights: cell c has ids [off[c], off[c + 1])
  const std::int64_t* ids;  ///< table rows, every id already checked against [0, V)
  const float* weights;   ///< one pooling weight per id (parallel to ids)
  std::size_t nids;       ///< length of ids and weights (bounds the prefetch)
  bool mean;              ///< mean pooling (divide by the cell's Σ weights; 0 when that is 0), else sum
};

/// What EmbeddingKernels::scatter reads and writes: the output gradient of every cell and, per id, the accumulator
/// row of its table row. Plain pointers, owned by the caller and valid for the call.
struct EmbeddingScatterArgs {
  float* values;               ///< touched rows × D accumulators (row = slot), added to
  std::size_t D;               ///< floats per row (the embedding dimension)
  const float* gy;             ///< cells × D output gradient, row-major
  const std::int64_t* off;     ///< cells + 1 offsets into slot / weights: cell c has ids [off[c], off[c + 1])
  const std::int32_t* slot;    ///< slot of every id, -1 for the ids of a cell without gradient
  const float* weights;        ///< one pooling weight per id (parallel to slot)
  std::size_t cells;           ///< number of cells (rows of gy)
  bool mean;                   ///< mean pooling (each term scaled by 1 / the cell's Σ weights), else sum
};

/// What EmbeddingKernels::rows reads and writes: a batch's ids grouped by accumulator slot, in id order within a
/// slot (the layout an embedding op makes in its forward pass when a backward follows). Plain pointers, owned by
/// the caller and valid for the call.
struct EmbeddingRowsArgs {
  float* values;               ///< slots × D accumulators, written (not added to)
  std::size_t D;               ///< floats per row (the embedding dimension)
  const float* gy;             ///< cells × D output gradient, row-major
  const std::int64_t* start;   ///< slots + 1 offsets: slot s has entries [start[s], start[s + 1])
  const std::int32_t* cell;    ///< per entry: the cell of its id (its row of gy)
  const float* w;              ///< per entry: its id's weight times the cell's pooling scale
  std::size_t entries;         ///< length of cell and w (bounds the prefetch)
};

/// The embedding kernels of one instruction set, as function pointers (see embedding_kernels()).
struct EmbeddingKernels {
  /// Pools cells [c0, c1) into their rows of a.y (an empty cell gives zeros). Writes nothing else, so threads may
  /// pool disjoint cell ranges of one call at once.
  void (*pool)(const EmbeddingPoolArgs& a, std::size_t c0, std::size_t c1);
  /// Adds every id's term whose slot is in [s0, s1) (walks all cells; slots outside are another thread's), so
  /// threads may scatter disjoint slot ranges of one call at once.
  void (*scatter)(const EmbeddingScatterArgs& a, std::int64_t s0, std::int64_t s1);
  /// Writes the accumulators of slots [s0, s1): each the sum of its entries' w · gy[cell] in entry order, from zero,
  /// with fused multiply-adds: the bits scatter gives into zeroed accumulators. Reads only those slots' entries,
  /// so threads may write disjoint slot ranges of one call at once.
  void (*rows)(const EmbeddingRowsArgs& a, std::size_t s0, std::size_t s1);
};

/// The kernels of `isa` (call them only where simd_isa_supported(isa)); generic on a non-x86 build. A static table,
/// valid for the process's lifetime. Thread-safe.
const EmbeddingKernels& embedding_kernels(SimdIsa isa);
/// The kernels of simd_isa(), chosen on the first call; throws as simd_isa() does. Thread-safe.
const EmbeddingKernels& embedding_kernels();

}  // namespace funnel
