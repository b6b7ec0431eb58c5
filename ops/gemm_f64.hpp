#pragma once
/// @file
/// The float64 path's matrix products. Executor<double> (gradient checks, the gradient-flow probe) runs its gemms
/// through xtensor-blas: xt::blas::gemm on xtensor adaptors over the executor's own buffers (no copies). The float
/// training path keeps its tuned, thread-split gemm (ops/blas.hpp, ops/gemm_backend.hpp); blas::gemm<T> sends
/// double here.

namespace funnel::blas {

/// Row-major C = alpha · op(A) · op(B) + beta · C on whole matrices: lda, ldb and ldc must be the row lengths of the
/// stored A (m×k, or k×m when ta), B (k×n, or n×k when tb) and C (m×n); anything else throws funnel::Error.
/// beta == 0 overwrites C (its old contents may be garbage, even NaN).
void gemm_f64(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
              double beta, double* c, int ldc);

}  // namespace funnel::blas
