#include "ops/embedding_kernels.hpp"

#include <cstring>

#include "core/simd_vec.hpp"

namespace funnel {
namespace emb_generic {
using V = simdv::VecScalar;
#include "ops/embedding_kernels_body.inc"
}  // namespace emb_generic

#ifdef FUNNEL_SIMD_X86
FUNNEL_SIMD_AVX2_BEGIN
namespace emb_avx2 {
using V = simdv::Vec256;
#include "ops/embedding_kernels_body.inc"
}  // namespace emb_avx2
FUNNEL_SIMD_END

FUNNEL_SIMD_AVX512_BEGIN
namespace emb_avx512 {
using V = simdv::Vec512;
#include "ops/embedding_kernels_body.inc"
}  // namespace emb_avx512
FUNNEL_SIMD_END
#endif

const EmbeddingKernels& embedding_kernels(SimdIsa isa) {
  static const EmbeddingKernels generic{&emb_generic::pool, &emb_generic::scatter, &emb_generic::rows};
#ifdef FUNNEL_SIMD_X86
  static const EmbeddingKernels avx2{&emb_avx2::pool, &emb_avx2::scatter, &emb_avx2::rows};
  static const EmbeddingKernels avx512{&emb_avx512::pool, &emb_avx512::scatter, &emb_avx512::rows};
  if (isa == SimdIsa::avx512) return avx512;
  if (isa == SimdIsa::avx2) return avx2;
#endif
  (void)isa;
  return generic;
}

const EmbeddingKernels& embedding_kernels() {
  static const EmbeddingKernels& k = embedding_kernels(simd_isa());
  return k;
}

}  // namespace funnel
