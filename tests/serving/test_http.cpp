// The HTTP server: answers equal to the Predictor's and to `funnel predict`'s, bad clients (malformed JSON, unknown
// field, wrong type, too many rows, an oversized body, a slow client) get 4xx JSON errors and never block the others,
// reload under load drops nothing, and `funnel serve` reloads on SIGHUP and exits 0 on SIGTERM.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "models/model.hpp"
#include "serving/http_server.hpp"
#include "serving_util.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;
using namespace funnel::test;
using json = nlohmann::json;

namespace {

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until the peer closes (or timeout_ms passes without data).
std::string read_all(int fd, int timeout_ms = 10000) {
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

struct Reply {
  int status = 0;
  std::string body;
};

Reply parse_reply(const std::string& raw) {
  Reply r;
  if (raw.rfind("HTTP/1.1 ", 0) == 0) r.status = std::atoi(raw.c_str() + 9);
  const auto p = raw.find("\r\n\r\n");
  if (p != std::string::npos) r.body = raw.substr(p + 4);
  return r;
}

Reply request(int port, const std::string& method, const std::string& path, const std::string& body = "") {
  const int fd = connect_to(port);
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (method == "POST") req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  send_all(fd, req);
  const Reply r = parse_reply(read_all(fd));
  ::close(fd);
  return r;
}

// A server on an ephemeral port, serving on a thread of its own.
struct Running {
  Predictor pred;
  HttpServer server;
  int port;
  std::thread th;
  Running(const std::string& ck, ServerOptions o) : pred(ck), server(pred, adjust(o)), port(server.bind()) {
    th = std::thread([this] { server.serve(); });
  }
  static ServerOptions adjust(ServerOptions o) {
    o.port = 0;
    return o;
  }
  ~Running() {
    server.stop();
    th.join();
  }
};

// A csv fixture line's cells as a JSON row (labels dropped, D* columns as numbers).
json row_json(const std::vector<std::string>& header, const std::string& line) {
  json row = json::object();
  std::stringstream ss(line);
  std::string cell;
  for (std::size_t c = 0; c < header.size(); ++c) {
    std::getline(ss, cell, ',');
    if (header[c] == "click" || header[c] == "purchase") continue;
    if (header[c][0] == 'D')
      row[header[c]] = std::stod(cell);
    else if (!cell.empty())
      row[header[c]] = cell;
  }
  return row;
}

std::vector<std::string> header_of(const std::string& line) {
  std::vector<std::string> h;
  std::stringstream ss(line);
  for (std::string c; std::getline(ss, c, ',');) h.push_back(c);
  return h;
}

void check_error(const Reply& r, int status, const std::string& field, std::int64_t row = -2) {
  INFO(r.body);
  CHECK(r.status == status);
  const json j = json::parse(r.body);
  REQUIRE(j.contains("error"));
  CHECK(j["error"]["status"] == status);
  if (!field.empty()) CHECK(j["error"].value("field", "") == field);
  if (row >= -1) CHECK(j["error"].value("row", std::int64_t{-1}) == row);
}

}  // namespace

TEST_CASE("serve: answers equal the Predictor's and funnel predict's, and model, healthz and metrics answer", "[serving]") {
  TempDir t("http_same");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck);
  REQUIRE(shell(kFunnelBin + " predict --checkpoint " + ck + " --data csv:" + kRechub + " --out " + t.file("p.csv") +
                " 2>/dev/null") == 0);
  const auto cli = read_predictions(t.file("p.csv"));
  const auto lines = read_lines(kRechub);
  const auto header = header_of(lines[0]);
  Running s(ck, {});
  const auto m = s.pred.current();
  const std::size_t nc = m->columns().size();
  std::vector<std::string_view> data(lines.begin() + 1, lines.end());
  std::vector<float> ref(data.size() * nc);
  m->predict_csv(data, ref);

  json rows = json::array(), csv = json::array();
  for (std::size_t i = 1; i < lines.size(); ++i) {
    rows.push_back(row_json(header, lines[i]));
    csv.push_back(lines[i]);
  }
  for (const json& body : {json{{"rows", rows}}, json{{"csv", csv}}}) {
    const Reply r = request(s.port, "POST", "/v1/predict", body.dump());
    INFO(r.body.substr(0, 300));
    REQUIRE(r.status == 200);
    const json j = json::parse(r.body);
    CHECK(j["model"] == "esmm");
    CHECK(j["step"] == m->step());
    CHECK(j["columns"] == json(m->columns()));
    REQUIRE(j["predictions"].size() == data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
      for (std::size_t c = 0; c < nc; ++c) {
        const float v = j["predictions"][i][c].get<float>();
        CHECK(v == ref[i * nc + c]);                          // serve == Predictor
        CHECK(static_cast<float>(cli[i][c]) == v);            // == funnel predict
      }
  }
  const Reply model = request(s.port, "GET", "/v1/model");
  REQUIRE(model.status == 200);
  const json mj = json::parse(model.body);
  CHECK(mj["model"] == "esmm");
  CHECK(mj["fields"].size() == 23);
  CHECK(mj["dense"].size() == 8);
  CHECK(mj["csv_header"] == json(header));
  const Reply h = request(s.port, "GET", "/healthz");
  CHECK(h.status == 200);
  CHECK(json::parse(h.body)["status"] == "ok");
  const Reply met = request(s.port, "GET", "/metrics");
  CHECK(met.status == 200);
  CHECK_THAT(met.body, Catch::Contains("funnel_http_requests_total{path=\"/v1/predict\",status=\"200\"} 2"));
  CHECK_THAT(met.body, Catch::Contains("funnel_predict_rows_total " + std::to_string(2 * data.size())));
  CHECK_THAT(met.body, Catch::Contains("funnel_predict_latency_seconds_count 2"));
  CHECK_THAT(met.body, Catch::Contains("funnel_model_step{model=\"esmm\"} " + std::to_string(m->step())));
}

TEST_CASE("serve: bad clients get 4xx JSON errors naming row and field, and never block the others", "[serving]") {
  TempDir t("http_bad");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck);
  const auto lines = read_lines(kRechub);
  const auto header = header_of(lines[0]);
  ServerOptions o;
  o.threads = 4;
  o.max_body_bytes = 64 << 10;
  o.limits.max_rows = 10;
  o.read_timeout_ms = 400;
  Running s(ck, o);
  json good = row_json(header, lines[1]);
  auto rows_body = [](const json& row) { return json{{"rows", json::array({row})}}.dump(); };

  check_error(request(s.port, "POST", "/v1/predict", "{\"rows\": [{\"205\": "), 400, "");
  check_error(request(s.port, "POST", "/v1/predict", "[1,2]"), 400, "");
  check_error(request(s.port, "POST", "/v1/predict", "{\"rows\": [{\"D508\": 1e999}]}"), 400, "");
  json unknown = good;
  unknown["nope"] = "x";
  check_error(request(s.port, "POST", "/v1/predict", json{{"rows", {good, unknown}}}.dump()), 400, "nope", 1);
  json wrong = good;
  wrong["205"] = true;
  check_error(request(s.port, "POST", "/v1/predict", rows_body(wrong)), 400, "205", 0);
  wrong = good;
  wrong["205"] = 12;
  check_error(request(s.port, "POST", "/v1/predict", rows_body(wrong)), 400, "205", 0);
  wrong = good;
  wrong["D508"] = "high";
  check_error(request(s.port, "POST", "/v1/predict", rows_body(wrong)), 400, "D508", 0);
  check_error(request(s.port, "POST", "/v1/predict", json{{"rows", json::array({good, good, 3})}}.dump()), 400, "", 2);
  json many = json::array();
  for (int i = 0; i < 11; ++i) many.push_back(good);
  check_error(request(s.port, "POST", "/v1/predict", json{{"rows", many}}.dump()), 413, "rows");
  check_error(request(s.port, "POST", "/v1/predict", std::string(70 << 10, ' ')), 413, "");
  check_error(request(s.port, "POST", "/v1/predict", json{{"csv", {lines[1], "1,2,3"}}}.dump()), 400, "", 1);
  check_error(request(s.port, "GET", "/v1/nothing"), 404, "");
  check_error(request(s.port, "GET", "/v1/predict"), 405, "");

  // Slow clients: connections that send part of a request and stall. The others are answered at once meanwhile,
  // and the stalled ones are closed after the read timeout.
  std::vector<int> slow;
  for (int i = 0; i < 2; ++i) {
    slow.push_back(connect_to(s.port));
    send_all(slow.back(), "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"rows\"");
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) CHECK(request(s.port, "POST", "/v1/predict", rows_body(good)).status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(350));
  for (int fd : slow) {
    const std::string got = read_all(fd, 3000);  // closed by the server (no answer, or an error status)
    CHECK(got.find("200 OK") == std::string::npos);
    ::close(fd);
  }
  CHECK(request(s.port, "GET", "/healthz").status == 200);
  const std::string met = request(s.port, "GET", "/metrics").body;
  CHECK_THAT(met, Catch::Contains("status=\"413\"} 2"));
}

TEST_CASE("serve: reload under load drops no request", "[serving]") {
  TempDir t("http_reload");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 1");
  const auto lines = read_lines(kRechub);
  const auto header = header_of(lines[0]);
  Running s(ck, {});
  const std::int64_t step1 = s.pred.current()->step();
  const std::string body = json{{"rows", {row_json(header, lines[1]), row_json(header, lines[2])}}}.dump();
  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int k = 0; k < 3; ++k)
    clients.emplace_back([&] {
      while (!done) (request(s.port, "POST", "/v1/predict", body).status == 200 ? ok : failed)++;
    });
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 2 --epochs 2");
  for (int i = 0; i < 3; ++i) {
    const Reply r = request(s.port, "POST", "/v1/reload");
    CHECK(r.status == 200);
  }
  while (ok < 30) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  done = true;
  for (auto& c : clients) c.join();
  CHECK(failed == 0);
  CHECK(s.pred.current()->step() > step1);
  CHECK(json::parse(request(s.port, "GET", "/healthz").body)["step"] == s.pred.current()->step());
}

TEST_CASE("funnel serve: SIGHUP reloads, SIGTERM finishes and exits 0", "[serving]") {
  TempDir t("http_cli");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 1");
  const std::string out = t.file("out.txt");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);
    ::execl(kFunnelBin.c_str(), "funnel", "serve", "--checkpoint", ck.c_str(), "--port", "0", "--threads", "4",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int port = 0;
  for (int i = 0; i < 200 && !port; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const auto l = read_lines(out);
    if (!l.empty() && l[0].find("listening on 127.0.0.1:") == 0) port = std::atoi(l[0].c_str() + 23);
  }
  REQUIRE(port > 0);
  const std::int64_t step1 = json::parse(request(port, "GET", "/healthz").body)["step"];
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 2 --epochs 2");
  ::kill(pid, SIGHUP);
  std::int64_t step2 = step1;
  for (int i = 0; i < 200 && step2 == step1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    step2 = json::parse(request(port, "GET", "/healthz").body)["step"];
  }
  CHECK(step2 > step1);
  ::kill(pid, SIGTERM);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
}

TEST_CASE("every registered model: funnel serve == the Predictor == funnel predict", "[serving]") {
  const auto lines = read_lines(kRechub);
  json csv = json::array();
  for (std::size_t i = 1; i < lines.size(); ++i) csv.push_back(lines[i]);
  std::vector<std::string_view> data(lines.begin() + 1, lines.end());
  for (const auto& kind : model_kinds()) {
    INFO("model " << kind);
    const RechubCheckpoint rc(kind, "http_models_" + kind);
    const auto& cli = rc.cli;
    Running s(rc.ck, {});
    const auto m = s.pred.current();
    const std::size_t nc = m->columns().size();
    std::vector<float> ref(data.size() * nc);
    m->predict_csv(data, ref);
    const Reply r = request(s.port, "POST", "/v1/predict", json{{"csv", csv}}.dump());
    REQUIRE(r.status == 200);
    const json j = json::parse(r.body);
    CHECK(j["model"] == kind);
    CHECK(j["columns"] == json(m->columns()));
    REQUIRE(j["predictions"].size() == data.size());
    for (std::size_t i = 0; i < data.size(); ++i)
      for (std::size_t c = 0; c < nc; ++c) {
        const float v = j["predictions"][i][c].get<float>();
        CHECK(v == ref[i * nc + c]);
        CHECK(static_cast<float>(cli[i][c]) == v);
      }
  }
}
