#pragma once
/// @file
/// Threads for data-parallel loops: one process-wide pool used by ops (gemm, embedding, elementwise), the executor
/// and the optimizers.
///
///   funnel::set_num_threads(2);   // the calling thread plus one worker; BLAS itself stays single-threaded
///   funnel::parallel_for(n, 4096, [&](std::int64_t b, std::int64_t e) { for (auto i = b; i < e; ++i) y[i] = ...; });
///
/// parallel_for splits [0, n) into contiguous chunks whose bounds depend only on n, the grain and the thread count,
/// and runs chunk 0 on the calling thread. A loop whose chunks write disjoint outputs therefore gives the same bits
/// for every thread count, and every loop is deterministic for a given count. It blocks until all chunks are done,
/// does not allocate, and rethrows the first exception (in chunk order) a chunk threw. Calls made from inside a chunk,
/// or from a thread other than the one that last called set_num_threads, run serially.
///
/// Why one pool for gemm too: BLAS's own threads and a second pool would compete for the same cores between calls;
/// splitting each gemm over this pool (ops/blas.hpp) keeps one set of threads busy.
#include <cstdint>
#include <vector>

namespace funnel {

/// Threads for parallel_for (n ≥ 1, including the caller). Also sets BLAS to one thread. Not thread-safe: call it
/// before running graphs, from the thread that runs them. The default is 1.
void set_num_threads(int n);
/// The thread count set by set_num_threads (1 until then).
int num_threads();

/// Grain for cheap elementwise loops (a few ns per element): below about this many elements per thread, waking a
/// worker costs more than it saves.
inline constexpr std::int64_t kElementGrain = 16384;

/// Where the pool's threads spent their time while thread timing was on (for profiles such as `funnel train
/// --profile`). Only loops that ran on more than one thread count; a loop run on the calling thread alone (one
/// chunk) is serial code like any other. Off by default: when on, each such loop and each chunk reads the clock twice.
struct ThreadTimes {
  std::int64_t loops = 0;      ///< parallel loops that ran on more than one thread
  double loop_seconds = 0.0;   ///< their wall time, on the calling thread (from publishing the loop to its end)
  /// The part of loop_seconds in which the calling thread, out of chunks to claim, waited for the others to finish
  /// theirs: the loops' imbalance.
  double wait_seconds = 0.0;
  /// Per thread (0: the calling thread, then the workers): seconds spent running chunks of those loops. A worker is
  /// idle for the rest of the time; the calling thread also runs everything outside the loops.
  std::vector<double> busy_seconds;
};
/// Turns thread timing on or off; the sums are kept. Call this and the functions below from the thread that called
/// set_num_threads (the one that runs the loops), like set_num_threads itself.
void set_thread_timing(bool on);
/// Zeroes the sums of thread_times().
void reset_thread_times();
/// The sums since the last reset_thread_times() (or set_num_threads, which also resets them).
ThreadTimes thread_times();
/// thread_times().loop_seconds without copying the per-thread sums (cheap enough to read around every op).
double thread_loop_seconds();
/// thread_times().wait_seconds, as cheaply.
double thread_wait_seconds();

namespace detail {
using ChunkFn = void (*)(const void* ctx, std::int64_t begin, std::int64_t end);
/// Runs fn(ctx, b_k, e_k) for k = 0..chunks-1 with b_k = n·k/chunks, e_k = n·(k+1)/chunks; chunk 0 on the caller.
void run_chunks(std::int64_t n, int chunks, ChunkFn fn, const void* ctx);
/// Chunks for n items with at least `grain` per chunk; 1 when the pool is busy (nested call) or single-threaded.
int chunks_for(std::int64_t n, std::int64_t grain);
}  // namespace detail

/// How many chunks parallel_for(n, grain, f) would run right now (1 when single-threaded, or inside a chunk): for a
/// loop that splits its work itself, e.g. `parallel_for(parts, 1, ...)` over parts it balances on its own.
inline int parallel_chunks(std::int64_t n, std::int64_t grain) { return detail::chunks_for(n, grain); }

/// Runs f(begin, end) over contiguous chunks covering [0, n), each at least `grain` items (fewer chunks when n is
/// small), chunk 0 on the calling thread; returns when all are done and rethrows the first exception in chunk order.
/// `f` must be callable concurrently on disjoint ranges. n <= 0 does nothing.
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, const F& f) {
  if (n <= 0) return;
  const int chunks = detail::chunks_for(n, grain);
  if (chunks <= 1) {
    f(std::int64_t{0}, n);
    return;
  }
  detail::run_chunks(
      n, chunks, [](const void* c, std::int64_t b, std::int64_t e) { (*static_cast<const F*>(c))(b, e); }, &f);
}

}  // namespace funnel
