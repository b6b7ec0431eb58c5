// ESMM trained end to end through `funnel` on every real-data format: the shipped csv and slots samples, a raw
// Ali-CCP directory written here in the release format (multi-valued and absent fields), and a binary cache made
// by `funnel convert`; bad rows fail with file and line, or are skipped and counted.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kFixtures = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 32 --threads 1 --epochs 2";

using funnel::test::Run;
using funnel::test::slurp;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("cli_data_" + name); }
std::size_t count_lines(const std::string& s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n')); }

std::string feat(const std::string& field, const std::string& id, const std::string& value = "1.0") {
  return field + '\x02' + id + '\x03' + value;
}

// A raw Ali-CCP directory: `users` common-feature rows (user fields, multi-valued 109_14 / 150_14, some absent)
// and `rows` skeleton rows (item fields, 210 sometimes absent); clicks ~20%, conversions ~25% of clicks. The
// label depends on item field 205 so there is something to learn. Lines listed in `bad` are replaced by them.
void write_aliccp(const fs::path& dir, int users, int rows, const std::map<int, std::string>& bad = {}) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  {
    std::ofstream c(dir / "common_features_train.csv", std::ios::binary);
    for (int i = 0; i < users; ++i) {
      std::string list = feat("101", std::to_string(1000 + i)) + '\x01' + feat("121", std::to_string(i % 7));
      int n = 2;
      const int multi = static_cast<int>(rng() % 4);  // 0..3 values of 109_14 (0: field absent)
      for (int k = 0; k < multi; ++k, ++n) list += '\x01' + feat("109_14", std::to_string(rng() % 50), "0.5");
      if (i % 3 == 0) list += '\x01' + feat("150_14", std::to_string(i % 11), "2.0"), ++n;
      c << "u" << i << "," << n << "," << list << "\n";
    }
  }
  std::ofstream s(dir / "sample_skeleton_train.csv", std::ios::binary);
  for (int r = 0; r < rows; ++r) {
    if (auto it = bad.find(r + 1); it != bad.end()) {
      s << it->second << "\n";
      continue;
    }
    const int item = static_cast<int>(rng() % 40);
    const double p_click = item < 10 ? 0.5 : 0.1;
    const int click = u(rng) < p_click ? 1 : 0;
    const int conv = click && u(rng) < (item % 2 ? 0.5 : 0.1) ? 1 : 0;
    std::string list = feat("205", std::to_string(item)) + '\x01' + feat("206", std::to_string(item % 5));
    int n = 2;
    if (r % 4) list += '\x01' + feat("210", std::to_string(item % 9)), ++n;
    s << r << "," << click << "," << conv << ",u" << (rng() % static_cast<unsigned>(users)) << "," << n << "," << list
      << "\n";
  }
}

// Trains ESMM on `data`, saves, predicts, and checks the predictions file: one row per input row, probabilities.
void train_and_predict(const std::string& data, std::size_t expect_rows, const fs::path& d) {
  Run t = run("train --data " + data + kModel + " --save " + (d / "ck").string() + " --metrics-json " +
              (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  CHECK(t.out.find("ctr_auc") != std::string::npos);
  auto m = nlohmann::json::parse(slurp(d / "m.json"));
  REQUIRE(m.contains("epochs"));
  CHECK(m["epochs"].size() == 2);
  Run p = run("predict --checkpoint " + (d / "ck").string() + " --data " + data + " --out " + (d / "p.csv").string());
  INFO(p.out);
  REQUIRE(p.code == 0);
  const std::string pred = slurp(d / "p.csv");
  REQUIRE(pred.rfind("row,pctr,pcvr,pctcvr\n", 0) == 0);
  CHECK(count_lines(pred) == expect_rows + 1);
  std::istringstream in(pred.substr(pred.find('\n') + 1));
  double a, b, c;
  long long row, expect_row = 1;
  char comma;
  while (in >> row >> comma >> a >> comma >> b >> comma >> c) {
    CHECK(row == expect_row++);
    CHECK(a >= 0.0);
    CHECK(a <= 1.0);
    CHECK(c <= a + 1e-6);  // pCTCVR = pCTR · pCVR
  }
  Run e = run("eval --checkpoint " + (d / "ck").string() + " --data " + data);
  INFO(e.out);
  CHECK(e.code == 0);
  CHECK(e.out.find("cvr_auc") != std::string::npos);
}
}  // namespace

TEST_CASE("ESMM trains, predicts and evaluates on the torch-rechub csv sample", "[cli][data]") {
  fs::path d = temp_dir("csv");
  train_and_predict("csv:" + kFixtures + "rechub_train_sample.csv", 100, d);
  fs::remove_all(d);
}

TEST_CASE("ESMM trains on the PaddleRec slots sample (multi-valued fields)", "[cli][data]") {
  fs::path d = temp_dir("slots");
  train_and_predict("slots:" + kFixtures + "paddlerec_esmm_train_small.txt", 10, d);
  fs::remove_all(d);
}

TEST_CASE("ESMM trains on a raw Ali-CCP directory and on its converted cache", "[cli][data]") {
  fs::path d = temp_dir("aliccp");
  fs::create_directories(d / "raw");
  write_aliccp(d / "raw", 60, 1500);
  train_and_predict("aliccp:" + (d / "raw").string() + ":train", 1500, d);

  Run c = run("convert --data aliccp:" + (d / "raw").string() + " --out " + (d / "data.cache").string());
  INFO(c.out);
  REQUIRE(c.code == 0);
  CHECK(c.out.find("1500 rows") != std::string::npos);
  fs::path d2 = d / "cache";
  fs::create_directories(d2);
  train_and_predict("cache:" + (d / "data.cache").string(), 1500, d2);
  // The cached data gives the same predictions as the raw data (same map, same rows).
  Run p = run("predict --checkpoint " + (d / "ck").string() + " --data cache:" + (d / "data.cache").string() +
              " --out " + (d / "p_cache.csv").string());
  REQUIRE(p.code == 0);
  CHECK(slurp(d / "p_cache.csv") == slurp(d / "p.csv"));
  fs::remove_all(d);
}

TEST_CASE("bad Ali-CCP rows: an error naming file and line, or skipped and counted by reason", "[cli][data]") {
  fs::path d = temp_dir("bad");
  write_aliccp(d, 20, 400, {{5, "5,1,1,u3,2,garbage"}, {9, "9,0,1,u1,1," + feat("205", "1")}, {12, "12,1,0,u999,1," + feat("205", "1")}});
  const std::string spec = "aliccp:" + d.string();
  Run bad = run("train --data " + spec + kModel);
  INFO(bad.out);
  CHECK(bad.code == 1);
  CHECK(bad.out.find("sample_skeleton_train.csv:5") != std::string::npos);

  Run skip = run("train --data " + spec + kModel + " --on-bad-row skip");
  INFO(skip.out);
  CHECK(skip.code == 0);
  CHECK(skip.out.find("skipped 3 of 400 rows") != std::string::npos);
  CHECK(skip.out.find("conversion_without_click=1") != std::string::npos);
  CHECK(skip.out.find("unknown_common_index=1") != std::string::npos);

  Run conv = run("convert --data " + spec + " --out " + (d / "x.cache").string() + " --on-bad-row skip");
  INFO(conv.out);
  CHECK(conv.code == 0);
  CHECK(conv.out.find("397 kept, 3 skipped") != std::string::npos);

  Run syn = run("convert --data synthetic --out " + (d / "y.cache").string());
  CHECK(syn.code == 2);
  CHECK_FALSE(fs::exists(d / "y.cache"));
  Run missing = run("convert --data csv:" + (d / "nope.csv").string() + " --out " + (d / "z.cache").string());
  CHECK(missing.code == 1);
  CHECK(missing.out.find("nope.csv") != std::string::npos);
  fs::remove_all(d);
}
