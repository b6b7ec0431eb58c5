// Per-stage metrics and GAUC from the command line: `--stages 3` reports three stages; a csv user column and
// Ali-CCP data (the Ali-CCP-shaped files funnel-synth writes) report GAUC.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "data/aliccp_synth.hpp"
#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {
using funnel::test::Run;
using funnel::test::slurp;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 256 --threads 1";
const std::string kFixtures = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/";
}  // namespace

TEST_CASE("train --stages 3 prints and writes every stage's metrics", "[cli][metrics]") {
  const fs::path d = funnel::test::fresh_temp_dir("cli_metrics_stages");
  Run t = run("train --data synthetic:rows=6000,fields=4,vocab=30,seed=5,stages=3,ctr=0.2,ctcvr=0.08" + kModel +
              " --stages 3 --metrics-json " + (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  CHECK(t.out.find("stage2_auc") != std::string::npos);
  CHECK(t.out.find("stage2_cond_auc") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(slurp(d / "m.json"));
  const auto& st = j["epochs"][0]["stages"];
  REQUIRE(st.size() == 3);
  CHECK(st[2]["name"] == "stage2");
  CHECK(st[2]["auc"].is_number());
  CHECK(st[2]["cond_logloss"].is_number());
  CHECK(j["epochs"][0]["ctr_auc"].get<double>() == st[0]["auc"].get<double>());
  CHECK(j["epochs"][0]["cvr_auc"].get<double>() == st[1]["cond_auc"].get<double>());
}

TEST_CASE("train --user-column on the Ali-CCP csv fixture reports GAUC per stage", "[cli][metrics][gauc]") {
  const fs::path d = funnel::test::fresh_temp_dir("cli_metrics_gauc");
  // Field 101 of Ali-CCP is the user id.
  const std::string data = " --data csv:" + kFixtures + "rechub_train_sample.csv --eval-fraction 0.5";
  Run t = run("train" + data + kModel + " --user-column 101 --metrics-json " + (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  CHECK(t.out.find("ctr_gauc") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(slurp(d / "m.json"));
  const auto& e = j["epochs"][0];
  REQUIRE(e.contains("ctr_gauc"));
  REQUIRE(e["stages"][0].contains("gauc"));
  CHECK(e["stages"][0]["gauc"] == e["ctr_gauc"]);
  // Without the flag: no GAUC.
  Run plain = run("train" + data + kModel + " --metrics-json " + (d / "p.json").string());
  REQUIRE(plain.code == 0);
  CHECK_FALSE(nlohmann::json::parse(slurp(d / "p.json"))["epochs"][0].contains("ctr_gauc"));
  // Bad values exit 2 naming the flag.
  Run bad = run("train" + data + kModel + " --user-column nobody");
  CHECK(bad.code != 0);
  CHECK(bad.out.find("nobody") != std::string::npos);
  Run not_csv = run("train --data synthetic:rows=2000" + kModel + " --user-column 101");
  CHECK(not_csv.code == 2);
  CHECK(not_csv.out.find("--user-column") != std::string::npos);
}

TEST_CASE("train on Ali-CCP-shaped data reports GAUC by common-feature index", "[cli][metrics][gauc]") {
  const fs::path d = funnel::test::fresh_temp_dir("cli_metrics_aliccp");
  funnel::AliccpSynthConfig c;  // what funnel-synth writes for --format aliccp
  c.rows = 3000;
  c.seed = 3;
  fs::create_directories(d / "raw");
  funnel::write_aliccp_synth(c, (d / "raw").string());
  Run t = run("train --data aliccp:" + (d / "raw").string() + " --buckets 256" + kModel + " --metrics-json " +
              (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(d / "m.json"));
  const auto& e = j["epochs"][0];
  REQUIRE(e["stages"][0].contains("gauc"));
  CHECK(e["stages"][0]["gauc"].is_number());
  CHECK(e.contains("cvr_gauc"));
}
