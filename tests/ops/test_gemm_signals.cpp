// Stop signals (core/signals.hpp) arriving while gemms run: the handler must not touch the interrupted code's
// memory. oneDNN's AVX-512 sgemm kernel (Debian 12's oneDNN) runs with its stack pointer inside a heap buffer, so
// a handler frame pushed on the interrupted stack overwrote the heap below that buffer and a later free() aborted
// ("corrupted size vs. prev_size"). The handlers now run on an alternate stack that the gemm backend gives every
// thread calling oneDNN. Here a thread of its own (no stack given by anyone else) runs gemms large enough for the
// heap workspace (k well above the kernel's on-stack capacity) while another thread signals it thousands of times;
// without the alternate stack this aborts within a few hundred signals on an AVX-512 CPU. On a CPU without
// AVX-512 the kernel keeps its stack, and the test checks the same contract (results intact, flag set).
#include <catch2/catch.hpp>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "core/signals.hpp"
#include "ops/gemm_backend.hpp"

using namespace funnel;

TEST_CASE("stop signals during oneDNN gemms leave the heap and the results intact", "[ops][gemm][signals]") {
  const GemmBackend saved = gemm_backend();
  if (onednn_available()) set_gemm_backend(GemmBackend::onednn);
  install_stop_signals();
  const int m = 96, n = 64, k = 600;  // k: the AVX-512 kernel's workspace goes to the heap above 84
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(k) * n);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  std::vector<double> ref(static_cast<std::size_t>(m) * n, 0.0);
  for (int i = 0; i < m; ++i)
    for (int p = 0; p < k; ++p)
      for (int j = 0; j < n; ++j)
        ref[static_cast<std::size_t>(i) * n + j] +=
            static_cast<double>(a[static_cast<std::size_t>(i) * k + p]) * b[static_cast<std::size_t>(p) * n + j];

  std::atomic<bool> ready{false}, done{false};
  std::atomic<int> calls{0};
  bool has_stack_after = false;
  double worst = 0.0;
  std::thread worker([&] {
    std::vector<float> c(static_cast<std::size_t>(m) * n), d(static_cast<std::size_t>(k) * n);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
    while (std::chrono::steady_clock::now() < until || calls.load() < 20) {
      // Fresh heap blocks around the kernel's workspace each time, as a training step has.
      std::vector<float> scratch(static_cast<std::size_t>(100 + calls.load() % 300));
      sgemm_one_thread(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
      sgemm_one_thread(true, false, k, n, m, 1.0f, a.data(), k, c.data(), n, 0.0f, d.data(), n);  // Aᵀ·C, k × n
      ready.store(true);
      for (std::size_t i = 0; i < c.size(); ++i) worst = std::max(worst, std::abs(c[i] - ref[i]));
      calls.fetch_add(1);
    }
    has_stack_after = has_signal_stack();
    done.store(true);
  });
  while (!ready.load()) std::this_thread::yield();
  int sent = 0;
  while (!done.load()) {
    pthread_kill(worker.native_handle(), SIGINT);
    ++sent;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  worker.join();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
  std::signal(SIGPIPE, SIG_DFL);
  set_gemm_backend(saved);
  INFO("gemm calls " << calls.load() << ", signals sent " << sent);
  CHECK(stop_requested().load());
  stop_requested().store(false);
  CHECK(sent > 100);
  CHECK(worst < 1e-3);
  if (onednn_available()) CHECK(has_stack_after);  // given by the gemm backend (or, under ASan, by the sanitizer)
}
