// The HTTP front of the Predictor on cpp-httplib (Debian's compiled library; this file is built with its
// pkg-config feature macros, cmake/FunnelLayers.cmake).
#include "serving/http_server.hpp"

#include <httplib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

namespace funnel {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Upper bounds (seconds) of the latency histogram's buckets.
constexpr std::array<double, 14> kBuckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                          0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   2.5};

const char* const kPaths[] = {"/v1/predict", "/v1/model", "/healthz", "/metrics", "/v1/reload", "other"};
constexpr int kNumPaths = 6;
const int kStatuses[] = {200, 400, 404, 405, 408, 413, 414, 431, 500, 503};
constexpr int kNumStatuses = 10;

int path_index(const std::string& p) {
  for (int i = 0; i < kNumPaths - 1; ++i)
    if (p == kPaths[i]) return i;
  return kNumPaths - 1;
}
int status_index(int s) {
  for (int i = 0; i < kNumStatuses; ++i)
    if (kStatuses[i] == s) return i;
  return -1;
}

// Scores a parsed request on `m` into out (resized to rows × columns). A PredictError from the model becomes a
// RequestError (status 400) with its row and field.
void score_request(const ServingModel& m, const PredictRequest& r, std::vector<float>& out) {
  out.resize(static_cast<std::size_t>(r.size()) * m.columns().size());
  try {
    switch (r.kind) {
      case PredictRequest::Kind::Rows: m.predict(r.rows, out); break;
      case PredictRequest::Kind::Csv: m.predict_csv(r.lines, out); break;
      case PredictRequest::Kind::Slots: m.predict_slots(r.lines, out); break;
      case PredictRequest::Kind::Aliccp: m.predict_aliccp(r.lines, r.common, out); break;
    }
  } catch (const PredictError& e) {
    throw RequestError(400, e.row(), e.field(), e.what());
  }
}

}  // namespace

struct HttpServer::Impl {
  Predictor& pred;
  ServerOptions o;
  httplib::Server svr;
  std::atomic<bool> bound{false};
  // Metrics.
  std::array<std::array<std::atomic<std::int64_t>, kNumStatuses + 1>, kNumPaths> requests{};
  std::atomic<std::int64_t> rows{0};
  std::array<std::atomic<std::int64_t>, kBuckets.size() + 1> latency{};
  std::atomic<std::int64_t> latency_ns{0};
  std::atomic<std::int64_t> reload_ok{0}, reload_failed{0};

  Impl(Predictor& p, ServerOptions opt) : pred(p), o(std::move(opt)) {}

  void observe(double seconds) {
    std::size_t b = 0;
    while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
    latency[b].fetch_add(1, std::memory_order_relaxed);
    latency_ns.fetch_add(static_cast<std::int64_t>(seconds * 1e9), std::memory_order_relaxed);
  }

  static void send_error(httplib::Response& res, int status, const std::string& msg, std::int64_t row = -1,
                         const std::string& field = "") {
    res.status = status;
    res.set_content(error_json(status, msg, row, field), "application/json");
  }

  void predict(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = Clock::now();
    try {
      const PredictRequest r = parse_predict_request(req.body, o.limits);
      const auto m = pred.current();  // one version for the whole request
      thread_local std::vector<float> out;
      score_request(*m, r, out);
      const std::size_t nc = m->columns().size();
      // The body, written by hand: one number per value (%.9g round-trips a float).
      std::string body;
      body.reserve(128 + out.size() * 16);
      body += "{\"model\":";
      body += json(m->kind()).dump();
      body += ",\"step\":" + std::to_string(m->step()) + ",\"columns\":" + json(m->columns()).dump() +
              ",\"predictions\":[";
      char cell[32];
      for (std::int64_t i = 0; i < r.size(); ++i) {
        body += i ? ",[" : "[";
        for (std::size_t c = 0; c < nc; ++c) {
          const int n = std::snprintf(cell, sizeof cell, c ? ",%.9g" : "%.9g",
                                      static_cast<double>(out[static_cast<std::size_t>(i) * nc + c]));
          body.append(cell, static_cast<std::size_t>(n));
        }
        body += ']';
      }
      body += "]}";
      res.set_content(std::move(body), "application/json");
      rows.fetch_add(r.size(), std::memory_order_relaxed);
    } catch (const RequestError& e) {
      send_error(res, e.status(), e.what(), e.row(), e.field());
    } catch (const std::exception& e) {
      send_error(res, 500, std::string("prediction failed: ") + e.what());
    }
    observe(std::chrono::duration<double>(Clock::now() - t0).count());
  }

  json model_json() const {
    const auto m = pred.current();
    json j{{"model", m->kind()},      {"step", m->step()},          {"columns", m->columns()},
           {"fields", m->fields()},   {"dense", m->dense_names()},  {"config", m->manifest_model()},
           {"checkpoint", m->directory()}};
    if (!m->csv_columns().empty()) j["csv_header"] = m->csv_columns();
    if (m->has_feature_map()) j["mapping"] = to_string(m->feature_map()->config().kind);
    return j;
  }

  std::string metrics() const {
    std::string t;
    t += "# HELP funnel_http_requests_total HTTP requests answered, by path and status.\n";
    t += "# TYPE funnel_http_requests_total counter\n";
    for (int p = 0; p < kNumPaths; ++p)
      for (int s = 0; s <= kNumStatuses; ++s) {
        const auto n = requests[static_cast<std::size_t>(p)][static_cast<std::size_t>(s)].load();
        if (!n) continue;
        t += "funnel_http_requests_total{path=\"" + std::string(kPaths[p]) + "\",status=\"" +
             (s < kNumStatuses ? std::to_string(kStatuses[s]) : std::string("other")) + "\"} " + std::to_string(n) +
             "\n";
      }
    t += "# HELP funnel_predict_rows_total Rows scored.\n# TYPE funnel_predict_rows_total counter\n";
    t += "funnel_predict_rows_total " + std::to_string(rows.load()) + "\n";
    t += "# HELP funnel_predict_latency_seconds Time to answer POST /v1/predict (parse, score, serialize).\n";
    t += "# TYPE funnel_predict_latency_seconds histogram\n";
    std::int64_t cum = 0;
    char le[32];
    for (std::size_t b = 0; b < kBuckets.size(); ++b) {
      cum += latency[b].load();
      std::snprintf(le, sizeof le, "%g", kBuckets[b]);
      t += "funnel_predict_latency_seconds_bucket{le=\"" + std::string(le) + "\"} " + std::to_string(cum) + "\n";
    }
    cum += latency[kBuckets.size()].load();
    t += "funnel_predict_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(latency_ns.load()) * 1e-9);
    t += "funnel_predict_latency_seconds_sum " + std::string(sum) + "\n";
    t += "funnel_predict_latency_seconds_count " + std::to_string(cum) + "\n";
    const auto m = pred.current();
    t += "# HELP funnel_model_step Training step of the loaded checkpoint.\n# TYPE funnel_model_step gauge\n";
    t += "funnel_model_step{model=\"" + m->kind() + "\"} " + std::to_string(m->step()) + "\n";
    t += "# HELP funnel_model_reloads_total Checkpoint reloads, by result.\n# TYPE funnel_model_reloads_total counter\n";
    t += "funnel_model_reloads_total{result=\"ok\"} " + std::to_string(reload_ok.load()) + "\n";
    t += "funnel_model_reloads_total{result=\"failed\"} " + std::to_string(reload_failed.load()) + "\n";
    return t;
  }

  std::int64_t reload() {
    try {
      const auto m = pred.reload();
      reload_ok.fetch_add(1);
      return m->step();
    } catch (...) {
      reload_failed.fetch_add(1);
      throw;
    }
  }

  void setup() {
    const int threads = std::max(1, o.threads);
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    svr.set_payload_max_length(o.max_body_bytes);
    svr.set_read_timeout(std::chrono::milliseconds(o.read_timeout_ms));
    svr.set_write_timeout(std::chrono::milliseconds(o.write_timeout_ms));
    svr.set_keep_alive_timeout(o.keep_alive_timeout_s);
    svr.set_keep_alive_max_count(static_cast<std::size_t>(std::max(1, o.keep_alive_max_requests)));
    svr.set_tcp_nodelay(true);
    svr.Post("/v1/predict", [this](const httplib::Request& req, httplib::Response& res) { predict(req, res); });
    svr.Get("/v1/model", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(model_json().dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    });
    svr.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(json{{"status", "ok"}, {"step", pred.current()->step()}}.dump(), "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    svr.Post("/v1/reload", [this](const httplib::Request&, httplib::Response& res) {
      try {
        const std::int64_t step = reload();
        res.set_content(json{{"status", "reloaded"}, {"step", step}}.dump(), "application/json");
      } catch (const std::exception& e) {
        send_error(res, 500, std::string("reload failed (the previous version keeps serving): ") + e.what());
      }
    });
    // Paths that exist with another method: 405.
    auto wrong_method = [](const httplib::Request& req, httplib::Response& res) {
      send_error(res, 405, "method " + req.method + " not allowed on " + req.path);
    };
    svr.Get("/v1/predict", wrong_method);
    svr.Get("/v1/reload", wrong_method);
    svr.Post("/v1/model", wrong_method);
    svr.Post("/healthz", wrong_method);
    svr.Post("/metrics", wrong_method);
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      std::string msg;
      switch (res.status) {
        case 404: msg = "no such path: " + req.path; break;
        case 413: msg = "request body too large"; break;
        case 414: msg = "request URI too long"; break;
        default: msg = "HTTP status " + std::to_string(res.status); break;
      }
      res.set_content(error_json(res.status, msg), "application/json");
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string msg = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        msg += std::string(": ") + e.what();
      } catch (...) {
      }
      send_error(res, 500, msg);
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const int s = status_index(res.status);
      requests[static_cast<std::size_t>(path_index(req.path))][static_cast<std::size_t>(s < 0 ? kNumStatuses : s)]
          .fetch_add(1, std::memory_order_relaxed);
      if (o.log)
        std::fprintf(stderr, "serve: %s %s %d %zu bytes\n", req.method.c_str(), req.path.c_str(), res.status,
                     res.body.size());
    });
  }
};

HttpServer::HttpServer(Predictor& p, ServerOptions o) : impl_(std::make_unique<Impl>(p, std::move(o))) {
  impl_->setup();
}

HttpServer::~HttpServer() {
  impl_->svr.stop();
}

int HttpServer::bind() {
  auto& o = impl_->o;
  int port = o.port;
  if (port == 0) {
    port = impl_->svr.bind_to_any_port(o.host);
    if (port < 0) throw Error("serve: cannot bind " + o.host + " (any port)");
  } else if (!impl_->svr.bind_to_port(o.host, port)) {
    throw Error("serve: cannot bind " + o.host + ":" + std::to_string(port) + " (in use, or not an address here)");
  }
  impl_->bound = true;
  return port;
}

void HttpServer::serve() {
  if (!impl_->bound) throw Error("serve: bind() first");
  impl_->svr.listen_after_bind();
}

void HttpServer::stop() { impl_->svr.stop(); }

std::int64_t HttpServer::reload() { return impl_->reload(); }

std::string HttpServer::metrics_text() const { return impl_->metrics(); }

}  // namespace funnel
