#pragma once
// Skipping a test case for a reason outside the code under test (a CPU feature the machine lacks, a missing tool):
// Catch2 v2 has no SKIP, so FUNNEL_SKIP reports the reason in a WARN starting with kSkipMarker and returns; CTest
// marks a test whose output matches the marker as skipped (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), so
// it never passes silently. Use FUNNEL_SKIP only in a TEST_CASE's body (it returns from the enclosing function);
// check anything that must hold on such a machine with REQUIRE before it.
#include <catch2/catch.hpp>

namespace funnel::test {
inline constexpr const char* kSkipMarker = "FUNNEL-TEST-SKIPPED:";
}  // namespace funnel::test

#define FUNNEL_SKIP(reason)                                       \
  do {                                                            \
    WARN(::funnel::test::kSkipMarker << " " << reason);           \
    return;                                                       \
  } while (false)
