// The `funnel` train / eval / predict / compare commands, run as a user would.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "ops/gemm_backend.hpp"
#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {
const std::string& kBin = funnel::test::kFunnel;
const std::string kSmall = "synthetic:rows=6000,fields=4,vocab=30,seed=5";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 256 --threads 1";

using funnel::test::Run;
using funnel::test::slurp;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("cli_" + name); }
}  // namespace

TEST_CASE("train --profile prints where a step's time goes and records it", "[cli]") {
  fs::path d = temp_dir("profile");
  Run t = run("train --data " + kSmall + kModel + " --profile --metrics-json " + (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  CHECK(t.out.find("profile: ") != std::string::npos);
  CHECK(t.out.find("embedding/lookup") != std::string::npos);
  auto m = nlohmann::json::parse(slurp(d / "m.json"));
  REQUIRE(m["profile"].is_array());
  REQUIRE_FALSE(m["profile"].empty());
  for (const auto& op : m["profile"]) {
    CHECK(op["node"].is_string());
    CHECK(op["op"].is_string());
    CHECK(op["forward_ms"].get<double>() >= 0);
    CHECK(op["backward_ms"].get<double>() >= 0);
    CHECK(op["serial_ms"].get<double>() >= 0);
    CHECK(op["wait_ms"].get<double>() >= 0);
  }
  REQUIRE(m["profile_threads"]["busy_ms"].size() == 1);  // one thread by default
  CHECK(m["profile_threads"]["loop_ms"].get<double>() == 0.0);
  CHECK(m["config"]["profile"] == true);
  CHECK(t.out.find("threads: ") == std::string::npos);  // the thread lines only with several threads

  Run two = run("train --data " + kSmall + kModel + " --threads 2 --profile --metrics-json " + (d / "m2.json").string());
  INFO(two.out);
  REQUIRE(two.code == 0);
  CHECK(two.out.find("ms outside them (thread 0 alone)") != std::string::npos);
  CHECK(two.out.find("thread 1: runs chunks") != std::string::npos);
  auto m2 = nlohmann::json::parse(slurp(d / "m2.json"));
  REQUIRE(m2["profile_threads"]["busy_ms"].size() == 2);
}

TEST_CASE("train, save, predict and eval round-trip", "[cli]") {
  fs::path d = temp_dir("roundtrip");
  Run t = run("train --data " + kSmall + kModel + " --epochs 2 --save " + (d / "ck").string() + " --metrics-json " +
              (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  CHECK(t.out.find("ctr_auc") != std::string::npos);
  REQUIRE(fs::exists(d / "ck" / "manifest.json"));
  auto m = nlohmann::json::parse(slurp(d / "m.json"));
  REQUIRE(m["epochs"].size() == 2);
  for (const char* k : {"ctr_auc", "cvr_auc", "ctcvr_auc", "cvr_auc_entire_space", "loss_ctr", "loss_ctcvr"})
    CHECK(m["epochs"][1].contains(k));
  CHECK(m["samples_per_sec"].get<double>() > 0);
  CHECK(m["warmup_steps"].get<int>() == 5);
  CHECK(m.contains("steady_samples_per_sec"));
  for (const char* k : {"batch", "gradients", "update"}) CHECK(m["steady_step_ms"][k].get<double>() >= 0);
  CHECK_FALSE(m.contains("profile"));

  Run p = run("predict --checkpoint " + (d / "ck").string() + " --data " + kSmall + " --out " +
              (d / "p.csv").string());
  INFO(p.out);
  REQUIRE(p.code == 0);
  std::ifstream csv(d / "p.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header == "row,pctr,pcvr,pctcvr");
  std::size_t lines = 0;
  for (std::string l; std::getline(csv, l);) {
    double a, b, c;
    long long row;
    char w, x, y;
    std::istringstream s(l);
    s >> row >> w >> a >> x >> b >> y >> c;
    REQUIRE(s);
    CHECK(row == static_cast<long long>(lines) + 1);  // one line per input row, numbered from 1
    CHECK(c == Approx(a * b).epsilon(1e-5));
    ++lines;
  }
  CHECK(lines == 6000);

  // Predicting twice from the same checkpoint gives the same bytes.
  Run p2 = run("predict --checkpoint " + (d / "ck").string() + " --data " + kSmall + " --out " +
               (d / "p2.csv").string());
  REQUIRE(p2.code == 0);
  CHECK(slurp(d / "p.csv") == slurp(d / "p2.csv"));

  Run e = run("eval --checkpoint " + (d / "ck").string() + " --data " + kSmall);
  INFO(e.out);
  REQUIRE(e.code == 0);
  CHECK(e.out.find("\"ctcvr_auc\"") != std::string::npos);

  // Resume from the checkpoint: the step count continues.
  Run r = run("train --data " + kSmall + kModel + " --epochs 1 --init " + (d / "ck").string() + " --save " +
              (d / "ck2").string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  auto m1 = nlohmann::json::parse(slurp(d / "ck" / "manifest.json"));
  auto m2 = nlohmann::json::parse(slurp(d / "ck2" / "manifest.json"));
  CHECK(m2["step"].get<long long>() > m1["step"].get<long long>());
  fs::remove_all(d);
}

TEST_CASE("bad flags and bad values are clear errors", "[cli]") {
  Run a = run("train --bogus 1");
  CHECK(a.code == 2);
  CHECK(a.out.find("unknown flag --bogus") != std::string::npos);
  Run b = run("train --epochs many");
  CHECK(b.code == 2);
  CHECK(b.out.find("--epochs") != std::string::npos);
  Run c = run("train --model xgboost");
  CHECK(c.code == 2);
  CHECK(c.out.find("xgboost") != std::string::npos);
  Run d = run("predict --data " + kSmall + " --out /tmp/x.csv");
  CHECK(d.code == 2);
  CHECK(d.out.find("--checkpoint") != std::string::npos);
  Run e = run("eval --checkpoint /nonexistent/dir --data " + kSmall);
  CHECK(e.code == 1);
  CHECK(e.out.find("/nonexistent/dir") != std::string::npos);
  Run f = run("train --data synthetic:rows=abc");
  CHECK(f.code != 0);
  CHECK(f.out.find("rows") != std::string::npos);
}

TEST_CASE("FUNNEL_GEMM picks the float gemm backend, a bad value exits 2 naming it", "[cli]") {
  using funnel::test::kFunnel;
  using funnel::test::run_shell;
  Run bad = run_shell("FUNNEL_GEMM=mkl " + kFunnel + " train --data " + kSmall + kModel + " --max-steps 2 2>&1");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("FUNNEL_GEMM") != std::string::npos);
  CHECK(bad.out.find("mkl") != std::string::npos);
  for (const char* be : {"openblas", "onednn"}) {
    INFO(be);
    Run ok = run_shell(std::string("FUNNEL_GEMM=") + be + " " + kFunnel + " train --data " + kSmall + kModel +
                       " --max-steps 3 2>&1");
    if (funnel::onednn_available()) CHECK(ok.code == 0);
    else CHECK(ok.code == (std::string(be) == "onednn" ? 2 : 0));
  }
}

TEST_CASE("SIGTERM finishes the step, saves and exits non-zero", "[cli]") {
  fs::path d = temp_dir("sigterm");
  std::string out = (d / "log.txt").string();
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::freopen(out.c_str(), "w", stderr);
    std::freopen("/dev/null", "w", stdout);
    std::string ck = (d / "ck").string();
    execl(kBin.c_str(), kBin.c_str(), "train", "--data", "synthetic:rows=400000,fields=8,vocab=200", "--epochs", "50",
          "--batch-size", "64", "--save", ck.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until training has started (the log shows a step line), then ask it to stop.
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (slurp(out).find("step ") != std::string::npos) break;
  }
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
  INFO(slurp(out));
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) != 0);
  CHECK(fs::exists(d / "ck" / "manifest.json"));
  CHECK(slurp(out).find("interrupted") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("compare prints the paper's table for every model", "[cli]") {
  Run c = run("compare --data " + kSmall + kModel + " --epochs 1");
  INFO(c.out);
  REQUIRE(c.code == 0);
  for (const char* m : {"esmm", "base", "esmm-ns", "division", "CVR AUC", "CTCVR AUC", "entire space"})
    CHECK(c.out.find(m) != std::string::npos);
}

TEST_CASE("every command answers --help with its flags and exit 0", "[cli]") {
  for (const char* cmd : {"train", "eval", "predict", "compare", "convert", "dot", "gradcheck", "ops", "models"}) {
    Run h = run(std::string(cmd) + " --help");
    INFO(cmd << ": " << h.out);
    CHECK(h.code == 0);
    CHECK(h.out.find(std::string("usage: funnel ") + cmd) != std::string::npos);
  }
  Run t = run("train -h");
  CHECK(t.code == 0);
  CHECK(t.out.find("--batch-size INT") != std::string::npos);
  CHECK(t.out.find("rows per step (default: 1024; allowed: ≥ 1)") != std::string::npos);
  CHECK(t.out.find("--optimizer TEXT") != std::string::npos);
  CHECK(t.out.find("allowed: adam, adagrad, sgd") != std::string::npos);
  CHECK(t.out.find("--config FILE") != std::string::npos);
}

TEST_CASE("funnel models lists every registered model with its description", "[cli]") {
  Run m = run("models");
  INFO(m.out);
  REQUIRE(m.code == 0);
  std::istringstream lines(m.out);
  std::vector<std::string> names;
  for (std::string l; std::getline(lines, l);) names.push_back(l.substr(0, l.find(' ')));
  REQUIRE(names.size() >= 4);
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 4) ==
        std::vector<std::string>{"esmm", "base", "esmm-ns", "division"});
  CHECK(m.out.find("pCTCVR = pCTR × pCVR") != std::string::npos);
  CHECK(m.out.find("without embedding sharing") != std::string::npos);
  // The main help names the command; unknown models list the registered ones.
  Run h = run("--help");
  CHECK(h.out.find("models") != std::string::npos);
  Run bad = run("train --model xgboost");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("esmm, base, esmm-ns, division") != std::string::npos);
  Run c = run("compare --models esmm,xgboost");
  CHECK(c.code == 2);
  CHECK(c.out.find("--models: unknown model 'xgboost'") != std::string::npos);
}

TEST_CASE("model options flag (--model-options): malformed or unknown options exit 2 naming the flag or the option", "[cli]") {
  Run a = run("train --data " + kSmall + kModel + " --model-options depth");
  CHECK(a.code == 2);
  CHECK(a.out.find("--model-options") != std::string::npos);
  Run b = run("train --data " + kSmall + kModel + " --model-options depth=3 --max-steps 1");
  CHECK(b.code != 0);
  CHECK(b.out.find("model 'esmm' has no option 'depth'") != std::string::npos);
}

TEST_CASE("a three-stage funnel predicts one column per conditional and cumulative probability", "[cli]") {
  fs::path d = temp_dir("three_stage");
  const std::string data = "synthetic:rows=3000,fields=4,vocab=30,seed=5,stages=3";
  Run t = run("train --data " + data + kModel + " --stages 3 --max-steps 5 --save " + (d / "ck").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  Run p = run("predict --checkpoint " + (d / "ck").string() + " --data " + data + " --out " + (d / "p.csv").string());
  INFO(p.out);
  REQUIRE(p.code == 0);
  std::ifstream csv(d / "p.csv");
  std::string header, first;
  std::getline(csv, header);
  CHECK(header == "row,pctr,pcvr,pctcvr,p2,p_reach2");
  std::getline(csv, first);
  double v[5];
  long long row;
  char comma;
  std::istringstream s(first);
  s >> row >> comma >> v[0] >> comma >> v[1] >> comma >> v[2] >> comma >> v[3] >> comma >> v[4];
  REQUIRE(s);
  CHECK(v[4] == Approx(v[2] * v[3]).epsilon(1e-5));
  fs::remove_all(d);
}

TEST_CASE("compare --seeds reports mean ± std, paired differences against esmm and calibration", "[cli][compare]") {
  Run c = run("compare --data " + kSmall + kModel + " --epochs 1 --seeds 2 --models esmm,escm2-ips --vary-data-seed");
  INFO(c.out);
  REQUIRE(c.code == 0);
  for (const char* m : {"±", "paired difference against esmm", "escm2-ips", "95%", "ECE clicked", "ECE entire",
                        "data seed varied"})
    CHECK(c.out.find(m) != std::string::npos);
  CHECK(run("compare --data " + kSmall + " --seeds 0").code == 2);
  CHECK(run("compare --data no_such.csv --vary-data-seed").code == 2);
}
