// Replaced global operator new/delete that count allocations while funnel::test::CountAllocs is alive; see
// alloc_counter.hpp. Linked only into the test binaries that measure allocations.
#include "support/alloc_counter.hpp"

#include <catch2/catch.hpp>

#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

namespace {

std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
constexpr int kTraces = 64;
constexpr int kDepth = 24;
constexpr int kSite = 5;  // frames that identify an allocation site when printing
void* g_trace[kTraces][kDepth];
int g_trace_len[kTraces];

void* counted_alloc(std::size_t n, std::size_t align) {
  if (g_counting.load(std::memory_order_relaxed)) {
    long k = g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (k < kTraces) {
      g_counting.store(false);  // backtrace() itself must not be counted
      g_trace_len[k] = backtrace(g_trace[k], kDepth);
      g_counting.store(true);
    }
  }
  if (n == 0) n = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) {
    p = std::malloc(n);
  } else if (posix_memalign(&p, align, n) != 0) {
    p = nullptr;
  }
  return p;
}

void* alloc_or_throw(std::size_t n, std::size_t align) {
  void* p = counted_alloc(n, align);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return alloc_or_throw(n, 0); }
void* operator new[](std::size_t n) { return alloc_or_throw(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return alloc_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return alloc_or_throw(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace funnel::test {

void start_counting() {
  g_allocs = 0;
  g_counting = true;
}

long stop_counting() {
  g_counting = false;
  return g_allocs.load();
}

void prime_backtrace() {
  void* frames[2];
  backtrace(frames, 2);
}

void print_traces(long n) {
  const int recorded = static_cast<int>(n < kTraces ? n : kTraces);
  for (int k = 0; k < recorded; ++k) {
    bool seen = false;
    for (int j = 0; j < k && !seen; ++j)
      seen = std::equal(g_trace[j], g_trace[j] + std::min({g_trace_len[j], g_trace_len[k], kSite}), g_trace[k]);
    if (seen) continue;
    std::fprintf(stderr, "---- allocation %d of %ld (first from this site):\n", k + 1, n);
    backtrace_symbols_fd(g_trace[k], g_trace_len[k], STDERR_FILENO);
  }
}

}  // namespace funnel::test

// Registered in every binary this file is linked into, so each one checks its own replaced operator new.
TEST_CASE("the allocation counter sees allocations (self-test)", "[no_alloc]") {
  using funnel::test::CountAllocs;
  long n;
  {
    CountAllocs count;
    static std::vector<int>* volatile sink = nullptr;  // volatile: the new/delete pair cannot be elided
    sink = new std::vector<int>(100);
    delete sink;
    n = count.stop();
  }
  CHECK(n == 2);
  CountAllocs count;
  n = count.stop();
  CHECK(n == 0);
}
