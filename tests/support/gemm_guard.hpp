#pragma once
// Restores the gemm precision, gemm backend, bf16 implementation and thread count a test changed, also when the test fails;
// the skip of a test that needs native bf16 gemms.
#include <stdexcept>

#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"
#include "support/skip.hpp"

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

// Whether this CPU runs native bf16 gemms. When it does not, checks that asking for them is refused and reports the
// test case as skipped (support/skip.hpp; shown by CTest as skipped, never as passed): the caller then returns.
inline bool native_bf16_or_skip() {
  if (bf16_native_available()) return true;
  REQUIRE_THROWS_AS(set_bf16_impl(Bf16Impl::native), std::invalid_argument);
  WARN(kSkipMarker << " native bf16: " << bf16_native_unavailable_reason());
  return false;
}

}  // namespace funnel::test
