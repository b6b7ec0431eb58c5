#include "core/simd.hpp"

#include <cstdlib>
#include <stdexcept>

#ifndef FUNNEL_BUILD_ARCH
#define FUNNEL_BUILD_ARCH "compiler default"
#endif

namespace funnel {
namespace {

SimdIsa initial_isa() {
  const char* env = std::getenv("FUNNEL_ISA");
  if (env && *env) {
    const auto isa = parse_simd_isa(env);
    if (!isa)
      throw std::invalid_argument(std::string("FUNNEL_ISA: expected avx512, avx2 or generic, got '") + env + "'");
    if (!simd_isa_supported(*isa))
      throw std::invalid_argument(std::string("FUNNEL_ISA=") + env + ": this CPU does not support it (best: " +
                                  simd_isa_name(simd_isa_best()) + ")");
    return *isa;
  }
  return simd_isa_best();
}

}  // namespace

bool simd_isa_supported(SimdIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();  // may run before the library's constructors
  switch (isa) {
    case SimdIsa::generic:
      return true;
    case SimdIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SimdIsa::avx512:
      // libgcc's check includes the OS enabling the zmm and mask registers (XCR0).
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == SimdIsa::generic;
#endif
}

SimdIsa simd_isa_best() {
  if (simd_isa_supported(SimdIsa::avx512)) return SimdIsa::avx512;
  if (simd_isa_supported(SimdIsa::avx2)) return SimdIsa::avx2;
  return SimdIsa::generic;
}

SimdIsa simd_isa() {
  static const SimdIsa isa = initial_isa();
  return isa;
}

const char* simd_isa_name(SimdIsa isa) {
  switch (isa) {
    case SimdIsa::generic:
      return "generic";
    case SimdIsa::avx2:
      return "avx2";
    case SimdIsa::avx512:
      return "avx512";
  }
  return "?";
}

std::optional<SimdIsa> parse_simd_isa(std::string_view s) {
  if (s == "avx512") return SimdIsa::avx512;
  if (s == "avx2") return SimdIsa::avx2;
  if (s == "generic") return SimdIsa::generic;
  return std::nullopt;
}

std::string simd_isa_description() {
  const SimdIsa isa = simd_isa();
  const char* env = std::getenv("FUNNEL_ISA");
  std::string why = env && *env ? std::string("FUNNEL_ISA=") + env : std::string("best this CPU runs");
  return std::string(simd_isa_name(isa)) + " (" + why + "; build target " + simd_build_arch() + ")";
}

const char* simd_build_arch() { return FUNNEL_BUILD_ARCH; }

}  // namespace funnel
