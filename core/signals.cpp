#include "core/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

namespace funnel {

namespace {
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
  stop_requested().store(true);
}

// The calling thread's alternate signal stack, made by ensure_signal_stack() and released at thread exit (only if
// it is still the one installed).
struct SignalStack {
  void* mem = nullptr;
  std::size_t size = 0;
  ~SignalStack() {
    if (!mem) return;
    stack_t cur{};
    if (::sigaltstack(nullptr, &cur) == 0 && cur.ss_sp == mem && !(cur.ss_flags & SS_ONSTACK)) {
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      ::sigaltstack(&off, nullptr);
      std::free(mem);
    }
    // Otherwise someone else installed theirs meanwhile, or a handler runs on it: leave the memory (a leak at
    // thread exit beats freeing a stack in use).
  }
};
thread_local SignalStack t_stack;
thread_local bool t_checked = false;
}  // namespace

std::atomic<bool>& stop_requested() {
  static std::atomic<bool> flag{false};
  return flag;
}

bool has_signal_stack() {
  stack_t cur{};
  return ::sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE);
}

void ensure_signal_stack() {
  if (t_checked) return;
  t_checked = true;
  if (has_signal_stack()) return;  // the thread's own (a sanitizer's, a runtime's): keep it
  // The kernel needs the whole xsave area for the frame (about 3 KB with AVX-512, 11 KB with AMX tiles); the
  // handlers themselves need little. 64 KiB above the system's advertised size leaves ample room.
  long sys = ::sysconf(_SC_SIGSTKSZ);
  if (sys < 0) sys = 0;
  const std::size_t size = static_cast<std::size_t>(sys) + (std::size_t{64} << 10);
  void* mem = std::malloc(size);
  if (!mem) return;  // no stack: the handlers then run on the thread's stack, as without SA_ONSTACK
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = size;
  ss.ss_flags = 0;
  if (::sigaltstack(&ss, nullptr) != 0) {
    std::free(mem);
    return;
  }
  t_stack.mem = mem;
  t_stack.size = size;
}

void install_stop_signals() {
  (void)stop_requested();  // constructed before any handler can run
  ensure_signal_stack();
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  // SA_RESTART: a slow system call (a read or write on a pipe or terminal) that the signal interrupts resumes
  // instead of failing with EINTR in code that may not retry (stdio); the flag is looked at between steps anyway.
  sa.sa_flags = SA_ONSTACK | SA_RESTART;
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
