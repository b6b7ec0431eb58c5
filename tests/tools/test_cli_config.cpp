// The command line as a user reads it: help with meanings, defaults and allowed values; --config FILE; the
// effective configuration in checkpoints and metrics; predict's one line per input row; headerless csv with the
// checkpoint's columns; what a resumed run says it did.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {
const std::string kSmall = "synthetic:rows=3000,fields=4,vocab=30,seed=5";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 256 --threads 1";

using funnel::test::Run;
using funnel::test::slurp;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("cfg_" + name); }

void write(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}
}  // namespace

TEST_CASE("every flag of every command has a meaning in --help", "[cli][help]") {
  for (const char* cmd : {"train", "eval", "predict", "compare", "convert", "dot", "gradcheck", "ops", "models"}) {
    Run h = run(std::string(cmd) + " --help");
    INFO(cmd << ": " << h.out);
    REQUIRE(h.code == 0);
    CHECK(h.out.find("(undocumented flag)") == std::string::npos);
    CHECK(h.out.find("--config FILE") != std::string::npos);
  }
  Run t = run("train --help");
  // Each of these flags is listed with its meaning and default.
  for (const char* line : {"--epochs INT", "passes over the training data (default: 1; allowed: ≥ 1)", "--data SPEC",
                           "--hidden LIST", "default: 200,80", "--no-shuffle", "--lr NUM",
                           "0.002 (adam), 0.05 (adagrad, sgd)", "--on-bad-row TEXT", "allowed: error, skip"})
    CHECK(t.out.find(line) != std::string::npos);
  // Command-specific meanings: dot's --seed is the numeric probe's, predict's --out is one line per input row.
  CHECK(run("dot --help").out.find("seed of the numeric gradient-flow probe") != std::string::npos);
  CHECK(run("predict --help").out.find("one line per input row") != std::string::npos);
}

TEST_CASE("a flag without its value, a stray argument and an unknown flag exit 2 naming it", "[cli][help]") {
  Run a = run("train --epochs");
  CHECK(a.code == 2);
  CHECK(a.out.find("--epochs") != std::string::npos);
  Run b = run("train stray");
  CHECK(b.code == 2);
  CHECK(b.out.find("unexpected argument 'stray'") != std::string::npos);
  Run c = run("train --epochz 3");
  CHECK(c.code == 2);
  CHECK(c.out.find("unknown flag --epochz") != std::string::npos);
  // A flag that does not apply is an error, not ignored.
  Run e = run("train --data " + kSmall + " --eval-data " + kSmall + " --eval-fraction 0.3");
  CHECK(e.code == 2);
  CHECK(e.out.find("--eval-fraction: does not apply with --eval-data") != std::string::npos);
  // --name=value works like --name value; a repeated flag: the last one counts.
  Run d = run("train --data=" + kSmall + kModel + " --max-steps=3 --max-steps 2 --epochs=1");
  INFO(d.out);
  CHECK(d.code == 0);
  CHECK(d.out.find("this run") == std::string::npos);  // not a resumed run
}

TEST_CASE("a config file (--config FILE) describes a run, command-line flags win, the effective configuration is saved",
          "[cli][config]") {
  fs::path d = temp_dir("config");
  write(d / "run.toml",
        "# a run as a file\n"
        "data = \"" + kSmall + "\"\n"
        "embedding-dim = 4\n"
        "hidden = [8, 4]\n"
        "batch-size = 256\n"
        "epochs = 3\n"
        "max-steps = 4\n"
        "optimizer = \"sgd\"\n"
        "no-shuffle = true\n");
  Run t = run("train --config " + (d / "run.toml").string() + " --epochs 1 --save " + (d / "ck").string() +
              " --metrics-json " + (d / "m.json").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  auto m = nlohmann::json::parse(slurp(d / "m.json"));
  REQUIRE(m.contains("config"));
  const auto& c = m["config"];
  CHECK(c["epochs"] == 1);  // the command line won over the file's 3
  CHECK(c["embedding-dim"] == 4);
  CHECK(c["hidden"] == "8,4");
  CHECK(c["optimizer"] == "sgd");
  CHECK(c["lr"].get<double>() == Approx(0.05));  // sgd's default learning rate, resolved
  CHECK(c["no-shuffle"] == true);
  CHECK(c["quiet"] == false);
  CHECK(c["max-steps"] == 4);
  CHECK(m["steps"] == 4);
  CHECK(m["model"]["dim"] == 4);
  // The checkpoint holds the same configuration.
  auto man = nlohmann::json::parse(slurp(d / "ck" / "manifest.json"));
  REQUIRE(man.contains("config"));
  CHECK(man["config"] == c);

  // An unknown key in the file is an error naming it; so is a missing file; neither trains.
  write(d / "bad.toml", "epochz = 3\n");
  Run b = run("train --config " + (d / "bad.toml").string() + " --data " + kSmall);
  CHECK(b.code == 2);
  CHECK(b.out.find("epochz") != std::string::npos);
  Run nf = run("train --config " + (d / "missing.toml").string());
  CHECK(nf.code == 2);
  CHECK(nf.out.find("--config") != std::string::npos);
  // The config file is an input: no output may replace it.
  Run o = run("train --config " + (d / "run.toml").string() + " --metrics-json " + (d / "run.toml").string());
  CHECK(o.code == 1);  // as for any output that is an input
  CHECK(o.out.find("input") != std::string::npos);
  CHECK(o.out.find("step ") == std::string::npos);  // refused before training
  CHECK(slurp(d / "run.toml").find("# a run as a file") == 0);

  // eval records its configuration in its metrics too.
  Run e = run("eval --checkpoint " + (d / "ck").string() + " --data " + kSmall + " --metrics-json " +
              (d / "e.json").string());
  INFO(e.out);
  REQUIRE(e.code == 0);
  auto ej = nlohmann::json::parse(slurp(d / "e.json"));
  CHECK(ej["config"]["checkpoint"] == (d / "ck").string());
  CHECK(ej["config"]["batch-size"] == 4096);
  fs::remove_all(d);
}

TEST_CASE("predict writes one line per input row and skipped rows keep theirs with empty predictions", "[cli][predict]") {
  fs::path d = temp_dir("rows");
  std::string csv = "click,purchase,f1,f2\n";
  for (int i = 0; i < 400; ++i)
    csv += std::to_string(i % 7 == 0) + "," + std::to_string(i % 21 == 0) + ",a" + std::to_string(i % 9) + ",b" +
           std::to_string(i % 5) + "\n";
  write(d / "train.csv", csv);
  Run t = run("train --data csv:" + (d / "train.csv").string() + kModel + " --max-steps 3 --save " +
              (d / "ck").string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  // Rows 2 and 4 are malformed (a bad label, a missing column).
  write(d / "new.csv", "click,purchase,f1,f2\n1,0,a1,b1\nx,0,a2,b2\n0,0,a3,b3\n0,0,a4\n1,1,a5,b5\n");
  Run p = run("predict --checkpoint " + (d / "ck").string() + " --data csv:" + (d / "new.csv").string() +
              " --on-bad-row skip --out " + (d / "p.csv").string());
  INFO(p.out);
  REQUIRE(p.code == 0);
  CHECK(p.out.find("2 skipped input rows have empty predictions") != std::string::npos);
  auto l = lines_of(slurp(d / "p.csv"));
  REQUIRE(l.size() == 6);
  CHECK(l[0] == "row,pctr,pcvr,pctcvr");
  CHECK(l[1].rfind("1,0.", 0) == 0);
  CHECK(l[2] == "2,,,");
  CHECK(l[3].rfind("3,0.", 0) == 0);
  CHECK(l[4] == "4,,,");
  CHECK(l[5].rfind("5,0.", 0) == 0);

  // A headerless file is read with the checkpoint's training columns (--no-header)...
  write(d / "nohead.csv", "1,0,a1,b1\n0,0,a3,b3\n");
  Run n = run("predict --checkpoint " + (d / "ck").string() + " --data csv:" + (d / "nohead.csv").string() +
              " --no-header --out " + (d / "n.csv").string());
  INFO(n.out);
  REQUIRE(n.code == 0);
  auto nl = lines_of(slurp(d / "n.csv"));
  REQUIRE(nl.size() == 3);
  // ...and gives the same predictions as the same rows with their header.
  CHECK(nl[1] == l[1]);
  CHECK(nl[2].substr(nl[2].find(',')) == l[3].substr(l[3].find(',')));
  Run ne = run("eval --checkpoint " + (d / "ck").string() + " --data csv:" + (d / "nohead.csv").string() +
               " --no-header");
  INFO(ne.out);
  CHECK(ne.code == 0);
  // Without --no-header the first data line would be taken for a header: a clear error, not a silent guess.
  Run bad = run("predict --checkpoint " + (d / "ck").string() + " --data csv:" + (d / "nohead.csv").string() +
                " --out " + (d / "b.csv").string());
  CHECK(bad.code != 0);
  // --no-header needs csv data and a checkpoint trained on csv.
  Run syn = run("train --data " + kSmall + kModel + " --max-steps 2 --save " + (d / "ck_syn").string());
  REQUIRE(syn.code == 0);
  Run ns = run("predict --checkpoint " + (d / "ck_syn").string() + " --data csv:" + (d / "nohead.csv").string() +
               " --no-header --out " + (d / "c.csv").string());
  CHECK(ns.code == 2);
  CHECK(ns.out.find("--no-header") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("a resumed run says where it started and what it did", "[cli][init]") {
  fs::path d = temp_dir("resume");
  Run a = run("train --data " + kSmall + kModel + " --max-steps 5 --save " + (d / "ck").string());
  INFO(a.out);
  REQUIRE(a.code == 0);
  Run b = run("train --data " + kSmall + kModel + " --max-steps 3 --init " + (d / "ck").string() + " --save " +
              (d / "ck2").string() + " --metrics-json " + (d / "m.json").string());
  INFO(b.out);
  REQUIRE(b.code == 0);
  CHECK(b.out.find("resuming " + (d / "ck").string() + " at step 5 (parameters and optimizer state)") !=
        std::string::npos);
  CHECK(b.out.find("this run: 3 steps (steps 6..8 of the model") != std::string::npos);
  auto m = nlohmann::json::parse(slurp(d / "m.json"));
  CHECK(m["run_steps"] == 3);
  CHECK(m["steps"] == 8);
  CHECK(m["resumed_from"]["step"] == 5);
  Run c = run("train --data " + kSmall + kModel + " --max-steps 1 --init " + (d / "ck2").string() +
              " --reset-optimizer --optimizer sgd");
  INFO(c.out);
  REQUIRE(c.code == 0);
  CHECK(c.out.find("parameters only: the optimizer starts afresh") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("sizes that cannot be allocated exit 2 naming the flag, before training", "[cli][help]") {
  const std::string csv = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/rechub_train_sample.csv";
  Run a = run("train --data csv:" + csv + " --buckets 100000000000");
  CHECK(a.code == 2);
  CHECK(a.out.find("--buckets") != std::string::npos);
  // 2^24 rows per field × 4096 wide with Adam's slots: far more than any machine's memory; said before training.
  Run b = run("train --data csv:" + csv + " --buckets 16777216 --embedding-dim 4096");
  CHECK(b.code == 2);
  CHECK(b.out.find("--embedding-dim / --buckets") != std::string::npos);
  CHECK(b.out.find("bad_alloc") == std::string::npos);
  CHECK(b.out.find("step ") == std::string::npos);
}
