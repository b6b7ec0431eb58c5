#pragma once
// The float update kernels of Adam and Adagrad (train/optimizer.cpp), dense spans and a table's touched rows, one
// variant per instruction set (core/simd.hpp). Every variant does the same float operations per element in the same
// order, so all give the same bits (fma(a, b, c) = a·b + c rounded once):
//   Adam:    g' = fma(wd, p, g); m = fma(b1, m, a1·g'); v = fma(b2, v, (a2·g')·g');
//            p = p − (step_size·m) / fma(√v, inv_sqrt_bc2, eps)
//   Adagrad: g' = fma(wd, p, g); s = fma(g', g', s); p = p − (lr·g') / (√s + eps)
// The row kernels prefetch the p / slot rows of the update a few rows ahead (touched rows are scattered over the
// table, so the update waits on memory otherwise).
#include <cstddef>
#include <cstdint>

#include "core/simd.hpp"

namespace funnel {

struct AdamStepF {
  float b1, b2, a1, a2, step_size, inv_sqrt_bc2, eps, wd;
};
struct AdagradStepF {
  float lr, eps, wd;
};

struct OptimizerKernels {
  // n contiguous elements.
  void (*adam)(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStepF& k);
  // Row r of g (g + r·dim) updates row idx[r] of p, m and v (which point at row 0 of the table); idx distinct.
  void (*adam_rows)(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim, float* m,
                    float* v, const AdamStepF& k);
  void (*adagrad)(float* p, const float* g, float* acc, std::size_t n, const AdagradStepF& k);
  void (*adagrad_rows)(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                       float* acc, const AdagradStepF& k);
};

// The kernels of `isa` (call them only where simd_isa_supported(isa)).
const OptimizerKernels& optimizer_kernels(SimdIsa isa);
// The kernels of simd_isa().
const OptimizerKernels& optimizer_kernels();

}  // namespace funnel
