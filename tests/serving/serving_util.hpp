#pragma once
// Shared by the serving tests: small checkpoints trained by the `funnel` binary on the test fixtures, what
// `funnel predict` scores with them, and the fixtures' lines.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace funnel::test {

inline const std::string kFunnelBin = std::string(FUNNEL_BIN_DIR) + "/funnel";
inline const std::string kRechub = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/rechub_train_sample.csv";
inline const std::string kSlots = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/paddlerec_esmm_train_small.txt";

inline int shell(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// Trains `kind` for a few steps on `data` into `dir` (tiny dims); extra flags appended.
inline void train_checkpoint(const std::string& kind, const std::string& data, const std::string& dir,
                             const std::string& extra = "") {
  const std::string cmd = kFunnelBin + " train --quiet --model " + kind + " --data " + data +
                          " --embedding-dim 4 --hidden 8,4 --batch-size 16 --epochs 1 --save " + dir + " " + extra +
                          (extra.find("--min-count") == std::string::npos ? " --buckets 512" : "") +
                          " >/dev/null 2>&1";
  INFO(cmd);
  REQUIRE(shell(cmd) == 0);
}

inline std::vector<std::string> read_lines(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> v;
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

// `funnel predict` output: rows of values (the row number dropped).
inline std::vector<std::vector<double>> read_predictions(const std::string& file) {
  auto lines = read_lines(file);
  REQUIRE(!lines.empty());
  std::vector<std::vector<double>> out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::stringstream ss(lines[i]);
    std::string cell;
    std::getline(ss, cell, ',');
    std::vector<double> row;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    out.push_back(row);
  }
  return out;
}

// A checkpoint of `kind` trained on the rechub fixture in a fresh temporary directory (tag `tag`), and the rows
// `funnel predict` scores with it over the same file.
struct RechubCheckpoint {
  TempDir dir;
  std::string ck;
  std::vector<std::vector<double>> cli;
  RechubCheckpoint(const std::string& kind, const std::string& tag) : dir(tag), ck(dir.file("ck")) {
    train_checkpoint(kind, "csv:" + kRechub, ck);
    REQUIRE(shell(kFunnelBin + " predict --checkpoint " + ck + " --data csv:" + kRechub + " --out " +
                  dir.file("p.csv") + " 2>/dev/null") == 0);
    cli = read_predictions(dir.file("p.csv"));
  }
};

}  // namespace funnel::test
