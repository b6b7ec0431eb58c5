#pragma once
// Which library runs the float path's gemms: OpenBLAS (cblas_sgemm) or oneDNN (dnnl_sgemm, its JIT gemm).
// The float64 checking path always uses OpenBLAS's dgemm (ops/blas.hpp).
//
//   funnel::set_gemm_backend(funnel::GemmBackend::openblas);   // or FUNNEL_GEMM=openblas|onednn in the environment
//
// oneDNN is the default when the build found it (CMake option FUNNEL_ONEDNN). Both run one thread per call:
// funnel's own pool (core/parallel.hpp) cuts a gemm into row blocks, one call per block.
//
// Why dnnl_sgemm and not cached oneDNN matmul primitives: on oneDNN 2.6.3 every primitive execute heap-allocates
// (the execution context's argument map: 4 operator-new calls per matmul, 7–9 with bias/ReLU post-ops, measured),
// which breaks the zero-allocation rule of a steady step. dnnl_sgemm makes none (its packing buffer comes from
// malloc inside the library, once per call) and is the same gemm:jit kernel the matmul primitive selects on an
// AVX2 CPU. Transposed operands are passed as flags (no copies).
#include <optional>
#include <string_view>

namespace funnel {

enum class GemmBackend { openblas, onednn };

// True when this build links oneDNN.
bool onednn_available();
// The backend in use. On first use it is taken from FUNNEL_GEMM when set (an unknown value or onednn in a build
// without it throws std::invalid_argument naming FUNNEL_GEMM), else oneDNN when available, else OpenBLAS.
GemmBackend gemm_backend();
// Throws std::invalid_argument when `b` is onednn and the build has no oneDNN. Not thread-safe: call it between
// steps, from the thread that runs them (like set_num_threads).
void set_gemm_backend(GemmBackend b);
const char* gemm_backend_name(GemmBackend b);
std::optional<GemmBackend> parse_gemm_backend(std::string_view s);

// C = alpha·op(A)·op(B) + beta·C, row-major, on the calling thread only, through the current backend.
void sgemm_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc);

}  // namespace funnel
