// funnel serve: a checkpoint behind HTTP (serving/http_server.hpp). SIGHUP reloads the checkpoint; SIGTERM and
// SIGINT stop accepting, answer what is in flight and exit 0.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <cstdio>
#include <thread>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "serving/http_server.hpp"

namespace funnel::cli {
namespace {

int g_sig_pipe[2] = {-1, -1};
extern "C" void on_signal(int sig) {
  const int saved = errno;
  const unsigned char c = static_cast<unsigned char>(sig);
  if (::write(g_sig_pipe[1], &c, 1) != 1) {}
  errno = saved;
}

// Registered when the command runs (not at start-up: the help table is another file's static).
void register_serve_help() {
  register_flag_help("serve:checkpoint", {"the checkpoint directory to serve (written by train --save); reloaded on "
                                          "SIGHUP and POST /v1/reload", "DIR", "", "", ""});
  register_flag_help("host", {"address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)", "TEXT",
                              "127.0.0.1", "", "\"127.0.0.1\""});
  register_flag_help("port", {"TCP port to listen on (0: any free port, printed at start)", "INT", "8080", "0..65535",
                              "8080"});
  register_flag_help("serve:threads", {"connection workers: requests served at once (each open keep-alive "
                                       "connection holds one)", "INT", "64", "1..4096", "64"});
  register_flag_help("max-body-bytes", {"largest request body (413 above)", "INT", "8388608", "≥ 1", "8388608"});
  register_flag_help("serve:max-rows", {"most rows (or lines) per request (413 above)", "INT", "4096", "≥ 1", "4096"});
  register_flag_help("max-batch", {"rows per forward pass inside the predictor (a power of two)", "INT", "256",
                                   "1..65536", "256"});
  register_flag_help("read-timeout-ms", {"a connection that sends nothing for this long while a request is due is "
                                         "closed", "INT", "5000", "1..600000", "5000"});
  register_flag_help("keep-alive-s", {"an idle keep-alive connection is closed after this many seconds", "INT", "5",
                                      "1..3600", "5"});
  register_flag_help("unknown-fields", {"a row naming a field the model does not know: a 400 error, or ignored (as "
                                        "the readers ignore unknown csv columns)", "TEXT", "error", "error, ignore",
                                        "\"error\""});
  register_flag_help("log", {"one line per request on stderr", "", "off", "", "false"});
}

int run_serve(int argc, char** argv) {
  register_serve_help();
  Flags f(argc, argv,
          {"checkpoint", "host", "port", "threads", "max-body-bytes", "max-rows", "max-batch", "read-timeout-ms",
           "keep-alive-s", "unknown-fields", "pool-weights"},
          {"log"});
  ServerOptions so;
  so.host = f.str("host", "127.0.0.1");
  const std::int64_t port = f.integer("port", 8080, 0);
  if (port > 65535) throw UsageError("--port: must be at most 65535, got " + std::to_string(port));
  so.port = static_cast<int>(port);
  const std::int64_t threads = f.integer("threads", 64, 1);
  if (threads > 4096) throw UsageError("--threads: must be at most 4096, got " + std::to_string(threads));
  so.threads = static_cast<int>(threads);
  so.max_body_bytes = static_cast<std::size_t>(f.integer("max-body-bytes", so.max_body_bytes, 1));
  so.limits.max_rows = f.integer("max-rows", so.limits.max_rows, 1);
  const std::int64_t rt = f.integer("read-timeout-ms", 5000, 1);
  if (rt > 600000) throw UsageError("--read-timeout-ms: must be at most 600000, got " + std::to_string(rt));
  so.read_timeout_ms = so.write_timeout_ms = static_cast<int>(rt);
  const std::int64_t ka = f.integer("keep-alive-s", 5, 1);
  if (ka > 3600) throw UsageError("--keep-alive-s: must be at most 3600, got " + std::to_string(ka));
  so.keep_alive_timeout_s = static_cast<int>(ka);
  so.log = f.has("log");
  PredictorOptions po;
  const std::int64_t mb = f.integer("max-batch", 256, 1);
  if (mb > 65536) throw UsageError("--max-batch: must be at most 65536, got " + std::to_string(mb));
  po.max_batch = mb;
  const std::string uf = f.str("unknown-fields", "error");
  if (uf != "error" && uf != "ignore") throw UsageError("--unknown-fields: expected error or ignore, got '" + uf + "'");
  po.unknown_fields = uf == "ignore" ? UnknownFields::Ignore : UnknownFields::Error;
  po.pool_weights = f.str("pool-weights", "");
  if (!po.pool_weights.empty() && po.pool_weights != "ones" && po.pool_weights != "values")
    throw UsageError("--pool-weights: expected ones or values, got '" + po.pool_weights + "'");
  const std::string dir = f.required("checkpoint");

  // Signals: a handler writes the signal's number into a pipe that one thread reads (libraries may have started
  // threads of their own already, so masking signals in this thread alone would not direct them).
  if (::pipe2(g_sig_pipe, O_CLOEXEC) != 0) throw Error("serve: cannot create a pipe");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(s, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Predictor pred(dir, po);
  HttpServer server(pred, so);
  const int bound = server.bind();
  {
    const auto m = pred.current();
    std::fprintf(stderr, "serve: %s (%s, step %lld) on http://%s:%d/ (%d workers)\n", dir.c_str(), m->kind().c_str(),
                 static_cast<long long>(m->step()), so.host.c_str(), bound, so.threads);
    std::printf("listening on %s:%d\n", so.host.c_str(), bound);
    std::fflush(stdout);
  }
  std::thread waiter([&] {
    for (;;) {
      unsigned char sig = 0;
      const ssize_t n = ::read(g_sig_pipe[0], &sig, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1 || sig == 0) return;  // 0: the server ended on its own
      if (sig == SIGHUP) {
        try {
          const std::int64_t step = server.reload();
          std::fprintf(stderr, "serve: reloaded %s (step %lld)\n", dir.c_str(), static_cast<long long>(step));
        } catch (const std::exception& e) {
          std::fprintf(stderr, "serve: reload failed, the previous version keeps serving: %s\n", e.what());
        }
        continue;
      }
      std::fprintf(stderr, "serve: signal %d: finishing the requests in flight\n", sig);
      server.stop();
      return;
    }
  });
  server.serve();
  const unsigned char zero = 0;
  if (::write(g_sig_pipe[1], &zero, 1) != 1) {}  // wakes the waiter if the server ended without a signal
  waiter.join();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(serve, "serve", "serve a checkpoint's predictions over HTTP/JSON (POST /v1/predict, GET /v1/model, /healthz, /metrics)",
               funnel::cli::run_serve);
