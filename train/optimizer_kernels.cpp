#include "train/optimizer_kernels.hpp"

#include "core/simd_vec.hpp"

namespace funnel {
namespace opt_generic {
using V = simdv::VecScalar;
#include "train/optimizer_kernels_body.inc"
}  // namespace opt_generic

#ifdef FUNNEL_SIMD_X86
FUNNEL_SIMD_AVX2_BEGIN
namespace opt_avx2 {
using V = simdv::Vec256;
#include "train/optimizer_kernels_body.inc"
}  // namespace opt_avx2
FUNNEL_SIMD_END

FUNNEL_SIMD_AVX512_BEGIN
namespace opt_avx512 {
using V = simdv::Vec512;
#include "train/optimizer_kernels_body.inc"
}  // namespace opt_avx512
FUNNEL_SIMD_END
#endif

const OptimizerKernels& optimizer_kernels(SimdIsa isa) {
  static const OptimizerKernels generic{&opt_generic::adam, &opt_generic::adam_rows, &opt_generic::adagrad,
                                        &opt_generic::adagrad_rows};
#ifdef FUNNEL_SIMD_X86
  static const OptimizerKernels avx2{&opt_avx2::adam, &opt_avx2::adam_rows, &opt_avx2::adagrad,
                                     &opt_avx2::adagrad_rows};
  static const OptimizerKernels avx512{&opt_avx512::adam, &opt_avx512::adam_rows, &opt_avx512::adagrad,
                                       &opt_avx512::adagrad_rows};
  if (isa == SimdIsa::avx512) return avx512;
  if (isa == SimdIsa::avx2) return avx2;
#endif
  (void)isa;
  return generic;
}

const OptimizerKernels& optimizer_kernels() {
  static const OptimizerKernels& k = optimizer_kernels(simd_isa());
  return k;
}

}  // namespace funnel
