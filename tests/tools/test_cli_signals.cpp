// Stopping runs with a signal (core/signals.hpp, cli/train.cpp, cli/predict.cpp): INT, TERM and HUP at varied
// moments of training, during the evaluation after training, and during `funnel eval`. Each run must end with
// 128 + the signal, the "interrupted" line and (with --save) a checkpoint that loads — never a crash.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tools/cli_util.hpp"

namespace fs = std::filesystem;
using funnel::test::kFunnel;
using funnel::test::run_funnel;
using funnel::test::slurp;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

// Starts `funnel args...` with stderr to `log`; glibc's strict heap checks on (not under ASan, whose allocator
// replaces glibc's): the malloc debug library checks every block's bounds at free, perturb fills freed memory.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::fflush(stdout);  // the child's freopen would write out the parent's buffered output again
  std::fflush(stderr);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!std::freopen(log.c_str(), "w", stderr) || !std::freopen("/dev/null", "w", stdout)) _exit(126);
    if (!kAsan) {
      ::setenv("GLIBC_TUNABLES", "glibc.malloc.check=3:glibc.malloc.perturb=165", 1);
      for (const char* lib : {"/lib/x86_64-linux-gnu/libc_malloc_debug.so.0", "/usr/lib64/libc_malloc_debug.so.0",
                              "/lib64/libc_malloc_debug.so.0"})
        if (::access(lib, R_OK) == 0) {
          ::setenv("LD_PRELOAD", lib, 1);
          break;
        }
    }
    std::vector<char*> argv{const_cast<char*>(kFunnel.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kFunnel.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Waits (up to 60 s) until `log` contains `cue`; false if the process ended first.
bool wait_for(pid_t pid, const std::string& log, const std::string& cue) {
  for (int i = 0; i < 6000; ++i) {
    if (slurp(log).find(cue) != std::string::npos) return true;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char* kData = "synthetic:rows=30000,fields=8,vocab=200";

}  // namespace

TEST_CASE("training stopped by INT, TERM or HUP at varied moments always saves a checkpoint that loads",
          "[cli][signals]") {
  // Many runs, each signalled at another moment of training: a crash at the stop shows as an abort (134), a
  // segfault (139) or a missing line. FUNNEL_SIGNAL_RUNS=N runs more (for a longer stress by hand). Fewer under
  // ASan, where each run is several times slower (CI's time budget).
  int runs = kAsan ? 8 : 15;
  if (const char* e = std::getenv("FUNNEL_SIGNAL_RUNS")) runs = std::max(1, std::atoi(e));
  const fs::path d = funnel::test::fresh_temp_dir("signals_stress");
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  const char* batches[] = {"64", "256", "1024"};
  for (int i = 0; i < runs; ++i) {
    const int sig = sigs[i % 3];
    const bool save = i % 5 != 4;
    const std::string threads = i % 4 == 3 ? "2" : "1";
    const std::string log = (d / ("log" + std::to_string(i) + ".txt")).string();
    const std::string ck = (d / ("ck" + std::to_string(i))).string();
    std::vector<std::string> args{"train",     "--data", kData, "--epochs", "1000", "--batch-size", batches[i % 3],
                                  "--threads", threads};
    if (save) args.insert(args.end(), {"--save", ck});
    const pid_t pid = spawn(args, log);
    REQUIRE(wait_for(pid, log, "model: "));
    // 0 to 600 ms into training, in a spread that does not repeat with the signal or the batch size.
    std::this_thread::sleep_for(std::chrono::milliseconds((i * 137) % 600));
    kill(pid, sig);
    const int rc = wait_exit(pid);
    const std::string text = slurp(log);
    INFO("run " << i << ": signal " << sig << ", batch " << batches[i % 3] << ", threads " << threads
                << (save ? ", --save" : "") << "\n" << text);
    REQUIRE(rc == 128 + sig);
    CHECK(text.find("train: interrupted by signal " + std::to_string(sig)) != std::string::npos);
    if (save) {
      CHECK(text.find("(checkpoint saved)") != std::string::npos);
      const auto ev = run_funnel("eval --checkpoint " + ck + " --data synthetic:rows=2000,fields=8,vocab=200", true);
      INFO(ev.out);
      CHECK(ev.code == 0);
    } else {
      CHECK_FALSE(fs::exists(ck));
    }
  }
  fs::remove_all(d);
}

TEST_CASE("a stop signal during the evaluation after training stops it: checkpoint saved, message, 128 + signal",
          "[cli][signals]") {
  const fs::path d = funnel::test::fresh_temp_dir("signals_eval");
  const std::string log = (d / "log.txt").string(), ck = (d / "ck").string();
  // 1.9M held-out rows: more than 200 evaluation batches, so the progress shows, and about a second of scoring.
  const pid_t pid = spawn({"train", "--data", "synthetic:rows=2000000,fields=2,vocab=50", "--hidden", "16,8",
                           "--embedding-dim", "4", "--eval-fraction", "0.95", "--max-steps", "1", "--save", ck},
                          log);
  const bool cue = wait_for(pid, log, "eval rows 819200/1900000");
  if (cue) kill(pid, SIGINT);
  const int rc = wait_exit(pid);
  const std::string text = slurp(log);
  INFO(text);
  REQUIRE(cue);  // progress during evaluation, in the training lines' style
  CHECK(rc == 130);
  CHECK(text.find("train: interrupted by signal 2 during the evaluation after step 1") != std::string::npos);
  CHECK(text.find("(checkpoint saved)") != std::string::npos);
  CHECK(text.find("eval rows 1900000/1900000") == std::string::npos);
  CHECK(fs::exists(fs::path(ck) / "manifest.json"));
  // `funnel eval` on a large set: the same progress, and a stop signal ends it without metrics.
  const std::string log2 = (d / "log2.txt").string();
  const pid_t e = spawn({"eval", "--checkpoint", ck, "--data", "synthetic:rows=2000000,fields=2,vocab=50",
                         "--batch-size", "1024"},
                        log2);
  const bool cue2 = wait_for(e, log2, "eval rows 204800/2000000");
  if (cue2) kill(e, SIGTERM);
  const int rc2 = wait_exit(e);
  const std::string text2 = slurp(log2);
  INFO(text2);
  REQUIRE(cue2);
  CHECK(rc2 == 128 + SIGTERM);
  CHECK(text2.find("eval: interrupted by signal 15 after ") != std::string::npos);
  CHECK(text2.find("no metrics written") != std::string::npos);
  fs::remove_all(d);
}
