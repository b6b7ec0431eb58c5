#include "core/signals.hpp"

#include <csignal>

namespace funnel {

namespace {
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
  stop_requested().store(true);
}
}  // namespace

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

void install_stop_signals() {
  (void)stop_requested();  // constructed before any handler can run
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaction(s, &sa, nullptr);
}

int stop_signal() { return g_signal.load(); }

int stop_exit_code() {
  const int s = g_signal.load();
  return s ? 128 + s : 1;
}

void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

}  // namespace funnel
