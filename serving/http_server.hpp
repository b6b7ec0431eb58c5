#pragma once
/// @file
/// The prediction server behind `funnel serve`: HTTP/1.1 and JSON over a Predictor (serving/predictor.hpp).
///
///   POST /v1/predict   a request body of serving/request.hpp -> {"model", "step", "columns", "predictions"}
///   GET  /v1/model     the loaded model: name, step, config, fields, dense features, columns, csv header
///   GET  /healthz      {"status": "ok", "step": ...}
///   GET  /metrics      Prometheus text: requests by path and status, rows scored, a latency histogram of
///                      /v1/predict, the loaded model's step, reloads
///   POST /v1/reload    loads the checkpoint directory's current version (Predictor::reload) without dropping a
///                      request: calls in flight finish on the old version
///
/// Errors are JSON (request.hpp error_json) with a 4xx status naming the row and field: 400 malformed JSON, a wrong
/// type, an unknown field, a bad line; 404/405 unknown path or method; 413 a body over max_body_bytes or too many
/// rows or values. A failure of the server itself is a 500 with a JSON body; it never ends the process.
///
/// Limits (ServerOptions): the body size, rows per request, values per row (RequestLimits), the request line and
/// header size (8 KiB each, cpp-httplib's), a timeout on every read and write of a connection, a keep-alive idle
/// timeout and a maximum number of requests per connection. Each connection is served by one of `threads`
/// workers; a connection that sends nothing within the read timeout is closed, so a slow client holds one worker for
/// at most that long between bytes while the others keep serving.
#include <cstdint>
#include <memory>
#include <string>

#include "serving/predictor.hpp"
#include "serving/request.hpp"

namespace funnel {

/// Where and how an HttpServer listens, and the limits it enforces (see the file's description).
struct ServerOptions {
  std::string host = "127.0.0.1";  ///< address to listen on (the default accepts local clients only)
  int port = 8080;                         ///< 0: any free port (bind() returns it)
  int threads = 64;                        ///< connection workers (each keep-alive connection holds one)
  std::size_t max_body_bytes = 8u << 20;   ///< 413 above
  RequestLimits limits;  ///< rows per request, values per row, sizes of values and lines
  int read_timeout_ms = 5000;  ///< a read of a connection waits at most this long
  int write_timeout_ms = 5000;  ///< a write of a connection waits at most this long
  int keep_alive_timeout_s = 5;  ///< an idle keep-alive connection is closed after this many seconds
  int keep_alive_max_requests = 10000;  ///< requests per connection before it is closed
  bool log = false;                        ///< one line per request to stderr
};

/// The HTTP front end of a Predictor (see the file's description). bind(), then serve() on one thread; stop() and
/// reload() may be called from any other thread.
class HttpServer {
 public:
  /// Serves `p`, which must outlive the server. Nothing is bound until bind().
  HttpServer(Predictor& p, ServerOptions o);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds the listening socket; returns the port. Throws funnel::Error when the address cannot be bound.
  int bind();
  /// Serves until stop(); returns after the requests in flight are answered. bind() first.
  void serve();
  /// Stops accepting and makes serve() return once the workers are done (thread- and signal-thread safe).
  void stop();
  /// Reloads the predictor (as POST /v1/reload); returns the new step. Errors are thrown (the old version stays).
  std::int64_t reload();

  /// The current /metrics document (Prometheus text format).
  std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace funnel
