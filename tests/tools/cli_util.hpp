#pragma once
// Running the `funnel` binary from the CLI tests: a shell command's exit code and output, temp dirs, file text.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/files.hpp"

namespace funnel::test {

inline const std::string kFunnel = std::string(FUNNEL_BIN_DIR) + "/funnel";

struct Run {
  int code;         // exit code, or 128 + signal
  std::string out;  // what the command printed (stdout, plus stderr when merged)
};

// Runs a shell command line and collects its stdout.
inline Run run_shell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), out};
}

// Runs `funnel <args>`; stderr merged into the output, or dropped.
inline Run run_funnel(const std::string& args, bool merge_stderr) {
  return run_shell(kFunnel + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null"));
}

// An empty directory /tmp/funnel_<name>_<pid>.
inline std::filesystem::path fresh_temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("funnel_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace funnel::test
