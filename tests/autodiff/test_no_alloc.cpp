// A steady-state training step (same batch size: fill inputs, forward, backward) performs no heap allocation.
//
// This file replaces the global operator new/delete for the whole test_autodiff binary. Allocations are only
// counted while `g_counting` is on (a scoped flag, see CountAllocs), so every other test is unaffected. The first
// few counted allocations record a backtrace, printed when a check fails, so the culprit can be found directly
// (build with -g and pipe through addr2line, or read the symbol names).
#include <catch2/catch.hpp>

#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "autodiff/executor.hpp"
#include "models/zoo.hpp"

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

using namespace funnel;

namespace {

// Counts operator new calls made while it lives.
struct CountAllocs {
  CountAllocs() {
    g_allocs = 0;
    g_counting = true;
  }
  ~CountAllocs() { g_counting = false; }
  long stop() {
    g_counting = false;
    return g_allocs.load();
  }
};

// Prints one call stack per distinct allocation site (innermost frames) among the recorded allocations once (resolve with addr2line -f -C -e <binary>).
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

struct Step {
  ModelConfig cfg;
  Graph g;
  ModelHandle h;
  Executor<float> ex;
  std::vector<LossWeight> losses;
  std::vector<NodeId> predict;
  std::mt19937_64 rng{99};
  static ModelConfig small(const std::string& kind) {
    ModelConfig c;
    c.kind = kind;
    c.num_fields = 4;
    c.vocab = 200;
    c.dim = 4;
    c.hidden = {8, 4};
    return c;
  }
  explicit Step(const ModelConfig& c) : cfg(c), h(build_model(g, cfg)), ex(g) {
    ex.init_params(1);
    for (std::size_t i = 0; i < h.losses.size(); ++i) losses.push_back({h.losses[i], h.loss_weights[i]});
    predict = {h.pctr, h.pcvr, h.pctcvr};
  }
  // One batch: fresh random ids and labels when `fresh`, else the same batch as before.
  void fill(std::int64_t b, bool fresh) {
    if (!fresh) rng.seed(99);
    std::uniform_int_distribution<std::int64_t> id(0, cfg.vocab - 1);
    std::bernoulli_distribution coin(0.5);
    ex.set_batch(b);
    IdBatch& ib = ex.ids(h.ids);
    ib.reset(b, cfg.num_fields);
    for (std::int64_t c = 0; c < b * cfg.num_fields; ++c) {
      ib.push(id(rng));
      ib.end_cell();
    }
    auto& click = ex.input(h.labels[0]);
    auto& conv = ex.input(h.labels[1]);
    for (std::int64_t r = 0; r < b; ++r) {
      const bool clk = coin(rng);
      click.data()[r] = clk ? 1.0f : 0.0f;
      conv.data()[r] = clk && coin(rng) ? 1.0f : 0.0f;
    }
    for (NodeId d : h.dense)
      for (auto& v : ex.input(d)) v = 0.5f;
  }
  void train_step(std::int64_t b, bool fresh) {
    fill(b, fresh);
    ex.forward(h.losses);
    ex.backward(losses);
  }
};

}  // namespace

TEST_CASE("the allocation counter sees allocations (self-test)", "[autodiff][no_alloc]") {
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

TEST_CASE("a steady-state ESMM training step performs zero heap allocations", "[autodiff][no_alloc]") {
  void* prime[2];
  backtrace(prime, 2);  // load the unwinder before counting
  Step s(Step::small("esmm"));
  const std::int64_t B = 16;

  SECTION("the same batch every step") {
    s.train_step(B, false);
    s.train_step(B, false);
    CountAllocs count;
    for (int i = 0; i < 3; ++i) s.train_step(B, false);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("a fresh random batch every step (different rows touched)") {
    s.train_step(B, true);
    s.train_step(B, true);
    CountAllocs count;
    for (int i = 0; i < 5; ++i) s.train_step(B, true);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("a batch touching more distinct embedding rows than any batch before") {
    // Warm up on batches whose ids are all the same row, then a batch of all-distinct ids: the number of ids per
    // batch is unchanged (B×F single-valued cells), so this is still a steady-state step.
    auto same_row_batch = [&] {
      s.fill(B, true);
      IdBatch& ib = s.ex.ids(s.h.ids);
      for (auto& id : ib.ids) id = 3;
      s.ex.forward(s.h.losses);
      s.ex.backward(s.losses);
    };
    same_row_batch();
    same_row_batch();
    s.fill(B, true);
    IdBatch& ib = s.ex.ids(s.h.ids);
    for (std::size_t k = 0; k < ib.ids.size(); ++k) ib.ids[k] = static_cast<std::int64_t>(k);
    CountAllocs count;
    s.ex.forward(s.h.losses);
    s.ex.backward(s.losses);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
    CHECK(s.ex.sparse_grad(s.g.at("embedding/table")).size() == static_cast<std::size_t>(B * s.cfg.num_fields));
  }
  SECTION("full forward and prediction passes") {
    s.train_step(B, true);
    s.train_step(B, true);
    s.ex.forward();
    s.ex.forward(s.predict);
    CountAllocs count;
    s.fill(B, true);
    s.ex.forward();
    s.ex.backward(s.losses);
    s.ex.forward(s.predict);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("backward from a single loss by id") {
    s.train_step(B, false);
    s.ex.backward(s.h.losses[0]);
    s.ex.backward(s.h.losses[0]);
    CountAllocs count;
    s.ex.backward(s.h.losses[0]);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
}

TEST_CASE("steady-state steps of the other zoo models do not allocate", "[autodiff][no_alloc]") {
  void* prime[2];
  backtrace(prime, 2);
  for (const char* kind : {"base", "esmm-ns", "division"}) {
    INFO(kind);
    ModelConfig c = Step::small(kind);
    c.num_dense = 2;
    Step s(c);
    s.train_step(12, true);
    s.train_step(12, true);
    CountAllocs count;
    for (int i = 0; i < 3; ++i) s.train_step(12, true);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
}
