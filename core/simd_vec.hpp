#pragma once
// Register types for funnel's SIMD kernels (see core/simd.hpp), one struct per instruction set with the same
// static interface, so a kernel is written once over `V` and compiled once per ISA:
//
//   V::W               floats per register          V::R, V::M      register and lane-mask types
//   V::mask(rem)       the first min(rem, W) lanes   V::load(p, m)   masked load (masked-off lanes read nothing)
//   V::store(p, x, m)  masked store                  V::loadu/storeu all W lanes
//   V::set1, zero, add, sub, mul, div, sqrt, fmadd(a, b, c) = a·b + c rounded once
//
// Vec512 and Vec256 are compiled for AVX-512 (F, BW, VL) and AVX2 + FMA alone (GCC target pragmas), whatever the
// build's baseline: use them only from code compiled for the same target (a kernel file includes its body once per
// ISA inside `#pragma GCC target` regions, see ops/embedding_kernels.cpp) and call that code only where
// simd_isa_supported() says so. VecScalar is one float per "register" and runs anywhere.
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

struct VecScalar {
  using R = float;
  using M = bool;
  static constexpr std::size_t W = 1;
  static M mask(std::size_t rem) { return rem > 0; }
  static R load(const float* p, M m) { return m ? *p : 0.0f; }
  static void store(float* p, R x, M m) {
    if (m) *p = x;
  }
  static R loadu(const float* p) { return *p; }
  static void storeu(float* p, R x) { *p = x; }
  static R set1(float x) { return x; }
  static R zero() { return 0.0f; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R sqrt(R a) { return std::sqrt(a); }
  static R fmadd(R a, R b, R c) { return std::fma(a, b, c); }
};

#ifdef FUNNEL_SIMD_X86
FUNNEL_SIMD_AVX2_BEGIN
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
