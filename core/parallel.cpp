#include "core/parallel.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FUNNEL_CPU_RELAX() _mm_pause()
#else
#define FUNNEL_CPU_RELAX() ((void)0)
#endif

namespace funnel {
namespace {

// Workers spin this long after their last chunk before sleeping on a futex (std::atomic::wait): a training step
// runs dozens of parallel loops back to back, and waking a sleeping thread (~80 µs measured on a 2-vCPU VM) costs
// more than most of them.
constexpr auto kSpin = std::chrono::microseconds(200);

// Chunks are claimed, not assigned: every participant (the caller and the workers) takes the next unclaimed chunk
// until none is left, so a worker that the OS has not scheduled yet costs nothing: the caller runs its share.
// Chunk bounds stay fixed (n·k/chunks), so results do not depend on which thread ran which chunk.
//
// The job ticket packs (job number : 32 | chunk count : 16 | next chunk : 16). A claim is a compare-and-swap
// of the ticket, so a thread holding a stale ticket (an earlier job's) can never take a chunk of a later one, and
// a successful claim (acquire) sees the job fields the caller wrote before publishing the ticket (release).
class ThreadPool {
 public:
  ThreadPool() {
    openblas_set_num_threads(1);
    resize(1);
  }
  ~ThreadPool() { stop_workers(); }

  void resize(int n) {
    stop_workers();
    threads_ = n;
    owner_ = std::this_thread::get_id();
    errors_.assign(static_cast<std::size_t>(std::min(n, kMaxChunks)), nullptr);
    busy_ns_ = std::make_unique<std::atomic<std::int64_t>[]>(static_cast<std::size_t>(n));
    reset_times();
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  int threads() const { return threads_; }

  int chunks_for(std::int64_t n, std::int64_t grain) const {
    if (threads_ <= 1 || busy_ || std::this_thread::get_id() != owner_) return 1;
    const std::int64_t c = n / std::max<std::int64_t>(grain, 1);
    return static_cast<int>(std::clamp<std::int64_t>(c, 1, std::min(threads_, kMaxChunks)));
  }

  void set_timing(bool on) { timing_.store(on, std::memory_order_relaxed); }
  void reset_times() {
    loops_ = 0;
    loop_ns_ = 0;
    wait_ns_ = 0;
    for (int i = 0; i < threads_; ++i) busy_ns_[static_cast<std::size_t>(i)].store(0, std::memory_order_relaxed);
  }
  double loop_seconds() const { return 1e-9 * static_cast<double>(loop_ns_); }
  double wait_seconds() const { return 1e-9 * static_cast<double>(wait_ns_); }
  ThreadTimes times() const {
    ThreadTimes t;
    t.loops = loops_;
    t.loop_seconds = loop_seconds();
    t.wait_seconds = wait_seconds();
    for (int i = 0; i < threads_; ++i)
      t.busy_seconds.push_back(1e-9 * static_cast<double>(busy_ns_[static_cast<std::size_t>(i)].load()));
    return t;
  }

  void run(std::int64_t n, int chunks, detail::ChunkFn fn, const void* ctx) {
    const bool timed = timing_.load(std::memory_order_relaxed);
    const std::int64_t t_start = timed ? now_ns() : 0;
    busy_ = true;
    n_ = n;
    fn_ = fn;
    ctx_ = ctx;
    done_.store(0, std::memory_order_relaxed);
    ++job_;
    ticket_.store(pack(job_, chunks, 0), std::memory_order_seq_cst);
    // A futex wake is a system call (~10 µs on a VM): only when a worker may be asleep. A worker counts itself in
    // sleepers_ before it re-reads the ticket and waits, so either it sees this ticket or this load sees it.
    if (sleepers_.load(std::memory_order_seq_cst) > 0) ticket_.notify_all();
    while (claim_and_run(0)) {
    }
    const std::int64_t t_own = timed ? now_ns() : 0;
    for (int spins = 0; done_.load(std::memory_order_acquire) != chunks; ++spins) {
      if (spins < 4096) FUNNEL_CPU_RELAX();
      else std::this_thread::yield();
    }
    busy_ = false;
    if (timed) {
      const std::int64_t t_end = now_ns();
      ++loops_;
      loop_ns_ += t_end - t_start;
      wait_ns_ += t_end - t_own;
    }
    for (int k = 0; k < chunks; ++k) {
      if (errors_[static_cast<std::size_t>(k)]) {
        std::exception_ptr e = errors_[static_cast<std::size_t>(k)];
        std::fill(errors_.begin(), errors_.end(), nullptr);
        std::rethrow_exception(e);
      }
    }
  }

 private:
  static constexpr int kMaxChunks = 1 << 15;
  static std::uint64_t pack(std::uint64_t job, int chunks, int next) {
    return (job << 32) | (static_cast<std::uint64_t>(chunks) << 16) | static_cast<std::uint64_t>(next);
  }
  static int chunks_of(std::uint64_t t) { return static_cast<int>((t >> 16) & 0xffff); }
  static int next_of(std::uint64_t t) { return static_cast<int>(t & 0xffff); }

  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Claims one chunk of the current job and runs it on thread `self` (0: the caller); false when none is left.
  bool claim_and_run(int self) {
    std::uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      const int chunks = chunks_of(t), k = next_of(t);
      if (k >= chunks) return false;
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        const std::int64_t b = n_ * k / chunks, e = n_ * (k + 1) / chunks;
        const bool timed = timing_.load(std::memory_order_relaxed);
        const std::int64_t t0 = timed ? now_ns() : 0;
        try {
          fn_(ctx_, b, e);
        } catch (...) {
          errors_[static_cast<std::size_t>(k)] = std::current_exception();
        }
        if (timed) busy_ns_[static_cast<std::size_t>(self)].fetch_add(now_ns() - t0, std::memory_order_relaxed);
        done_.fetch_add(1, std::memory_order_release);
        return true;
      }
    }
  }

  void loop(int self) {
    for (;;) {
      while (claim_and_run(self)) {
      }
      const auto t0 = std::chrono::steady_clock::now();
      for (int spins = 0;; ++spins) {
        if (stop_.load(std::memory_order_acquire)) return;
        const std::uint64_t t = ticket_.load(std::memory_order_acquire);
        if (next_of(t) < chunks_of(t)) break;
        FUNNEL_CPU_RELAX();
        if ((spins & 63) == 63 && std::chrono::steady_clock::now() - t0 > kSpin) {
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          ticket_.wait(t);  // loads the ticket first: returns at once if it changed since t
          sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        }
      }
    }
  }

  void stop_workers() {
    if (workers_.empty()) return;
    stop_.store(true, std::memory_order_release);
    ticket_.fetch_add(std::uint64_t{1} << 32, std::memory_order_acq_rel);  // wake sleepers; nothing to claim
    ticket_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    stop_.store(false, std::memory_order_release);
  }

  int threads_ = 1;
  bool busy_ = false;
  std::thread::id owner_;
  std::vector<std::thread> workers_;
  std::vector<std::exception_ptr> errors_;  // per chunk
  std::uint64_t job_ = 0;
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  // Thread timing (set_thread_timing): loops and their wall time on the caller, chunk time per thread.
  std::atomic<bool> timing_{false};
  std::int64_t loops_ = 0;
  std::int64_t loop_ns_ = 0;
  std::int64_t wait_ns_ = 0;
  std::unique_ptr<std::atomic<std::int64_t>[]> busy_ns_;
  // The current job: written before the ticket is published, read after a successful claim.
  std::int64_t n_ = 0;
  detail::ChunkFn fn_ = nullptr;
  const void* ctx_ = nullptr;
};

ThreadPool& pool() {
  static ThreadPool p;
  return p;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) n = 1;
  ThreadPool& p = pool();
  openblas_set_num_threads(1);
  if (n != p.threads()) p.resize(n);
}

int num_threads() { return pool().threads(); }

void set_thread_timing(bool on) { pool().set_timing(on); }
void reset_thread_times() { pool().reset_times(); }
ThreadTimes thread_times() { return pool().times(); }
double thread_loop_seconds() { return pool().loop_seconds(); }
double thread_wait_seconds() { return pool().wait_seconds(); }

namespace detail {
void run_chunks(std::int64_t n, int chunks, ChunkFn fn, const void* ctx) { pool().run(n, chunks, fn, ctx); }
int chunks_for(std::int64_t n, std::int64_t grain) { return pool().chunks_for(n, grain); }
}  // namespace detail

}  // namespace funnel
