#pragma once
// Counting heap allocations in tests. alloc_counter.cpp replaces the global operator new/delete for the whole test
// binary it is linked into (only test_autodiff and test_train: the others keep the normal operators, so ASan's
// new/delete mismatch checks stay on there). Allocations are only counted while a CountAllocs lives, so every
// other test in the binary is unaffected. The first few counted allocations record a backtrace, printed by
// print_traces when a check fails, so the culprit can be found directly (read the symbol names, or resolve the
// addresses with addr2line -f -C -e <binary>).
namespace funnel::test {

void start_counting();  // resets the count to 0 and starts counting
long stop_counting();   // stops counting; returns the number of operator new calls since start_counting()

// Counts operator new calls made while it lives (stop() ends counting early and returns the count).
struct CountAllocs {
  CountAllocs() { start_counting(); }
  ~CountAllocs() { stop_counting(); }
  CountAllocs(const CountAllocs&) = delete;
  CountAllocs& operator=(const CountAllocs&) = delete;
  long stop() { return stop_counting(); }
};

// Loads the unwinder (its first use allocates), so call this before counting.
void prime_backtrace();

// Prints to stderr one call stack per distinct allocation site (innermost frames) among the first recorded
// allocations of the last count `n`.
void print_traces(long n);

}  // namespace funnel::test
