// Outputs and inputs, end to end: dot writes by the output rules every command follows, no output may be the
// --config file or another output of the same run, a run's own metrics file beside its checkpoint is its own,
// a FIFO given as a cache is refused at once; runs that must not pass (bad flags exit 2 before any data is read,
// a data set too small to hold out rows); messages that name what they mean; every recorded effective configuration
// reads back through --config; the checkpoint's epoch; funnel-synth's splits share one world.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/cli_util.hpp"

namespace fs = std::filesystem;
using Catch::Contains;

namespace {
const std::string kSmall = "synthetic:rows=600,fields=3,vocab=20,seed=3";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 128 --threads 1";
using funnel::test::Run;
using funnel::test::slurp;
using funnel::test::spit;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("reliab_" + name); }
// Single-quoted for the shell (appended piece by piece: GCC 12 warns falsely about "'" + s + "'").
std::string q(const fs::path& p) {
  std::string s(1, '\'');
  s += p.string();
  s += '\'';
  return s;
}

std::string small_csv(const fs::path& dir) {
  const fs::path csv = dir / "data.csv";
  std::string text = "click,purchase,user,item\n";
  for (int i = 0; i < 300; ++i)
    text += std::to_string(i % 3 == 0) + "," + std::to_string(i % 9 == 0) + ",u" + std::to_string(i % 17) + ",i" +
            std::to_string(i % 5) + "\n";
  spit(csv, text);
  return csv.string();
}

// A recorded effective configuration as a --config file: `name = value` lines.
std::string toml_of(const nlohmann::json& config) {
  std::string out;
  for (auto it = config.begin(); it != config.end(); ++it) {
    if (it.value().is_null()) continue;
    out += it.key() + " = " + it.value().dump() + "\n";
  }
  return out;
}
}  // namespace

// ------------------------------------------------------------------------------------------------ outputs

TEST_CASE("dot --out writes through a symlink and into a device in place, never replacing them", "[cli][reliability]") {
  const fs::path d = temp_dir("dot_out");
  spit(d / "real.dot", "old");
  fs::create_symlink(d / "real.dot", d / "link.dot");
  Run r = run("dot --out " + q(d / "link.dot"));
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK(fs::is_symlink(d / "link.dot"));
  CHECK_THAT(slurp(d / "real.dot"), Contains("digraph"));
  // A device node (a copy of /dev/null): written in place, still a device afterwards.
  const fs::path dev = d / "null.dot";
  if (::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    Run r2 = run("dot --out " + q(dev));
    INFO(r2.out);
    CHECK(r2.code == 0);
    struct stat st {};
    REQUIRE(::lstat(dev.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  } else {
    WARN("mknod is not permitted here: the device part of this test did not run");
  }
  // Into a missing directory: the message names the target and the reason, not a temporary file.
  Run r3 = run("dot --out " + q(d / "missing" / "g.dot"));
  CHECK(r3.code != 0);
  CHECK_THAT(r3.out, Contains("missing/g.dot") && Contains("does not exist"));
  CHECK(r3.out.find(".tmp") == std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("no command writes its output over its --config file", "[cli][reliability]") {
  const fs::path d = temp_dir("config_out");
  const std::string csv = small_csv(d);
  const fs::path cfg = d / "c.toml";
  const std::string text = "data = \"csv:" + csv + "\"\n";
  spit(cfg, text);
  Run c = run("convert --config " + q(cfg) + " --out " + q(cfg));
  INFO(c.out);
  CHECK(c.code != 0);
  CHECK_THAT(c.out, Contains("refusing to overwrite an input"));
  CHECK(slurp(cfg) == text);
  const fs::path dcfg = d / "d.dot";  // a name dot would write
  spit(dcfg, "model = \"esmm\"\n");
  Run g = run("dot --config " + q(dcfg) + " --out " + q(dcfg));
  INFO(g.out);
  CHECK(g.code != 0);
  CHECK_THAT(g.out, Contains("refusing to overwrite an input"));
  CHECK(slurp(dcfg) == "model = \"esmm\"\n");
  fs::remove_all(d);
}

TEST_CASE("two outputs of one run naming the same file are refused before any work", "[cli][reliability]") {
  const fs::path d = temp_dir("same_out");
  const fs::path f = d / "out.svg";
  Run t = run("train --data " + kSmall + kModel + " --plot " + q(f) + " --metrics-json " + q(f));
  INFO(t.out);
  CHECK(t.code == 2);
  CHECK_THAT(t.out, Contains("--metrics-json") && Contains("--plot") && Contains("same file"));
  CHECK_FALSE(fs::exists(f));
  Run c = run("compare --models esmm,base --data " + kSmall + kModel + " --plot " + q(f) + " --metrics-json " +
              q(d / "." / "out.svg"));
  INFO(c.out);
  CHECK(c.code == 2);
  CHECK_THAT(c.out, Contains("same file"));
  CHECK_FALSE(fs::exists(f));
  fs::remove_all(d);
}

TEST_CASE("a run's metrics file inside its checkpoint directory does not block the next save", "[cli][reliability]") {
  const fs::path d = temp_dir("metrics_in_save");
  const std::string args = "train --data " + kSmall + kModel + " --save " + q(d / "run") + " --metrics-json " +
                           q(d / "run" / "m.json");
  Run a = run(args);
  INFO(a.out);
  REQUIRE(a.code == 0);
  REQUIRE(fs::exists(d / "run" / "m.json"));
  Run b = run(args);
  INFO(b.out);
  CHECK(b.code == 0);
  CHECK(fs::exists(d / "run" / "m.json"));
  CHECK(fs::exists(d / "run" / "manifest.json"));
  // A file the run did not write is still refused.
  spit(d / "run" / "notes.txt", "mine");
  Run c = run(args);
  CHECK(c.code != 0);
  CHECK_THAT(c.out, Contains("notes.txt") && Contains("did not write"));
  fs::remove_all(d);
}

TEST_CASE("a FIFO given as a cache is refused at once", "[cli][reliability]") {
  const fs::path d = temp_dir("cache_fifo");
  const fs::path fifo = d / "c.cache";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  Run r = funnel::test::run_shell("timeout -s KILL 30 " + funnel::test::kFunnel + " train --data cache:" + q(fifo) +
                                  kModel + " 2>&1");
  INFO(r.out);
  CHECK(r.code == 1);  // a hang is killed by timeout(1): 128 + 9
  CHECK_THAT(r.out, Contains("regular file"));
  fs::remove_all(d);
}

// ------------------------------------------------------------------------------------------------ flags

TEST_CASE("bad flag values exit 2 naming the flag, before any data is read", "[cli][reliability]") {
  struct Case {
    std::string flags;
    std::vector<std::string> says;  // what the message must contain
  };
  const Case cases[] = {
      {" --hidden 200,,80", {"--hidden", "empty item"}},
      {" --on-bad-row foo", {"--on-bad-row", "foo"}},
      // --model-options: checked against the model with the other flags.
      {" --model esmm-mmoe --model-options expert=3", {"--model-options", "experts"}},
      {" --model esmm-mmoe --model-options experts=true", {"--model-options"}},
      {" --lr-schedule step", {"--lr-schedule", "cosine"}},
      {" --lr-min 0.001", {"--lr-min", "--lr-schedule"}},
      {" --lr-schedule cosine --lr 0.01 --lr-min 0.1", {"--lr-min"}},
  };
  for (const Case& c : cases) {
    Run r = run("train --data " + kSmall + kModel + c.flags);
    INFO(c.flags << "\n" << r.out);
    CHECK(r.code == 2);
    for (const std::string& want : c.says) CHECK_THAT(r.out, Contains(want));
    CHECK(r.out.find("synthetic:rows") == std::string::npos);  // the data is never loaded (its "train:" line)
  }
}

TEST_CASE("a data set too small to hold out evaluation rows is refused, never nan metrics", "[cli][reliability]") {
  Run r = run("train --data synthetic:rows=1" + kModel);
  INFO(r.out);
  CHECK(r.code != 0);
  CHECK_THAT(r.out, Contains("too few to hold out"));
  CHECK(r.out.find("nan") == std::string::npos);
}

TEST_CASE("config files: sections and binary files are named clearly", "[cli][reliability]") {
  const fs::path d = temp_dir("config_msgs");
  spit(d / "s.toml", "[train]\nepochs = 2\n");
  Run s = run("train --config " + q(d / "s.toml") + " --data " + kSmall + kModel);
  INFO(s.out);
  CHECK(s.code == 2);
  CHECK_THAT(s.out, Contains("s.toml:1") && Contains("[train]") && Contains("not supported") &&
                        Contains("name = value"));
  spit(d / "b.toml", std::string("\x7f" "ELF\x02\x01\x01\x00\x00\xff\xfe", 12));
  Run b = run("train --config " + q(d / "b.toml") + " --data " + kSmall + kModel);
  INFO(b.out);
  CHECK(b.code == 2);
  CHECK_THAT(b.out, Contains("not a text file") && Contains("\\x7fELF"));
  for (char c : b.out) CHECK((static_cast<unsigned char>(c) >= 0x20 || c == '\n'));
  fs::remove_all(d);
}

TEST_CASE("messages: synthetic evaluation data for a model trained on a csv says so, without a checkpoint",
          "[cli][reliability]") {
  const fs::path d = temp_dir("eval_kind");
  Run r = run("train --data csv:" + small_csv(d) + kModel + " --eval-data synthetic");
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Contains("synthetic") && Contains("feature map"));
  CHECK(r.out.find("checkpoint") == std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("train --help's --model-options example names options that models have", "[cli][reliability]") {
  Run h = run("train --help");
  REQUIRE(h.code == 0);
  const auto at = h.out.find("--model-options");
  REQUIRE(at != std::string::npos);
  const std::string line = h.out.substr(at, h.out.find('\n', at) - at);
  const Run models = run("models");
  std::regex opt("([a-z_]+)=[0-9.]+");
  int n = 0;
  for (std::sregex_iterator it(line.begin(), line.end(), opt), end; it != end; ++it, ++n) {
    INFO((*it)[1].str());
    CHECK_THAT(models.out, Contains("--model-options " + (*it)[1].str() + "="));
  }
  CHECK(n > 0);
}

// ------------------------------------------------------------------------------------------------ records

TEST_CASE("every recorded effective configuration reads back through --config", "[cli][reliability]") {
  const fs::path d = temp_dir("roundtrip");
  const std::string ck = (d / "ck").string(), m = (d / "m.json").string();
  Run t = run("train --data " + kSmall + kModel + " --save " + q(ck) + " --metrics-json " + q(m) + " --epochs 2");
  INFO(t.out);
  REQUIRE(t.code == 0);
  const nlohmann::json rec = nlohmann::json::parse(slurp(m)).at("config");
  const nlohmann::json manifest = nlohmann::json::parse(slurp(fs::path(ck) / "manifest.json"));
  CHECK(manifest.at("config") == rec);
  CHECK(rec.at("precision") == "fp32");
  CHECK(manifest.at("epoch") == 2);  // the epochs trained into the model
  // train: the recorded configuration as the only source of flags gives the same effective configuration.
  spit(d / "train.toml", toml_of(rec));
  Run t2 = run("train --config " + q(d / "train.toml"));
  INFO(t2.out);
  REQUIRE(t2.code == 0);
  CHECK(nlohmann::json::parse(slurp(m)).at("config") == rec);
  // eval.
  const std::string e = (d / "e.json").string();
  Run ev = run("eval --checkpoint " + q(ck) + " --data " + kSmall + " --metrics-json " + q(e));
  INFO(ev.out);
  REQUIRE(ev.code == 0);
  const nlohmann::json erec = nlohmann::json::parse(slurp(e)).at("config");
  spit(d / "eval.toml", toml_of(erec));
  Run ev2 = run("eval --config " + q(d / "eval.toml"));
  INFO(ev2.out);
  REQUIRE(ev2.code == 0);
  CHECK(nlohmann::json::parse(slurp(e)).at("config") == erec);
  // compare: each run records compare's configuration.
  const std::string c = (d / "c.json").string();
  Run cm = run("compare --models esmm,base --data " + kSmall + kModel + " --metrics-json " + q(c));
  INFO(cm.out);
  REQUIRE(cm.code == 0);
  const nlohmann::json crec = nlohmann::json::parse(slurp(c)).at("esmm").at("runs").at(0).at("config");
  spit(d / "compare.toml", toml_of(crec));
  Run cm2 = run("compare --config " + q(d / "compare.toml"));
  INFO(cm2.out);
  REQUIRE(cm2.code == 0);
  CHECK(nlohmann::json::parse(slurp(c)).at("esmm").at("runs").at(0).at("config") == crec);
  fs::remove_all(d);
}

// ------------------------------------------------------------------------------------------------ funnel-synth

TEST_CASE("funnel-synth: messages for a missing directory and --rows 0", "[cli][reliability][synth]") {
  const std::string synth = std::string(FUNNEL_BIN_DIR) + "/funnel-synth";
  Run m = funnel::test::run_shell(synth + " --out /nonexistent/funnel_dir --rows 10 2>&1");
  CHECK(m.code == 1);
  CHECK_THAT(m.out, Contains("does not exist"));
  Run z = funnel::test::run_shell(synth + " --out /tmp --rows 0 2>&1");
  CHECK(z.code == 2);
  CHECK_THAT(z.out, Contains("--rows: must be at least 1"));
}

TEST_CASE("funnel-synth: the test split comes from the train split's world, and a model carries over",
          "[cli][reliability][synth]") {
  const fs::path d = temp_dir("synth_world");
  const std::string synth = std::string(FUNNEL_BIN_DIR) + "/funnel-synth";
  Run s = funnel::test::run_shell(synth + " --out " + q(d) + " --rows 40000 --test-rows 20000 --users 150 --seed 4 2>&1");
  INFO(s.out);
  REQUIRE(s.code == 0);
  // The same users (same keys and features) in both splits' common-features files.
  const std::string ctr = slurp(d / "common_features_train.csv"), cte = slurp(d / "common_features_test.csv");
  CHECK(ctr.substr(0, ctr.find('\n')) == cte.substr(0, cte.find('\n')));
  // Trained on the train split, evaluated on the test split: better than a constant predictor (AUC 0.5, and the
  // log loss of the click rate).
  const std::string m = (d / "m.json").string();
  Run t = run("train --data aliccp:" + d.string() + ":train --eval-data aliccp:" + d.string() +
              ":test --buckets 1024 --embedding-dim 4 --hidden 16,8 --batch-size 256 --epochs 1 "
              "--metrics-json " + q(m));
  INFO(t.out);
  REQUIRE(t.code == 0);
  const nlohmann::json last = nlohmann::json::parse(slurp(m)).at("epochs").back();
  const double rate = last.at("click_rate").get<double>();
  const double constant_logloss = -(rate * std::log(rate) + (1 - rate) * std::log(1 - rate));
  CHECK(last.at("ctr_auc").get<double>() > 0.6);
  CHECK(last.at("ctr_logloss").get<double>() < constant_logloss);
  fs::remove_all(d);
}

TEST_CASE("a damaged checkpoint manifest is an error naming its field, never an allocation failure",
          "[cli][reliability]") {
  const fs::path d = temp_dir("manifest");
  const fs::path ck = d / "ck";
  Run t = run("train --data " + kSmall + kModel + " --save " + q(ck));
  INFO(t.out);
  REQUIRE(t.code == 0);
  const std::string good = slurp(ck / "manifest.json");
  nlohmann::json m = nlohmann::json::parse(good);
  m["model"]["vocab"] = std::int64_t{1} << 40;
  spit(ck / "manifest.json", m.dump(2));
  Run e = run("eval --checkpoint " + q(ck) + " --data " + kSmall);
  INFO(e.out);
  CHECK(e.code == 1);
  CHECK_THAT(e.out, Contains("model.vocab") && Contains("parameter files"));
  CHECK(e.out.find("bad_alloc") == std::string::npos);
  Run i = run("train --init " + q(ck) + " --data " + kSmall + " --max-steps 1");
  CHECK(i.code == 1);
  CHECK_THAT(i.out, Contains("model.vocab"));
  m = nlohmann::json::parse(good);
  m["data"] = nlohmann::json::object();
  spit(ck / "manifest.json", m.dump(2));
  Run e2 = run("eval --checkpoint " + q(ck) + " --data " + kSmall);
  INFO(e2.out);
  CHECK(e2.code == 1);
  CHECK_THAT(e2.out, Contains("field 'data'"));
  fs::remove_all(d);
}
