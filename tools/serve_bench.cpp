// funnel-serve-bench: latency and throughput of the Predictor in process and of the HTTP server over 127.0.0.1.
//
//   funnel-serve-bench --checkpoint DIR --rows FILE [--seconds S] [--http-threads N] [--skip-http]
//                      [--batches 1,64,1024] [--threads 1,2] [--same-rows]
//
// FILE is a csv file under the checkpoint's training header (the rows scored, cycled through; the same file can be
// given to another runtime so that both score the same rows). In process: 1, 64 and 1024 rows per call on 1 and 2
// threads, each thread calling predict() on structured rows in a loop for S seconds (default 2). Over HTTP: the
// server on an ephemeral port of 127.0.0.1 and a client of this program with 1, 8 and 64 keep-alive connections
// (one thread each), 1 and 64 rows per request, S seconds each. Prints one line per case: p50 / p99 / p99.9 latency
// of a call (or request) and rows/s. --same-rows: every in-process call scores the same rows (the file's first
// rows, as tools/ort/bench.js does) instead of walking through the file.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/http_server.hpp"
#include "serving/predictor.hpp"

using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string checkpoint, rows;
  double seconds = 2;
  int http_threads = 64;
  bool skip_http = false;
  bool same_rows = false;  // every in-process call scores the same rows
  std::vector<std::int64_t> batches{1, 64, 1024};  // rows per in-process call
  std::vector<int> threads{1, 2};                  // in-process calling threads
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "funnel-serve-bench: %s\nusage: funnel-serve-bench --checkpoint DIR --rows FILE [--seconds S] "
               "[--http-threads N] [--skip-http] [--batches 1,64,1024] [--threads 1,2] [--same-rows]\n", why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(k + ": missing value");
      return argv[++i];
    };
    if (k == "--checkpoint") a.checkpoint = val();
    else if (k == "--rows") a.rows = val();
    else if (k == "--seconds") a.seconds = std::atof(val().c_str());
    else if (k == "--http-threads") a.http_threads = std::atoi(val().c_str());
    else if (k == "--skip-http") a.skip_http = true;
    else if (k == "--same-rows") a.same_rows = true;
    else if (k == "--batches" || k == "--threads") {
      // A comma-separated list of positive whole numbers (at most 65536).
      std::vector<std::int64_t> list;
      std::stringstream ss(val());
      for (std::string item; std::getline(ss, item, ',');) {
        char* end = nullptr;
        const long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v < 1 || v > 65536) usage(k + ": expected positive whole numbers, got '" + item + "'");
        list.push_back(v);
      }
      if (list.empty()) usage(k + ": expected a list such as 1,64");
      if (k == "--batches") a.batches = list;
      else a.threads.assign(list.begin(), list.end());
    }
    else usage("unknown flag " + k);
  }
  if (a.checkpoint.empty()) usage("--checkpoint: required");
  if (a.rows.empty()) usage("--rows: required");
  if (!(a.seconds > 0 && a.seconds <= 60)) usage("--seconds: expected 0 < S <= 60");
  if (a.http_threads < 1 || a.http_threads > 1024) usage("--http-threads: expected 1..1024");
  return a;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string c; std::getline(ss, c, ',');) v.push_back(c);
  if (!s.empty() && s.back() == ',') v.push_back("");
  return v;
}

struct Rows {
  std::vector<std::vector<funnel::FeatureValue>> f;
  std::vector<std::vector<funnel::DenseValue>> d;
  std::vector<funnel::PredictRow> rows;
  std::vector<nlohmann::json> json_rows;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> cells;
};

void load_rows(const std::string& file, Rows& r) {
  std::ifstream in(file);
  if (!in) usage("--rows: cannot read " + file);
  std::string line;
  if (!std::getline(in, line)) usage("--rows: empty file");
  r.header = split(line);
  while (std::getline(in, line))
    if (!line.empty()) r.cells.push_back(split(line));
  if (r.cells.empty()) usage("--rows: no data rows");
  r.f.resize(r.cells.size());
  r.d.resize(r.cells.size());
  for (std::size_t i = 0; i < r.cells.size(); ++i) {
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t c = 0; c < r.header.size() && c < r.cells[i].size(); ++c) {
      const std::string& h = r.header[c];
      const std::string& v = r.cells[i][c];
      if (h == "click" || h == "purchase" || h == "conversion") continue;
      if (!h.empty() && h[0] == 'D') {
        float x = 0;
        std::from_chars(v.data(), v.data() + v.size(), x);
        r.d[i].push_back({h, x});
        j[h] = x;
      } else if (!v.empty()) {
        r.f[i].push_back({h, v});
        j[h] = v;
      }
    }
    r.json_rows.push_back(std::move(j));
  }
  for (std::size_t i = 0; i < r.cells.size(); ++i) r.rows.push_back({r.f[i], r.d[i]});
}

struct Stats {
  double p50, p99, p999, rows_per_s;
};

Stats summarize(std::vector<double>& lat, double rows, double secs) {
  std::sort(lat.begin(), lat.end());
  auto q = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * static_cast<double>(lat.size())))]; };
  return {q(0.5), q(0.99), q(0.999), rows / secs};
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// rows_per_cpu_s: rows per second of CPU time of the calling threads (in process only; 0 otherwise), the rate
// each thread would have on a core of its own however loaded the machine is.
void print(const char* what, std::int64_t batch, int threads, const Stats& s, std::size_t calls,
           double rows_per_cpu_s = 0) {
  std::printf("%-10s rows/call %5lld  threads/conns %3d  calls %9zu  p50 %9.1f us  p99 %9.1f us  p99.9 %9.1f us  "
              "%11.0f rows/s  %11.0f rows/cpu-s\n",
              what, static_cast<long long>(batch), threads, calls, s.p50 * 1e6, s.p99 * 1e6, s.p999 * 1e6,
              s.rows_per_s, rows_per_cpu_s);
  std::fflush(stdout);
}

void in_process(const funnel::Predictor& p, const Rows& r, std::int64_t batch, int threads, double seconds,
                bool same_rows) {
  // Rows of a call: `batch` consecutive rows of the file, cycling (a buffer of the file's rows repeated).
  std::vector<funnel::PredictRow> pool;
  const std::size_t need = static_cast<std::size_t>(batch) + r.rows.size();
  while (pool.size() < need) pool.insert(pool.end(), r.rows.begin(), r.rows.end());
  const auto m = p.current();
  const std::size_t nc = m->columns().size();
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(threads));
  std::vector<double> cpu(static_cast<std::size_t>(threads), 0.0);
  // Warm-up: every thread's workspace and pass sizes.
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] {
        std::vector<float> out(static_cast<std::size_t>(batch) * nc);
        for (int i = 0; i < 3; ++i) m->predict(std::span<const funnel::PredictRow>(pool).first(static_cast<std::size_t>(batch)), out);
      });
    for (auto& t : ts) t.join();
  }
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      auto& l = lat[static_cast<std::size_t>(t)];
      l.reserve(1 << 22);
      std::vector<float> out(static_cast<std::size_t>(batch) * nc);
      std::size_t at = same_rows ? 0 : static_cast<std::size_t>(t) * 17 % r.rows.size();
      const double cpu0 = thread_cpu_seconds();
      while (Clock::now() < end && l.size() < (1u << 22)) {
        const auto c0 = Clock::now();
        m->predict(std::span<const funnel::PredictRow>(pool).subspan(at, static_cast<std::size_t>(batch)), out);
        l.push_back(std::chrono::duration<double>(Clock::now() - c0).count());
        if (!same_rows) at = (at + static_cast<std::size_t>(batch)) % r.rows.size();
      }
      cpu[static_cast<std::size_t>(t)] = thread_cpu_seconds() - cpu0;
    });
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  const std::size_t n = all.size();
  double cpu_total = 0;
  for (double c : cpu) cpu_total += c;
  const double nrows = static_cast<double>(n) * static_cast<double>(batch);
  print("in-process", batch, threads, summarize(all, nrows, secs), n, cpu_total > 0 ? nrows / cpu_total : 0);
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One keep-alive request: send, read the head and Content-Length bytes. Returns the status, or -1.
int round_trip(int fd, const std::string& req, std::string& buf) {
  std::size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return -1;
    off += static_cast<std::size_t>(n);
  }
  buf.clear();
  char tmp[65536];
  std::size_t head_end = std::string::npos, need = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return -1;
    buf.append(tmp, static_cast<std::size_t>(n));
    if (head_end == std::string::npos) {
      head_end = buf.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      const auto cl = buf.find("Content-Length: ");
      if (cl == std::string::npos || cl > head_end) return -1;
      need = head_end + 4 + std::strtoull(buf.c_str() + cl + 16, nullptr, 10);
    }
    if (buf.size() >= need) break;
  }
  return std::atoi(buf.c_str() + 9);
}

void over_http(int port, const Rows& r, std::int64_t batch, int conns, double seconds) {
  // Request bodies: `batch` consecutive rows from a few starting points.
  std::vector<std::string> reqs;
  for (std::size_t s = 0; s < 16; ++s) {
    nlohmann::json rows = nlohmann::json::array();
    for (std::int64_t i = 0; i < batch; ++i) rows.push_back(r.json_rows[(s * 7 + static_cast<std::size_t>(i)) % r.json_rows.size()]);
    const std::string body = nlohmann::json{{"rows", rows}}.dump();
    reqs.push_back("POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(conns));
  std::atomic<int> errors{0};
  std::atomic<bool> go{false};
  Clock::time_point end;
  std::vector<std::thread> ts;
  for (int c = 0; c < conns; ++c)
    ts.emplace_back([&, c] {
      const int fd = connect_to(port);
      if (fd < 0) {
        ++errors;
        return;
      }
      std::string buf;
      for (int i = 0; i < 3; ++i) round_trip(fd, reqs[0], buf);  // warm-up
      while (!go) std::this_thread::yield();
      auto& l = lat[static_cast<std::size_t>(c)];
      l.reserve(1 << 20);
      std::size_t k = static_cast<std::size_t>(c);
      while (Clock::now() < end && l.size() < (1u << 20)) {
        const auto c0 = Clock::now();
        if (round_trip(fd, reqs[k++ % reqs.size()], buf) != 200) {
          ++errors;
          break;
        }
        l.push_back(std::chrono::duration<double>(Clock::now() - c0).count());
      }
      ::close(fd);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto t0 = Clock::now();
  end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  const std::size_t n = all.size();
  print("http", batch, conns, summarize(all, static_cast<double>(n) * static_cast<double>(batch), secs), n);
  if (errors) std::printf("http: %d connections failed\n", errors.load());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  Rows rows;
  load_rows(a.rows, rows);
  funnel::Predictor p(a.checkpoint);
  const auto m = p.current();
  std::printf("model %s step %lld, %zu rows from %s, %.1f s per case\n", m->kind().c_str(),
              static_cast<long long>(m->step()), rows.rows.size(), a.rows.c_str(), a.seconds);
  for (int threads : a.threads)
    for (std::int64_t batch : a.batches) in_process(p, rows, batch, threads, a.seconds, a.same_rows);
  if (a.skip_http) return 0;
  funnel::ServerOptions so;
  so.port = 0;
  so.threads = a.http_threads;
  so.limits.max_rows = 4096;
  funnel::HttpServer server(p, so);
  const int port = server.bind();
  std::thread th([&] { server.serve(); });
  for (std::int64_t batch : {1, 64})
    for (int conns : {1, 8, 64}) over_http(port, rows, batch, conns, a.seconds);
  server.stop();
  th.join();
  return 0;
}
