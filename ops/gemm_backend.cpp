#include "ops/gemm_backend.hpp"

#include <cblas.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef FUNNEL_HAVE_ONEDNN
#include <dnnl.h>
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif
#endif

namespace funnel {
namespace {

GemmBackend initial_backend() {
  const char* env = std::getenv("FUNNEL_GEMM");
  if (env && *env) {
    const auto b = parse_gemm_backend(env);
    if (!b) throw std::invalid_argument(std::string("FUNNEL_GEMM: expected openblas or onednn, got '") + env + "'");
    if (*b == GemmBackend::onednn && !onednn_available())
      throw std::invalid_argument("FUNNEL_GEMM=onednn: this build has no oneDNN (configure with FUNNEL_ONEDNN=ON "
                                  "and libdnnl-dev installed)");
    return *b;
  }
  return onednn_available() ? GemmBackend::onednn : GemmBackend::openblas;
}

GemmBackend& current() {
  static GemmBackend b = initial_backend();
  return b;
}

#ifdef FUNNEL_HAVE_ONEDNN
void onednn_sgemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                  float beta, float* c, int ldc) {
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
  // Debian's oneDNN runs on OpenMP: without this, each call from a pool thread would start its own team of
  // omp_get_max_threads() threads on top of funnel's pool. OpenMP's thread count is per calling thread.
  thread_local const bool one_omp_thread = (omp_set_num_threads(1), true);
  (void)one_omp_thread;
#endif
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("dnnl_sgemm failed (status " + std::to_string(static_cast<int>(st)) + ") for m=" +
                             std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
}
#endif

}  // namespace

bool onednn_available() {
#ifdef FUNNEL_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

GemmBackend gemm_backend() { return current(); }

void set_gemm_backend(GemmBackend b) {
  if (b == GemmBackend::onednn && !onednn_available())
    throw std::invalid_argument("gemm backend onednn: this build has no oneDNN");
  current() = b;
}

const char* gemm_backend_name(GemmBackend b) { return b == GemmBackend::onednn ? "onednn" : "openblas"; }

std::optional<GemmBackend> parse_gemm_backend(std::string_view s) {
  if (s == "openblas") return GemmBackend::openblas;
  if (s == "onednn") return GemmBackend::onednn;
  return std::nullopt;
}

void sgemm_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc) {
#ifdef FUNNEL_HAVE_ONEDNN
  if (current() == GemmBackend::onednn) {
    onednn_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

}  // namespace funnel
