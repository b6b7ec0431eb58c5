#pragma once
// Signals that end a run. install_stop_signals() makes SIGINT, SIGTERM, SIGHUP and SIGPIPE set a flag instead of
// killing the process, so a training loop can finish its step, save when asked and exit non-zero
// (stop_exit_code()). ignore_sigpipe() is for commands without such a loop: a write to a closed pipe then fails
// with EPIPE, which the writer reports as an error, instead of killing the process silently.
#include <atomic>

namespace funnel {

// The flag set by the handlers (the same flag for every call).
std::atomic<bool>& stop_requested();
// Installs the handlers for INT, TERM, HUP and PIPE.
void install_stop_signals();
// The last signal that set the flag (0 if none).
int stop_signal();
// 128 + the signal, the shell's convention for "ended by a signal" (130 for INT); 1 if no signal was seen.
int stop_exit_code();
void ignore_sigpipe();

}  // namespace funnel
