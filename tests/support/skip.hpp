#pragma once
// Skipping a test case for a reason outside the code under test (a missing tool, a CPU feature): Catch2 v2 has
// no SKIP, so FUNNEL_SKIP reports the reason as a warning starting with "SKIPPED:" and returns; CTest marks a
// test whose output matches that as skipped (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), so it never
// passes silently. Use it only in a TEST_CASE's body (it returns from the enclosing function).
#include <catch2/catch.hpp>

#define FUNNEL_SKIP(reason)          \
  do {                               \
    WARN("SKIPPED: " << reason);     \
    return;                          \
  } while (false)
