#pragma once
/// @file
/// Signals that end a run. install_stop_signals() makes SIGINT, SIGTERM, SIGHUP and SIGPIPE set a flag instead of
/// killing the process, so a training loop can finish its step, save when asked and exit non-zero
/// (stop_exit_code()). ignore_sigpipe() is for commands without such a loop: a write to a closed pipe then fails
/// with EPIPE, which the writer reports as an error, instead of killing the process silently.
///
/// The handlers run on an alternate signal stack (SA_ONSTACK), never on the stack of the code they interrupt. This
/// matters: some JIT gemm kernels (oneDNN's AVX-512 sgemm, as shipped in Debian 12) point the stack pointer into a
/// heap buffer while they run, so a handler frame pushed there (several KB with the AVX-512 register state) would
/// overwrite the heap below that buffer. ensure_signal_stack() gives the calling thread such a stack; the gemm
/// backend calls it on every thread before its first oneDNN call, install_stop_signals() on the calling thread.
#include <atomic>

namespace funnel {

/// The flag set by the handlers (the same flag for every call).
std::atomic<bool>& stop_requested();
/// Installs the handlers for INT, TERM, HUP and PIPE (on the alternate stack; the calling thread gets one).
void install_stop_signals();
/// The last signal that set the flag (0 if none).
int stop_signal();
/// 128 + the signal, the shell's convention for "ended by a signal" (130 for INT); 1 if no signal was seen.
int stop_exit_code();
/// Ignores SIGPIPE process-wide, so a write to a closed pipe fails with EPIPE instead of killing the process.
void ignore_sigpipe();
/// Gives the calling thread an alternate signal stack large enough for the CPU's full register state (AVX-512,
/// AMX), unless it already has one (e.g. from a sanitizer). Once per thread; the stack is released when the thread
/// ends. Allocates only on the first call in a thread.
void ensure_signal_stack();
/// True when the calling thread has an alternate signal stack (for tests).
bool has_signal_stack();

}  // namespace funnel
