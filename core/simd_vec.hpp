#pragma once
/// @file
/// Register types for funnel's SIMD kernels (see core/simd.hpp), one struct per instruction set with the same
/// static interface, so a kernel is written once over `V` and compiled once per ISA:
///
///   V::W               floats per register          V::R, V::M      register and lane-mask types
///   V::mask(rem)       the first min(rem, W) lanes   V::load(p, m)   masked load (masked-off lanes read nothing)
///   V::store(p, x, m)  masked store                  V::loadu/storeu all W lanes
///   V::set1, zero, add, sub, mul, div, sqrt, fmadd(a, b, c) = a·b + c rounded once
///
/// Vec512 and Vec256 are compiled for AVX-512 (F, BW, VL) and AVX2 + FMA alone (GCC target pragmas), whatever the
/// build's baseline: use them only from code compiled for the same target (a kernel file includes its body once per
/// ISA inside `#pragma GCC target` regions, see ops/embedding_kernels.cpp) and call that code only where
/// simd_isa_supported() says so. VecScalar is one float per "register" and runs anywhere.
#include <cmath>
#include <cstddef>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FUNNEL_SIMD_X86 1
// Regions of code compiled for one ISA whatever the build's baseline (every function defined inside).
#if defined(__clang__)
#define FUNNEL_SIMD_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma\"))), apply_to = function)")
#define FUNNEL_SIMD_AVX512_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx2,fma\"))), apply_to = function)")
#define FUNNEL_SIMD_END _Pragma("clang attribute pop")
#else
#define FUNNEL_SIMD_AVX2_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma\")")
#define FUNNEL_SIMD_AVX512_BEGIN \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx2,fma\")")
#define FUNNEL_SIMD_END _Pragma("GCC pop_options")
#endif
#endif

namespace funnel::simdv {

/// The portable register type: one float per "register", plain C++ arithmetic (std::fma, std::sqrt). Runs on any
/// CPU; the `generic` variant of every kernel. All members are static and stateless.
struct VecScalar {
  using R = float;  ///< A register: one float.
  using M = bool;   ///< A lane mask: whether the one lane is active.
  static constexpr std::size_t W = 1;  ///< Floats per register.
  /// Mask of the first min(rem, W) lanes: true when rem > 0 (rem = floats left in the row).
  static M mask(std::size_t rem) { return rem > 0; }
  /// Loads *p when m is set, else gives 0 without reading p.
  static R load(const float* p, M m) { return m ? *p : 0.0f; }
  /// Stores x to *p when m is set; writes nothing otherwise.
  static void store(float* p, R x, M m) {
    if (m) *p = x;
  }
  static R loadu(const float* p) { return *p; }  ///< Loads all W floats at p (no alignment needed).
  static void storeu(float* p, R x) { *p = x; }  ///< Stores all W lanes of x to p (no alignment needed).
  static R set1(float x) { return x; }  ///< Every lane set to x.
  static R zero() { return 0.0f; }  ///< Every lane 0.
  static R add(R a, R b) { return a + b; }  ///< Lane-wise a + b.
  static R sub(R a, R b) { return a - b; }  ///< Lane-wise a - b.
  static R mul(R a, R b) { return a * b; }  ///< Lane-wise a · b.
  static R div(R a, R b) { return a / b; }  ///< Lane-wise a / b (IEEE division).
  static R sqrt(R a) { return std::sqrt(a); }  ///< Lane-wise square root (IEEE, correctly rounded).
  static R fmadd(R a, R b, R c) { return std::fma(a, b, c); }  ///< Lane-wise a · b + c, rounded once (fused).
};

#ifdef FUNNEL_SIMD_X86
FUNNEL_SIMD_AVX2_BEGIN
/// AVX2 + FMA registers: 8 floats in an __m256, lane masks as __m256i (all ones = active). Same interface as
/// VecScalar; only for code compiled for AVX2 + FMA, run where simd_isa_supported(SimdIsa::avx2).
struct Vec256 {
  using R = __m256;
  using M = __m256i;
  static constexpr std::size_t W = 8;
  static M mask(std::size_t rem) {
    const int n = rem >= 8 ? 8 : static_cast<int>(rem);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static R load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, R x, M m) { _mm256_maskstore_ps(p, m, x); }
  static R loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm256_storeu_ps(p, x); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R zero() { return _mm256_setzero_ps(); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R sqrt(R a) { return _mm256_sqrt_ps(a); }
  static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
};
FUNNEL_SIMD_END

FUNNEL_SIMD_AVX512_BEGIN
/// AVX-512 registers: 16 floats in an __m512, lane masks as __mmask16. Same interface as VecScalar; only for code
/// compiled for AVX-512 F + BW + VL, run where simd_isa_supported(SimdIsa::avx512).
struct Vec512 {
  using R = __m512;
  using M = __mmask16;
  static constexpr std::size_t W = 16;
  static M mask(std::size_t rem) {
    return rem >= 16 ? static_cast<M>(0xffff) : static_cast<M>((1u << rem) - 1u);
  }
  static R load(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, R x, M m) { _mm512_mask_storeu_ps(p, m, x); }
  static R loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, R x) { _mm512_storeu_ps(p, x); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R zero() { return _mm512_setzero_ps(); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  // (the masked form: GCC 12 warns of _mm512_sqrt_ps's undefined pass-through operand)
  static R sqrt(R a) { return _mm512_maskz_sqrt_ps(static_cast<M>(0xffff), a); }
  static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
};
FUNNEL_SIMD_END
#endif

}  // namespace funnel::simdv
