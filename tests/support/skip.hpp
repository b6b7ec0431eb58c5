#pragma once
// A test that cannot run on this machine (a CPU feature it lacks) says why in a WARN starting with this marker and
// returns; CTest reports it as skipped (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), never as passed. Catch2
// v2 has no SKIP of its own. Check anything that must hold on such a machine with REQUIRE before the WARN.
namespace funnel::test {
inline constexpr const char* kSkipMarker = "FUNNEL-TEST-SKIPPED:";
}  // namespace funnel::test
