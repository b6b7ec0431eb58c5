// The thread pool behind parallel_for: chunking, coverage, exceptions, nesting, and that models train to the same
// bits on any thread count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/parallel.hpp"
#include "data/synthetic.hpp"
#include "support/small_model.hpp"
#include "train/loop.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

using namespace funnel;

namespace {

// Sets the thread count for one test and restores one thread after it.
struct Threads {
  explicit Threads(int n) { set_num_threads(n); }
  ~Threads() { set_num_threads(1); }
};

std::vector<std::pair<std::int64_t, std::int64_t>> chunks_of(std::int64_t n, std::int64_t grain) {
  std::mutex mu;
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    out.emplace_back(b, e);
  });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("parallel_for covers 0 to n-1 once in contiguous chunks fixed by n, grain and thread count", "[parallel]") {
  for (int t : {1, 2, 3, 4}) {
    Threads th(t);
    CHECK(num_threads() == t);
    for (std::int64_t n : {1, 7, 100, 1000, 4097}) {
      for (std::int64_t grain : {1, 10, 5000}) {
        INFO("threads " << t << ", n " << n << ", grain " << grain);
        auto c = chunks_of(n, grain);
        const std::int64_t expect = std::clamp<std::int64_t>(n / grain, 1, t);
        REQUIRE(static_cast<std::int64_t>(c.size()) == expect);
        CHECK(c.front().first == 0);
        CHECK(c.back().second == n);
        for (std::size_t k = 0; k < c.size(); ++k) {
          CHECK(c[k].first == n * static_cast<std::int64_t>(k) / expect);
          if (k) CHECK(c[k].first == c[k - 1].second);
        }
      }
    }
    CHECK(chunks_of(0, 1).empty());
  }
}

TEST_CASE("parallel_for runs each element exactly once, and its chunks really run at the same time", "[parallel]") {
  Threads th(2);
  const std::int64_t n = 1 << 20;
  std::vector<int> hits(static_cast<std::size_t>(n), 0);
  for (int rep = 0; rep < 50; ++rep)
    parallel_for(n, 1024, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) ++hits[static_cast<std::size_t>(i)];
    });
  for (int h : hits) REQUIRE(h == 50);
  // Each of the two chunks waits until the other one has started: only possible when two threads run them.
  std::atomic<bool> started[2] = {false, false};
  std::atomic<int> met{0};
  std::mutex mu;
  std::vector<std::thread::id> ids;
  parallel_for(2, 1, [&](std::int64_t b, std::int64_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.push_back(std::this_thread::get_id());
    }
    started[b] = true;
    const auto t0 = std::chrono::steady_clock::now();
    while (!started[1 - b] && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20)) std::this_thread::yield();
    if (started[1 - b]) ++met;
  });
  CHECK(met == 2);
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);
}

TEST_CASE("an exception in any chunk reaches the caller, the first chunk's first, the pool keeps working",
          "[parallel]") {
  Threads th(2);
  auto throw_in = [](std::int64_t bad) {
    parallel_for(100, 1, [&](std::int64_t b, std::int64_t e) {
      if (bad >= b && bad < e) throw std::runtime_error("chunk starting at " + std::to_string(b));
    });
  };
  CHECK_THROWS_WITH(throw_in(10), "chunk starting at 0");
  CHECK_THROWS_WITH(throw_in(90), "chunk starting at 50");
  CHECK_THROWS_WITH(parallel_for(100, 1, [](std::int64_t b, std::int64_t) {
                      throw std::runtime_error("chunk " + std::to_string(b));
                    }),
                    "chunk 0");
  std::atomic<std::int64_t> sum{0};
  parallel_for(100, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) sum += i;
  });
  CHECK(sum == 4950);
}

TEST_CASE("parallel_for inside a chunk runs serially on that thread", "[parallel]") {
  Threads th(2);
  std::atomic<int> inner_chunks{0};
  std::atomic<bool> same_thread{true};
  parallel_for(2, 1, [&](std::int64_t, std::int64_t) {
    const auto outer = std::this_thread::get_id();
    parallel_for(1000, 1, [&](std::int64_t b, std::int64_t e) {
      ++inner_chunks;
      if (b != 0 || e != 1000 || std::this_thread::get_id() != outer) same_thread = false;
    });
  });
  CHECK(inner_chunks == 2);
  CHECK(same_thread);
}

TEST_CASE("set_num_threads clamps to at least one thread", "[parallel]") {
  Threads th(0);
  CHECK(num_threads() == 1);
}

TEST_CASE("thread timing counts the loops that ran on several threads, each thread's chunk time and the waits",
          "[parallel]") {
  Threads th(2);
  // Chunk 1 busy-waits 20 ms, chunk 0 returns at once: whichever thread runs chunk 0 then has nothing to do.
  auto loop = [] {
    parallel_for(2, 1, [](std::int64_t b, std::int64_t) {
      if (b == 0) return;
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
      while (std::chrono::steady_clock::now() < until) {
      }
    });
  };
  loop();  // timing is off: nothing is counted
  ThreadTimes t = thread_times();
  CHECK(t.loops == 0);
  CHECK(t.loop_seconds == 0.0);
  REQUIRE(t.busy_seconds.size() == 2);
  CHECK(t.busy_seconds[0] + t.busy_seconds[1] == 0.0);

  set_thread_timing(true);
  loop();
  parallel_for(10, 100, [](std::int64_t, std::int64_t) {});  // one chunk: runs on the caller alone, not counted
  set_thread_timing(false);
  loop();  // off again
  t = thread_times();
  CHECK(t.loops == 1);
  CHECK(t.loop_seconds >= 0.020);
  CHECK(t.loop_seconds == thread_loop_seconds());
  CHECK(t.wait_seconds == thread_wait_seconds());
  CHECK(t.wait_seconds >= 0.0);
  CHECK(t.wait_seconds <= t.loop_seconds);
  const double busy = t.busy_seconds[0] + t.busy_seconds[1];
  CHECK(busy >= 0.020);
  CHECK(std::max(t.busy_seconds[0], t.busy_seconds[1]) <= t.loop_seconds);
  // The caller either ran the slow chunk (then it barely waited) or waited for the worker that did.
  CHECK((t.busy_seconds[0] >= 0.020 || t.wait_seconds >= 0.015));

  reset_thread_times();
  t = thread_times();
  CHECK(t.loops == 0);
  CHECK(t.loop_seconds == 0.0);
  CHECK(t.wait_seconds == 0.0);
  CHECK(t.busy_seconds[0] + t.busy_seconds[1] == 0.0);
}

TEST_CASE("ESMM trains to the same bits on 1, 2 and 3 threads (gemm, embedding, elementwise, Adam split)",
          "[parallel]") {
  SyntheticConfig sc;
  sc.rows = 3000;
  sc.fields = 12;
  sc.vocab_per_field = 60;
  sc.seed = 5;
  Dataset data = make_synthetic(sc);
  auto run = [&](int threads) {
    Threads th(threads);
    // Every gemm with ≥ 2^18 multiply-adds is cut by rows (≥ 2·kGemmRowBlock rows): 1000×192·192×192, dW 192×192 and 192×96.
    Model m(test::sized_for(data, "esmm", 16, {192, 96}));
    m.exec().init_params(3);
    OptimizerConfig oc;
    oc.lr = 0.01;
    auto opt = make_optimizer<float>("adam", oc);
    TrainOptions o;
    o.batch_size = 1000;
    o.epochs = 2;
    train(m, *opt, data, nullptr, o, {});
    std::vector<float> out;
    for (NodeId p : m.graph().params()) {
      const auto& v = m.exec().param(p);
      out.insert(out.end(), v.begin(), v.end());
    }
    out.insert(out.end(), m.last_losses().begin(), m.last_losses().end());
    return out;
  };
  const auto one = run(1);
  for (int t : {2, 3}) {
    INFO("threads " << t);
    const auto many = run(t);
    REQUIRE(many.size() == one.size());
    std::size_t diff = 0;
    for (std::size_t i = 0; i < one.size(); ++i) diff += one[i] != many[i];
    CHECK(diff == 0);
  }
}
