#pragma once
/// @file
/// The float update kernels of Adam and Adagrad (train/optimizer.cpp), dense spans and a table's touched rows, one
/// variant per instruction set (core/simd.hpp). Every variant does the same float operations per element in the same
/// order, so all give the same bits (fma(a, b, c) = a·b + c rounded once):
///   Adam:    g' = fma(wd, p, g); m = fma(b1, m, a1·g'); v = fma(b2, v, (a2·g')·g');
///            p = p − (step_size·m) / fma(√v, inv_sqrt_bc2, eps)
///   Adagrad: g' = fma(wd, p, g); s = fma(g', g', s); p = p − (lr·g') / (√s + eps)
/// The row kernels prefetch the p / slot rows of the update a few rows ahead (touched rows are scattered over the
/// table, so the update waits on memory otherwise).
#include <cstddef>
#include <cstdint>

#include "core/simd.hpp"

namespace funnel {

/// One Adam step's constants in float, computed once per step from the config and the 1-based step t (see the
/// formulas above).
struct AdamStepF {
  /// b1 = β1, b2 = β2, a1 = 1 − β1, a2 = 1 − β2, step_size = lr / (1 − β1^t), inv_sqrt_bc2 = 1 / √(1 − β2^t),
  /// eps = ε, wd = the L2 weight decay.
  ///@{
  float b1, b2, a1, a2, step_size, inv_sqrt_bc2, eps, wd;
  ///@}
};
/// One Adagrad step's constants in float (see the formulas above).
struct AdagradStepF {
  /// lr = the learning rate, eps = ε (added to √s), wd = the L2 weight decay.
  ///@{
  float lr, eps, wd;
  ///@}
};

/// The four update kernels of one instruction set. Each updates in place and allocates nothing; calls on disjoint
/// parameters may run on different threads.
struct OptimizerKernels {
  /// Adam on n contiguous elements: parameters p, gradient g, first and second moments m and v.
  void (*adam)(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStepF& k);
  /// Adam on a table's touched rows: row r of g (g + r·dim) updates row idx[r] of p, m and v (which point at row 0
  /// of the table); idx distinct.
  void (*adam_rows)(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim, float* m,
                    float* v, const AdamStepF& k);
  /// Adagrad on n contiguous elements: parameters p, gradient g, accumulated squares acc.
  void (*adagrad)(float* p, const float* g, float* acc, std::size_t n, const AdagradStepF& k);
  /// Adagrad on a table's touched rows, laid out as for adam_rows.
  void (*adagrad_rows)(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                       float* acc, const AdagradStepF& k);
};

/// The kernels of `isa` (call them only where simd_isa_supported(isa)); the portable ones for an ISA this build
/// has no variant of.
const OptimizerKernels& optimizer_kernels(SimdIsa isa);
/// The kernels of simd_isa(), chosen at the first call (FUNNEL_ISA and the CPU decide) and kept for the process.
const OptimizerKernels& optimizer_kernels();

}  // namespace funnel
