#pragma once
// The kernels of each instruction set (generic, AVX2, AVX-512) checked by one test case each:
//   FUNNEL_ISA_TEST_CASES("embedding kernels", "pool and scatter equal the scalar reference exactly", "[ops][simd]",
//                         check_isa)
// defines "embedding kernels, generic: pool and ...", "..., AVX2: ..." and "..., AVX-512: ...", each calling
// check_isa(SimdIsa::...). A set this CPU cannot run is reported as skipped (support/skip.hpp), never as passed.
#include <catch2/catch.hpp>

#include "core/simd.hpp"
#include "support/skip.hpp"

#define FUNNEL_ISA_TEST_CASES(what, claim, tags, check)                                                       \
  TEST_CASE(what ", generic: " claim, tags) { check(::funnel::SimdIsa::generic); }                           \
  TEST_CASE(what ", AVX2: " claim, tags) {                                                                    \
    if (!::funnel::simd_isa_supported(::funnel::SimdIsa::avx2)) FUNNEL_SKIP("this CPU has no AVX2 + FMA");    \
    check(::funnel::SimdIsa::avx2);                                                                           \
  }                                                                                                           \
  TEST_CASE(what ", AVX-512: " claim, tags) {                                                                 \
    if (!::funnel::simd_isa_supported(::funnel::SimdIsa::avx512))                                             \
      FUNNEL_SKIP("this CPU has no AVX-512 F/BW/VL (or the OS does not enable it)");                          \
    check(::funnel::SimdIsa::avx512);                                                                         \
  }
