#pragma once
/// @file
/// Row-major gemm for float and double: C = alpha * op(A) * op(B) + beta * C. Calls BLAS directly with transpose
/// flags; no copies. Float goes to the selected backend (ops/gemm_backend.hpp: oneDNN or OpenBLAS), double (the
/// checking path) to xtensor-blas on one thread (ops/gemm_f64.hpp). With more than one thread (core/parallel.hpp) a large gemm is cut into independent gemms on
/// blocks of rows of C (or of columns when C has few rows), one per thread; each output element is still one BLAS
/// dot product over all of k.
#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"
#include "ops/gemm_f64.hpp"

namespace funnel::blas {

/// One gemm on the calling thread through the float backend (sgemm_one_thread): C = alpha·op(A)·op(B) + beta·C,
/// row-major, op(X) = Xᵀ when its flag (`ta`, `tb`) is set; op(A) is m×k, op(B) k×n, C m×n, and lda, ldb, ldc are
/// the stored row lengths.
inline void gemm1(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                  int ldb, float beta, float* c, int ldc, Bf16Ready ready = {}) {
  sgemm_one_thread(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ready);
}

/// Below this many multiply-adds a gemm runs on one thread (waking a worker costs about as much).
inline constexpr std::int64_t kParallelGemmMacs = std::int64_t{1} << 18;
/// Cuts between threads fall on multiples of these. Row cuts on a multiple of the BLAS kernel's register tile give
/// the same bits as one call (checked for OpenBLAS's Haswell sgemm kernels, whose tile is 12 rows of row-major C;
/// 48 also covers tiles of 4, 6, 8, 16 and 24; 96 balanced 1024 rows 480/544 over two threads, 48 gives 528/496).
/// Column cuts change the kernel's blocking and so the last bits, so they are used only when C has too few rows.
/// oneDNN's sgemm keeps the bits under these row cuts for A·B and Aᵀ·B at ESMM's shapes (tests/ops/test_gemm_backend),
/// but not for A·Bᵀ: see kOnednnNtRowBlock below.
inline constexpr std::int64_t kGemmRowBlock = 48;
inline constexpr std::int64_t kGemmColBlock = 64;  ///< column cuts fall on multiples of this

/// oneDNN's sgemm sums a row of C = A·Bᵀ (B transposed, A not) in a different order depending on the call's size:
/// cutting such a gemm anywhere changes the last bits (measured on oneDNN 2.6.3, AVX2). These gemms are therefore
/// always done as calls on fixed blocks of this many rows, whatever the thread count; threads share the blocks.
/// Up to kOnednnNtCutMax rows the 48-row cuts below keep its bits (checked at 96–128 rows); from 136 rows on they
/// do not, so from there on the fixed blocks are used (a gemm of 136–256 rows is one call).
inline constexpr std::int64_t kOnednnNtRowBlock = 256;
inline constexpr std::int64_t kOnednnNtCutMax = 128;  ///< up to this many rows, A·Bᵀ is cut like the other gemms
// Row cuts: the rows left over after the last whole block join that block instead of making a short block of
// their own. A call of fewer than 48 rows may sum differently from the same rows inside a larger call (oneDNN's
// A·B with a 32- or 40-row call: measured), so every call keeps at least one whole block and the tail stays with
// the rows it follows in a one-thread call. Measured bit-exact against one call for both backends, the three
// transpose pairs, ESMM's shapes, 96–1100 rows and 2–4 threads (tests/ops/test_gemm_backend.cpp).

/// The float path: the selected backend, cut over the thread pool when large. `ready` marks operands already rounded
/// to bf16 (ops/gemm_backend.hpp); a block of a rounded matrix is rounded, so the mark holds for every cut.
inline void sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                  float beta, float* c, int ldc, Bf16Ready ready = {}) {
  if (tb && !ta && m > kOnednnNtCutMax && gemm_backend() == GemmBackend::onednn) {
    const std::int64_t blocks = (m + kOnednnNtRowBlock - 1) / kOnednnNtRowBlock;
    const bool big = static_cast<std::int64_t>(m) * n * k >= kParallelGemmMacs;
    // bf16 operands prepared on this thread when blocks may run on others (see prepare_bf16_operands).
    Bf16Prepared pp;
    const bool prep = big && blocks > 1 && num_threads() > 1 &&
                      prepare_bf16_operands(ta, tb, m, n, k, a, lda, b, ldb, ready, pp);
    parallel_for(blocks, big ? 1 : blocks, [&](std::int64_t b0, std::int64_t b1) {
      for (std::int64_t blk = b0; blk < b1; ++blk) {
        const std::int64_t lo = blk * kOnednnNtRowBlock, hi = std::min<std::int64_t>(m, lo + kOnednnNtRowBlock);
        if (prep)
          sgemm_prepared_one_thread(ta, tb, static_cast<int>(hi - lo), n, k, alpha, pp,
                                    static_cast<std::size_t>(lo * pp.lda), 0, beta, c + lo * ldc, ldc);
        else
          gemm1(ta, tb, static_cast<int>(hi - lo), n, k, alpha, a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc,
                ready);
      }
    });
    return;
  }
  const bool big = static_cast<std::int64_t>(m) * n * k >= kParallelGemmMacs;
  const bool by_rows = m >= 2 * kGemmRowBlock;
  if (!big || num_threads() == 1 || (!by_rows && n < 2 * kGemmColBlock)) {
    gemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ready);
    return;
  }
  const std::int64_t block = by_rows ? kGemmRowBlock : kGemmColBlock;
  const std::int64_t dim = by_rows ? m : n;
  // Rows: whole blocks only, the tail joining the last one (see above). Columns as before: ceil(n / block) blocks.
  const std::int64_t blocks = by_rows ? dim / block : (dim + block - 1) / block;
  Bf16Prepared pp;  // bf16: operands prepared on this thread, before the cut (see prepare_bf16_operands)
  const bool prep = prepare_bf16_operands(ta, tb, m, n, k, a, lda, b, ldb, ready, pp);
  parallel_for(blocks, 1, [&](std::int64_t b0, std::int64_t b1) {
    const std::int64_t lo = b0 * block, hi = b1 == blocks ? dim : std::min(dim, b1 * block);
    const int len = static_cast<int>(hi - lo);
    if (prep && by_rows)
      sgemm_prepared_one_thread(ta, tb, len, n, k, alpha, pp, static_cast<std::size_t>(ta ? lo : lo * pp.lda), 0,
                                beta, c + lo * ldc, ldc);
    else if (prep)
      sgemm_prepared_one_thread(ta, tb, m, len, k, alpha, pp, 0, static_cast<std::size_t>(tb ? lo * pp.ldb : lo),
                                beta, c + lo, ldc);
    else if (by_rows)  // rows lo..hi of op(A) and of C
      gemm1(ta, tb, len, n, k, alpha, ta ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc, ready);
    else  // columns lo..hi of op(B) and of C
      gemm1(ta, tb, m, len, k, alpha, a, lda, tb ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc, ready);
  });
}

/// The gemm ops call, for float: sgemm (arguments as gemm1's).
inline void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                 float beta, float* c, int ldc, Bf16Ready ready = {}) {
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ready);
}
/// The checking path: whole matrices, one call through xtensor-blas (no thread split; bits need not match float's).
inline void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                 int ldb, double beta, double* c, int ldc, Bf16Ready = {}) {
  gemm_f64(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace funnel::blas
