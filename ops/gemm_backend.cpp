#include "ops/gemm_backend.hpp"

#include <cblas.h>
#include <cpuid.h>

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
// oneDNN's bf16 × bf16 → fp32 gemm: exported by libdnnl (DNNL_API, the same entry point its own gemm-based
// primitives and tests use) but declared only in its internal headers, so declared here. Row-major like dnnl_sgemm;
// the bf16 operands are the high halves of fp32 numbers (uint16_t here, oneDNN's bfloat16_t has the same layout).
extern "C" dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
                                               float alpha, const std::uint16_t* A, dnnl_dim_t lda,
                                               const std::uint16_t* B, dnnl_dim_t ldb, float beta, float* C,
                                               dnnl_dim_t ldc);
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

std::atomic<std::uint64_t> g_weight_conversions{0}, g_weight_elements{0}, g_call_elements{0}, g_native_calls{0};

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

// The rows × cols block of `src` as bf16 bits into `dst` (leading dimension cols): rounded, or, when the block is
// already rounded (its low halves zero), just its high halves.
void pack_bf16(const float* src, int rows, int cols, int ld, bool rounded, std::uint16_t* dst) {
  for (int r = 0; r < rows; ++r) {
    const float* s = src + static_cast<std::size_t>(r) * static_cast<std::size_t>(ld);
    std::uint16_t* d = dst + static_cast<std::size_t>(r) * static_cast<std::size_t>(cols);
    if (rounded) {
      for (int c = 0; c < cols; ++c) {
        std::uint32_t u;
        std::memcpy(&u, s + c, sizeof u);
        d[c] = static_cast<std::uint16_t>(u >> 16);
      }
    } else {
      for (int c = 0; c < cols; ++c) {
        std::uint32_t u;
        std::memcpy(&u, s + c, sizeof u);
        d[c] = static_cast<std::uint16_t>(bf16_bits(u) >> 16);
      }
    }
  }
}

void one_omp_thread() {
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
  thread_local const bool once = (omp_set_num_threads(1), true);
  (void)once;
#endif
}

// The native bf16 gemm: both operands packed to bf16 into per-thread scratch (grown once, then reused), then oneDNN's
// bf16 gemm with fp32 accumulation into C. Returns the operand elements that had to be rounded (not `ready`).
std::uint64_t native_bf16_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                               const float* b, int ldb, float beta, float* c, int ldc, Bf16Ready ready) {
  one_omp_thread();
  thread_local std::vector<std::uint16_t> a16, b16;
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const std::size_t na = static_cast<std::size_t>(ar) * static_cast<std::size_t>(ac);
  const std::size_t nb = static_cast<std::size_t>(br) * static_cast<std::size_t>(bc);
  if (a16.size() < na) a16.resize(na);
  if (b16.size() < nb) b16.resize(nb);
  pack_bf16(a, ar, ac, lda, ready.a, a16.data());
  pack_bf16(b, br, bc, ldb, ready.b, b16.data());
  const dnnl_status_t st = dnnl_gemm_bf16bf16f32(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a16.data(), ac,
                                                 b16.data(), bc, beta, c, ldc);
  if (st != dnnl_success)
    throw std::runtime_error("dnnl_gemm_bf16bf16f32 failed (status " + std::to_string(static_cast<int>(st)) +
                             ") for m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  g_native_calls.fetch_add(1, std::memory_order_relaxed);
  return (ready.a ? 0 : na) + (ready.b ? 0 : nb);
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "other";
  }
}

bool isa_has_bf16(dnnl_cpu_isa_t isa) {
  const auto need = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_bf16);
  return (static_cast<unsigned>(isa) & need) == need;
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
          g_call_elements.load(std::memory_order_relaxed), g_native_calls.load(std::memory_order_relaxed)};
}

std::string bf16_native_unavailable_reason() {
#ifdef FUNNEL_HAVE_ONEDNN
  static const std::string reason = [] {
    const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa_has_bf16(isa) ? std::string()
                             : std::string("this CPU has no AVX512_BF16 (oneDNN's ISA here: ") + isa_name(isa) + ")";
  }();
  return reason;
#else
  return "this build has no oneDNN (configure with FUNNEL_ONEDNN=ON and libdnnl-dev installed)";
#endif
}

bool bf16_native_available() { return bf16_native_unavailable_reason().empty(); }

bool bf16_native_is_fast() {
#ifdef FUNNEL_HAVE_ONEDNN
  const auto amx = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_amx);
  return (static_cast<unsigned>(dnnl_get_effective_cpu_isa()) & amx) == amx;
#else
  return false;
#endif
}

const char* bf16_impl_name(Bf16Impl i) { return i == Bf16Impl::native ? "native" : "emulated"; }
std::optional<Bf16Impl> parse_bf16_impl(std::string_view s) {
  if (s == "native") return Bf16Impl::native;
  if (s == "emulated") return Bf16Impl::emulated;
  return std::nullopt;
}

namespace {
Bf16Impl initial_bf16_impl() {
  const char* env = std::getenv("FUNNEL_BF16");
  if (env && *env) {
    const auto i = parse_bf16_impl(env);
    if (!i) throw std::invalid_argument(std::string("FUNNEL_BF16: expected native or emulated, got '") + env + "'");
    if (*i == Bf16Impl::native && !bf16_native_available())
      throw std::invalid_argument("FUNNEL_BF16=native: " + bf16_native_unavailable_reason());
    return *i;
  }
  // Native by default only where oneDNN runs its bf16 gemm on AMX tiles. On AVX512_BF16 without AMX, oneDNN 2.6's
  // bf16 gemm measured at about half its fp32 rate (docs/benchmarks.md), slower than rounding the inputs and running
  // the fp32 gemm, so the emulation stays the default there; FUNNEL_BF16=native asks for it anyway.
  return bf16_native_available() && bf16_native_is_fast() ? Bf16Impl::native : Bf16Impl::emulated;
}
Bf16Impl& current_bf16_impl() {
  static Bf16Impl i = initial_bf16_impl();
  return i;
}
// Native bf16 runs only through the oneDNN backend (it is oneDNN's gemm).
bool native_now() {
  return g_precision == GemmPrecision::bf16 && current_bf16_impl() == Bf16Impl::native &&
         current() == GemmBackend::onednn;
}
}  // namespace

Bf16Impl bf16_impl() { return current_bf16_impl(); }
void set_bf16_impl(Bf16Impl i) {
  if (i == Bf16Impl::native && !bf16_native_available())
    throw std::invalid_argument(std::string("bf16 implementation native: ") + bf16_native_unavailable_reason());
  current_bf16_impl() = i;
}

std::string gemm_implementation() {
  std::string isa;
#ifdef FUNNEL_HAVE_ONEDNN
  isa = isa_name(dnnl_get_effective_cpu_isa());
#endif
  const bool onednn = current() == GemmBackend::onednn;
  const std::string fp32 = onednn ? "onednn dnnl_sgemm (gemm:jit, isa " + isa + ")" : "openblas cblas_sgemm";
  if (g_precision == GemmPrecision::fp32) return fp32;
  if (native_now()) return "onednn dnnl_gemm_bf16bf16f32 (native bf16, gemm:jit, isa " + isa + ")";
  std::string why = !onednn                                          ? "backend openblas"
                    : current_bf16_impl() == Bf16Impl::emulated && bf16_native_available()
                        ? (bf16_native_is_fast() ? "FUNNEL_BF16=emulated"
                                                 : "AVX512_BF16 without AMX: oneDNN's bf16 gemm is slower here; "
                                                   "FUNNEL_BF16=native to use it")
                                                                                         : bf16_native_unavailable_reason();
  return "emulated bf16 (" + why + "): inputs rounded to bf16, " + fp32;
}

std::string cpu_gemm_flags() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  const unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 1 && __get_cpuid(1, &a, &b, &c, &d)) add(c & (1u << 12), "fma");
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    add(b & (1u << 5), "avx2");
    add(b & (1u << 16), "avx512f");
    add(b & (1u << 30), "avx512bw");
    add(b & (1u << 31), "avx512vl");
    add(c & (1u << 11), "avx512_vnni");
    add(d & (1u << 23), "avx512_fp16");
    add(d & (1u << 22), "amx_bf16");
    add(d & (1u << 24), "amx_tile");
    const unsigned sub = a;
    if (sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      add(a & (1u << 5), "avx512_bf16");
    }
  }
  return out;
}

float round_to_bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = bf16_bits(u);
  float y;
  std::memcpy(&y, &u, sizeof y);
  return y;
}

bool prepare_bf16_operands(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                           Bf16Ready ready, Bf16Prepared& out) {
  if (g_precision != GemmPrecision::bf16 || m <= 0 || n <= 0 || k <= 0) return false;
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const std::size_t na = static_cast<std::size_t>(ar) * static_cast<std::size_t>(ac);
  const std::size_t nb = static_cast<std::size_t>(br) * static_cast<std::size_t>(bc);
  out.lda = ac;
  out.ldb = bc;
#ifdef FUNNEL_HAVE_ONEDNN
  if (native_now()) {
    thread_local std::vector<std::uint16_t> pa, pb;
    if (pa.size() < na) pa.resize(na);
    if (pb.size() < nb) pb.resize(nb);
    pack_bf16(a, ar, ac, lda, ready.a, pa.data());
    pack_bf16(b, br, bc, ldb, ready.b, pb.data());
    out.a = pa.data();
    out.b = pb.data();
    out.native = true;
    g_call_elements.fetch_add((ready.a ? 0 : na) + (ready.b ? 0 : nb), std::memory_order_relaxed);
    return true;
  }
#endif
  thread_local std::vector<float> ra, rb;
  round_block(a, ar, ac, lda, scratch(ra, na));
  round_block(b, br, bc, ldb, scratch(rb, nb));
  out.a = ra.data();
  out.b = rb.data();
  out.native = false;
  g_call_elements.fetch_add((ready.a ? 0 : na) + (ready.b ? 0 : nb), std::memory_order_relaxed);
  return true;
}

void sgemm_prepared_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const Bf16Prepared& p,
                               std::size_t a_off, std::size_t b_off, float beta, float* c, int ldc) {
#ifdef FUNNEL_HAVE_ONEDNN
  if (p.native) {
    one_omp_thread();
    const auto* a = static_cast<const std::uint16_t*>(p.a) + a_off;
    const auto* b = static_cast<const std::uint16_t*>(p.b) + b_off;
    const dnnl_status_t st =
        dnnl_gemm_bf16bf16f32(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, p.lda, b, p.ldb, beta, c, ldc);
    if (st != dnnl_success)
      throw std::runtime_error("dnnl_gemm_bf16bf16f32 failed (status " + std::to_string(static_cast<int>(st)) +
                               ") for m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
    g_native_calls.fetch_add(1, std::memory_order_relaxed);
    return;
  }
#endif
  sgemm_one_thread(ta, tb, m, n, k, alpha, static_cast<const float*>(p.a) + a_off, p.lda,
                   static_cast<const float*>(p.b) + b_off, p.ldb, beta, c, ldc, Bf16Ready{.a = true, .b = true});
}

void sgemm_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc, Bf16Ready ready) {
#ifdef FUNNEL_HAVE_ONEDNN
  if (native_now() && m > 0 && n > 0) {
    if (k == 0) {  // no products: C = beta·C (oneDNN's gemm is not asked about empty sums)
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
          float& x = c[static_cast<std::size_t>(i) * static_cast<std::size_t>(ldc) + static_cast<std::size_t>(j)];
          x = beta == 0.0f ? 0.0f : beta * x;
        }
      return;
    }
    g_call_elements.fetch_add(native_bf16_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ready),
                              std::memory_order_relaxed);
    return;
  }
#endif
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
