#include "ops/gemm_backend.hpp"

#include <cblas.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/signals.hpp"

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

GemmPrecision g_precision = GemmPrecision::fp32;

std::atomic<std::uint64_t> g_weight_conversions{0}, g_weight_elements{0}, g_call_elements{0};

// The bits of round_to_bf16, branch-free so the copy loops below vectorize.
inline std::uint32_t bf16_bits(std::uint32_t u) {
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const std::uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  return nan ? (u | 0x00400000u) & 0xffff0000u : rounded;  // a NaN stays a (quiet) NaN, never rounds to Inf
}

// The rows × cols block of `src` (leading dimension ld) rounded to bf16 into `dst` (leading dimension cols).
void round_block(const float* src, int rows, int cols, int ld, float* dst) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + static_cast<std::size_t>(r) * static_cast<std::size_t>(ld);
    float* d = dst + static_cast<std::size_t>(r) * static_cast<std::size_t>(cols);
    for (int c = 0; c < cols; ++c) {
      std::uint32_t u;
      std::memcpy(&u, s + c, sizeof u);
      u = bf16_bits(u);
      std::memcpy(d + c, &u, sizeof u);
    }
  }
}

// Per-thread scratch for the rounded operands: grows to the largest gemm seen, then stays (no steady allocation).
float* scratch(std::vector<float>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
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
  // oneDNN's AVX-512 sgemm kernel runs with the stack pointer inside a heap buffer (its packing workspace): a signal
  // handler frame pushed there would overwrite the heap below it. The thread's alternate signal stack, on which
  // funnel's handlers run (core/signals.hpp), keeps every frame of those off that buffer.
  thread_local const bool signal_stack = (ensure_signal_stack(), true);
  (void)signal_stack;
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

GemmPrecision gemm_precision() { return g_precision; }
void set_gemm_precision(GemmPrecision p) { g_precision = p; }
const char* gemm_precision_name(GemmPrecision p) { return p == GemmPrecision::bf16 ? "bf16" : "fp32"; }
std::optional<GemmPrecision> parse_gemm_precision(std::string_view s) {
  if (s == "fp32") return GemmPrecision::fp32;
  if (s == "bf16") return GemmPrecision::bf16;
  return std::nullopt;
}

void round_weights_bf16(const float* src, std::size_t n, float* dst) {
  const auto len = static_cast<std::int64_t>(n);
  parallel_for(len, kElementGrain, [src, dst](std::int64_t b, std::int64_t e) {
    round_block(src + b, 1, static_cast<int>(e - b), 0, dst + b);
  });
  g_weight_conversions.fetch_add(1, std::memory_order_relaxed);
  g_weight_elements.fetch_add(n, std::memory_order_relaxed);
}

Bf16Counts bf16_counts() {
  return {g_weight_conversions.load(std::memory_order_relaxed), g_weight_elements.load(std::memory_order_relaxed),
          g_call_elements.load(std::memory_order_relaxed)};
}

float round_to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = bf16_bits(u);
  float y;
  std::memcpy(&y, &u, sizeof y);
  return y;
}

void sgemm_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc, Bf16Ready ready) {
  if (g_precision == GemmPrecision::bf16 && m > 0 && n > 0 && k > 0 && !(ready.a && ready.b)) {
    // op(A) is m × k: stored as k × m when transposed. op(B) is k × n: stored as n × k when transposed.
    // Rounding is idempotent, so an operand that is already rounded (ready) gives the same bits as rounding it here.
    thread_local std::vector<float> ra, rb;
    std::uint64_t rounded = 0;
    // Rounds a rows × cols operand into `buf` and points the operand at it.
    auto round_operand = [&rounded](const float*& p, int& ld, int rows, int cols, std::vector<float>& buf) {
      const std::size_t count = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
      float* r = scratch(buf, count);
      round_block(p, rows, cols, ld, r);
      p = r;
      ld = cols;
      rounded += count;
    };
    if (!ready.a) round_operand(a, lda, ta ? k : m, ta ? m : k, ra);
    if (!ready.b) round_operand(b, ldb, tb ? n : k, tb ? k : n, rb);
    g_call_elements.fetch_add(rounded, std::memory_order_relaxed);
  }
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
