#pragma once
/// @file
/// Which library runs the float path's gemms: OpenBLAS (cblas_sgemm) or oneDNN (dnnl_sgemm, its JIT gemm).
/// The float64 checking path always uses OpenBLAS's dgemm (ops/blas.hpp).
///
///   funnel::set_gemm_backend(funnel::GemmBackend::openblas);   // or FUNNEL_GEMM=openblas|onednn in the environment
///
/// oneDNN is the default when the build found it (CMake option FUNNEL_ONEDNN). Both run one thread per call:
/// funnel's own pool (core/parallel.hpp) cuts a gemm into row blocks, one call per block.
///
/// Why dnnl_sgemm and not cached oneDNN matmul primitives: on oneDNN 2.6.3 every primitive execute heap-allocates
/// (the execution context's argument map: 4 operator-new calls per matmul, 7–9 with bias/ReLU post-ops, measured),
/// which breaks the zero-allocation rule of a steady step. dnnl_sgemm makes none (its packing buffer comes from
/// malloc inside the library, once per call) and is the same gemm:jit kernel the matmul primitive selects on an
/// AVX2 CPU. Transposed operands are passed as flags (no copies).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace funnel {

/// The library that runs float gemms.
enum class GemmBackend { openblas, onednn };

/// True when this build links oneDNN.
bool onednn_available();
/// The backend in use. On first use it is taken from FUNNEL_GEMM when set (an unknown value or onednn in a build
/// without it throws std::invalid_argument naming FUNNEL_GEMM), else oneDNN when available, else OpenBLAS.
GemmBackend gemm_backend();
/// Throws std::invalid_argument when `b` is onednn and the build has no oneDNN. Not thread-safe: call it between
/// steps, from the thread that runs them (like set_num_threads).
void set_gemm_backend(GemmBackend b);
const char* gemm_backend_name(GemmBackend b);  ///< "openblas" or "onednn"
/// The backend named `s` ("openblas" or "onednn"), or nothing for any other text.
std::optional<GemmBackend> parse_gemm_backend(std::string_view s);

/// The precision of the float path's gemm inputs. fp32 (default): as given. bf16 (mixed precision): both operands
/// are rounded to bfloat16 (round to nearest, ties to even; NaN and Inf kept) and multiplied with fp32 accumulation —
/// the arithmetic of a bf16 × bf16 → fp32 gemm, since the product of two bf16 numbers is exact in fp32. Everything
/// else (parameters, optimizer state, the sums in C, the other ops, losses) stays fp32, and the float64 checking path
/// is untouched. Two implementations (Bf16Impl below): native, oneDNN's bf16 × bf16 → fp32 gemm on bf16 copies of the
/// operands (per-thread scratch, grown once, then reused), used when the backend is oneDNN and the CPU has
/// AVX512_BF16; emulated everywhere else, rounding into per-thread fp32 scratch and running the fp32 gemm (the
/// numbers of bf16 training on any CPU, not its speed).
enum class GemmPrecision { fp32, bf16 };
/// The precision in use (fp32 until set_gemm_precision changes it).
GemmPrecision gemm_precision();
/// Not thread-safe: call it between steps, from the thread that runs them (like set_num_threads).
void set_gemm_precision(GemmPrecision p);
const char* gemm_precision_name(GemmPrecision p);  ///< "fp32" or "bf16"
std::optional<GemmPrecision> parse_gemm_precision(std::string_view s);  ///< "fp32" | "bf16"
/// How bf16 gemms run. native: oneDNN's bf16 gemm (dnnl_gemm_bf16bf16f32, its JIT kernel using AVX512_BF16's
/// dot-product instructions), operands packed to bf16 per call; emulated: rounded fp32 operands, fp32 gemm.
enum class Bf16Impl { emulated, native };
/// True when this build has oneDNN and oneDNN finds AVX512_BF16 (or AMX) on this CPU.
bool bf16_native_available();
/// True where the native bf16 gemm runs on AMX tiles (oneDNN's ISA includes avx512_core_amx): only there is it the
/// default, being slower than the emulation on AVX512_BF16 alone.
bool bf16_native_is_fast();
/// Why native bf16 is unavailable here ("" when it is available), e.g. "this CPU has no AVX512_BF16".
std::string bf16_native_unavailable_reason();
/// The implementation asked for: from FUNNEL_BF16=native|emulated on first use (an unknown value throws
/// std::invalid_argument naming FUNNEL_BF16; native where unavailable throws too), else native where it is fast
/// (bf16_native_is_fast: AMX), emulated elsewhere.
Bf16Impl bf16_impl();
/// Throws std::invalid_argument when `i` is native and bf16_native_available() is false. Not thread-safe (as above).
void set_bf16_impl(Bf16Impl i);
const char* bf16_impl_name(Bf16Impl i);  ///< "emulated" or "native"
/// The implementation named `s` ("native" or "emulated"), or nothing for any other text.
std::optional<Bf16Impl> parse_bf16_impl(std::string_view s);
/// The implementation that the float gemms run now (backend, precision, bf16 implementation and oneDNN's ISA),
/// e.g. "onednn dnnl_gemm_bf16bf16f32 (native bf16, gemm:jit, isa avx512_core_bf16)" — for metrics and benchmarks.
std::string gemm_implementation();
/// This CPU's flags that decide the gemm paths, from cpuid, e.g. "avx2 fma avx512f avx512bw avx512_bf16".
std::string cpu_gemm_flags();

/// x rounded to the nearest bfloat16 (ties to even), as a float whose low 16 bits are zero; NaN stays NaN.
float round_to_bf16(float x);

/// Which operands of a float gemm are already bf16-rounded (a weight matrix rounded once per step, see
/// round_weights_bf16): under bf16 only the others are rounded by the call. Ignored in fp32.
struct Bf16Ready {
  bool a = false;  ///< A holds bf16-rounded values
  bool b = false;  ///< B holds bf16-rounded values
};

/// C = alpha·op(A)·op(B) + beta·C, row-major, on the calling thread only, through the current backend and in the
/// current precision. Under bf16, each operand not marked ready is rounded into per-thread scratch first.
void sgemm_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                      int ldb, float beta, float* c, int ldc, Bf16Ready ready = {});

/// Under bf16, a gemm about to be cut over threads has both operands prepared once, on the calling thread, before
/// the cut: packed to bf16 (native) or rounded to fp32 copies (emulated), in that thread's scratch (grown once, then
/// reused). The chunks then read the prepared copies and need no scratch of their own, which a pool thread would
/// otherwise grow the first time it met a chunk of a new size — possibly in a steady step. Element offsets into the
/// prepared operands are those of the original layout with the leading dimensions below.
struct Bf16Prepared {
  const void* a = nullptr;  ///< std::uint16_t (native) or float (emulated)
  const void* b = nullptr;  ///< the prepared B, same element type as `a`
  /// @{
  /// Row lengths of the prepared A and B.
  int lda = 0, ldb = 0;
  /// @}
  bool native = false;      ///< true: bf16 copies for the native gemm; false: rounded float copies
};
/// False (nothing prepared) in fp32 or for an empty gemm.
bool prepare_bf16_operands(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                           Bf16Ready ready, Bf16Prepared& out);
/// One chunk of a prepared gemm: op(A) starts at element a_off of the prepared A, op(B) at b_off of the prepared B.
void sgemm_prepared_one_thread(bool ta, bool tb, int m, int n, int k, float alpha, const Bf16Prepared& p,
                               std::size_t a_off, std::size_t b_off, float beta, float* c, int ldc);

/// The per-step half of --precision bf16: dst[0..n) = src rounded to bf16 (split over the thread pool when large).
/// The executor calls it once per forward pass for each parameter that an op reads as a gemm operand
/// (Op::gemm_operand) and hands the copy to the op (Ctx::rounded), which passes it to the gemm as Bf16Ready: a
/// weight is then rounded once per step instead of by each of its gemms and each of their thread blocks.
void round_weights_bf16(const float* src, std::size_t n, float* dst);

/// Counters of the bf16 work, for tests and benchmarks (relaxed atomics, one add per call): weight matrices rounded
/// by round_weights_bf16, operand elements rounded inside gemm calls (the per-call part), native bf16 gemm calls.
struct Bf16Counts {
  std::uint64_t weight_conversions = 0;  ///< round_weights_bf16 calls
  std::uint64_t weight_elements = 0;     ///< elements those calls rounded
  std::uint64_t call_elements = 0;       ///< operand elements rounded inside gemm calls
  std::uint64_t native_calls = 0;  ///< gemm calls run by the native bf16 gemm
};
Bf16Counts bf16_counts();  ///< the counters since the process started (safe from any thread)

}  // namespace funnel
