#include "ops/gemm_f64.hpp"

#include <array>
#include <cstddef>
#include <string>

#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

#include "core/error.hpp"

namespace funnel::blas {

void gemm_f64(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
              double beta, double* c, int ldc) {
  if (m < 0 || n < 0 || k < 0) throw Error("gemm_f64: negative size");
  using Dims = std::array<std::size_t, 2>;
  const auto z = [](int v) { return static_cast<std::size_t>(v); };
  const std::size_t cn = z(m) * z(n);
  if (cn == 0) return;
  if (k == 0) {  // an empty sum: C = beta · C (BLAS would read no A or B, but the adaptors need rows)
    for (std::size_t i = 0; i < cn; ++i) c[i] = beta == 0.0 ? 0.0 : beta * c[i];
    return;
  }
  const Dims as = ta ? Dims{z(k), z(m)} : Dims{z(m), z(k)};
  const Dims bs = tb ? Dims{z(n), z(k)} : Dims{z(k), z(n)};
  if (z(lda) != as[1] || z(ldb) != bs[1] || z(ldc) != z(n))
    throw Error("gemm_f64: leading dimensions " + std::to_string(lda) + ", " + std::to_string(ldb) + ", " +
                std::to_string(ldc) + " are not the row lengths of whole matrices (" + std::to_string(as[1]) + ", " +
                std::to_string(bs[1]) + ", " + std::to_string(n) + ")");
  const auto av = xt::adapt(a, as[0] * as[1], xt::no_ownership(), as);
  const auto bv = xt::adapt(b, bs[0] * bs[1], xt::no_ownership(), bs);
  auto cv = xt::adapt(c, cn, xt::no_ownership(), Dims{z(m), z(n)});
  xt::blas::gemm(av, bv, cv, ta, tb, alpha, beta);
}

}  // namespace funnel::blas
