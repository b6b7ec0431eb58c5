#pragma once
// Restores the gemm precision, gemm backend, bf16 implementation and thread count a test changed, also when the test fails.
#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"

namespace funnel::test {

struct PrecisionGuard {
  GemmPrecision saved = gemm_precision();
  GemmBackend backend = gemm_backend();
  int threads = num_threads();
  Bf16Impl impl = bf16_impl();
  ~PrecisionGuard() {
    set_bf16_impl(impl);
    set_gemm_precision(saved);
    set_gemm_backend(backend);
    set_num_threads(threads);
  }
};

}  // namespace funnel::test
