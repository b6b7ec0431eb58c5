// The run-time choice of the SIMD kernels' instruction set (core/simd.hpp).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "core/simd.hpp"

using namespace funnel;

TEST_CASE("simd: ISA names parse, generic is always supported, the choice is the best or FUNNEL_ISA's", "[core][simd]") {
  for (SimdIsa isa : {SimdIsa::generic, SimdIsa::avx2, SimdIsa::avx512}) {
    const auto back = parse_simd_isa(simd_isa_name(isa));
    REQUIRE(back);
    CHECK(*back == isa);
  }
  CHECK_FALSE(parse_simd_isa("sse2"));
  CHECK_FALSE(parse_simd_isa(""));
  CHECK(simd_isa_supported(SimdIsa::generic));
  // avx512 implies avx2 (+FMA) on every x86 CPU funnel knows.
  if (simd_isa_supported(SimdIsa::avx512)) CHECK(simd_isa_supported(SimdIsa::avx2));
  const char* env = std::getenv("FUNNEL_ISA");
  if (env && *env) CHECK(std::string(simd_isa_name(simd_isa())) == env);
  else CHECK(simd_isa() == simd_isa_best());
  CHECK(simd_isa_supported(simd_isa()));
  const std::string d = simd_isa_description();
  CHECK(d.rfind(simd_isa_name(simd_isa()), 0) == 0);
  CHECK(d.find(simd_build_arch()) != std::string::npos);
}
