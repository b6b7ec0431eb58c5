#pragma once
/// @file
/// The instruction set of funnel's own SIMD kernels (embedding pooling and gradient scatter, the optimizers' row
/// updates), chosen once per process at run time. The build's baseline (CMake FUNNEL_ARCH, x86-64-v3 by default:
/// AVX2 + FMA) is what every file is compiled for; the kernels also carry an AVX-512 variant, compiled for it alone,
/// and a portable one, and dispatch to the best the CPU runs:
///
///   avx512   AVX-512 F + BW + VL (and the OS saving zmm state): 16 floats a register, masked row tails
///   avx2     AVX2 + FMA: 8 floats a register
///   generic  plain C++ loops (whatever the compiler makes of them for the baseline)
///
/// FUNNEL_ISA=avx512|avx2|generic in the environment forces one (read on first use; an unknown name, or one the CPU
/// lacks, throws std::invalid_argument naming FUNNEL_ISA). All three give the same bits: each variant does the same
/// float operations in the same order per element (explicit fused multiply-adds, IEEE sqrt and division), only
/// more elements at a time.
#include <optional>
#include <string>
#include <string_view>

namespace funnel {

/// An instruction set funnel's SIMD kernels have a variant for (see the file comment for what each needs).
enum class SimdIsa { generic, avx2, avx512 };

/// The ISA the kernels use in this process (FUNNEL_ISA, else the best the CPU supports). Cached after the first call.
/// Throws std::invalid_argument (on every call) when FUNNEL_ISA names an unknown ISA or one this CPU lacks.
/// Thread-safe.
SimdIsa simd_isa();
/// Whether this CPU (and OS) can run kernels for `isa`; generic always. Thread-safe.
bool simd_isa_supported(SimdIsa isa);
/// The best ISA this CPU supports (avx512, else avx2, else generic), ignoring FUNNEL_ISA. Thread-safe.
SimdIsa simd_isa_best();
/// The ISA's name as FUNNEL_ISA spells it: "generic", "avx2" or "avx512" (a static string).
const char* simd_isa_name(SimdIsa isa);
/// The ISA named `s` (exactly "avx512", "avx2" or "generic"); std::nullopt for any other text.
std::optional<SimdIsa> parse_simd_isa(std::string_view s);
/// One line for reports: the ISA in use, why, and the build target, e.g.
/// "avx512 (best this CPU runs; build target x86-64-v3)". Throws as simd_isa() does.
std::string simd_isa_description();
/// The compiler's target for the files of this build (e.g. "x86-64-v3" or "native"), from CMake.
const char* simd_build_arch();

}  // namespace funnel
