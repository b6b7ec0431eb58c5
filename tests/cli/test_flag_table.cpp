// The options tables of the command line (cli/options.hpp) in process: every flag a command registers has help
// text, --help shows the options structs' own defaults, a bad value (command line or --config file) is a usage
// error naming the flag before any data is read, and a recorded configuration read back through --config gives the
// same run.
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "cli/train_flags.hpp"
#include "serving/predictor.hpp"
#include "support/temp_dir.hpp"

namespace {

using funnel::cli::Flags;
using funnel::cli::HelpRequested;
using funnel::cli::UsageError;

// argv for Flags and the commands (argv[0] is the command name).
struct Args {
  std::vector<std::string> text;
  std::vector<char*> ptrs;
  explicit Args(std::vector<std::string> a) : text(std::move(a)) {
    for (auto& s : text) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(text.size()); }
  char** argv() { return ptrs.data(); }
};

// What `funnel <command> --help` lists (the flags part), from the command itself.
std::string help_of(const std::string& command) {
  const funnel::cli::Command* c = funnel::cli::find_command(command);
  REQUIRE(c);
  Args a({command, "--help"});
  try {
    c->run(a.argc(), a.argv());
  } catch (const HelpRequested& h) {
    return h.what();
  }
  FAIL(command << " --help did not list its flags");
  return "";
}

// The help entry of --name (from its name to the next flag), or "".
std::string entry(const std::string& help, const std::string& name) {
  for (const char* after : {" ", "\n"}) {
    const auto at = help.find("\n  --" + name + after);
    if (at == std::string::npos) continue;
    const auto next = help.find("\n  -", at + 1);
    return help.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
  }
  return "";
}

// The default an entry shows ("" when it shows none).
std::string shown_default(const std::string& e) {
  const auto at = e.find("(default: ");
  if (at == std::string::npos) return "";
  const auto begin = at + 10;
  auto end = e.find("; allowed: ", begin);
  if (end == std::string::npos) end = e.rfind(')');
  return e.substr(begin, end - begin);
}

// The flags an entry list names: every "--name" at a line start.
std::vector<std::string> flag_names(const std::string& help) {
  std::vector<std::string> names;
  for (std::size_t at = help.find("\n  --"); at != std::string::npos; at = help.find("\n  --", at + 1)) {
    const auto begin = at + 5;
    const auto end = help.find_first_of(" \n", begin);
    names.push_back(help.substr(begin, end - begin));
  }
  return names;
}

funnel::cli::RunOptions run_with(std::vector<std::string> args) {
  Args a(std::move(args));
  Flags f(a.argc(), a.argv(), funnel::cli::train_flag_specs());
  return funnel::cli::run_options(f);
}

// A recorded configuration as a --config file: `name = value` lines.
std::string as_toml(const nlohmann::json& config) {
  std::string t;
  for (const auto& item : config.items()) t += item.key() + " = " + item.value().dump() + "\n";
  return t;
}

}  // namespace

TEST_CASE("every flag of every command has help text", "[cli][flags]") {
  for (const funnel::cli::Command* c : funnel::cli::commands()) {
    const std::string h = help_of(c->name);
    INFO(c->name << ":\n" << h);
    CHECK(h.find("(undocumented flag)") == std::string::npos);  // what a flag without a meaning shows
    CHECK(!flag_names(h).empty());
  }
  for (const auto& s : funnel::cli::train_flag_specs()) {
    INFO("--" << s.name);
    CHECK(!s.help.meaning.empty());
  }
  // Every row of the tables has a meaning, and a flag is named by one row only.
  std::set<std::string> names;
  for (const auto& r : funnel::cli::run_option_table()) {
    INFO(r.name);
    CHECK(!r.meaning.empty());
    CHECK(names.insert(r.name).second);
  }
  for (const auto& r : funnel::cli::read_option_table()) {
    INFO(r.name);
    CHECK(!r.meaning.empty());
    CHECK(names.insert(r.name).second);
  }
}

TEST_CASE("--help shows the options structs' own defaults", "[cli][flags]") {
  const std::string train = help_of("train");
  INFO(train);
  auto dflt = [&](const std::string& name) { return shown_default(entry(train, name)); };
  // Spelled out against the structs' default member initializers.
  const funnel::TrainOptions t;
  const funnel::ModelConfig m;
  const funnel::TrainerOptions o;
  const funnel::DataSources d;
  const funnel::ReadOptions r;
  CHECK(dflt("batch-size") == std::to_string(t.batch_size));
  CHECK(dflt("epochs") == std::to_string(t.epochs));
  CHECK(dflt("max-steps") == std::to_string(t.max_steps));
  CHECK(dflt("seed") == std::to_string(t.seed));
  CHECK(dflt("save-every") == std::to_string(t.save_every));
  CHECK(dflt("shuffle-window") == std::to_string(t.shuffle_window));
  CHECK(dflt("prefetch") == std::to_string(t.prefetch));
  CHECK(dflt("lr-schedule") == funnel::lr_schedule_name(t.lr_schedule.kind));
  CHECK(dflt("no-shuffle") == (t.shuffle ? "off" : "on"));
  CHECK(dflt("model") == m.kind);
  CHECK(dflt("embedding-dim") == std::to_string(m.dim));
  CHECK(dflt("stages") == std::to_string(m.num_stages));
  CHECK(dflt("hidden") == std::to_string(m.hidden.at(0)) + "," + std::to_string(m.hidden.at(1)));
  CHECK(dflt("optimizer") == o.optimizer);
  CHECK(dflt("threads") == std::to_string(o.threads));
  CHECK(dflt("precision") == funnel::gemm_precision_name(o.precision));
  CHECK(dflt("data") == d.train);
  char frac[32];
  std::snprintf(frac, sizeof frac, "%g", d.eval_fraction);
  CHECK(dflt("eval-fraction") == frac);
  CHECK(dflt("buckets") == std::to_string(r.mapping.buckets));
  CHECK(dflt("check-replicas") == std::to_string(funnel::StrategyOptions{}.check_every));
  CHECK(dflt("max-rows") == std::to_string(r.max_rows));
  // --lr: each optimizer's own default.
  for (const funnel::OptimizerDef* def : funnel::optimizer_defs()) CHECK(dflt("lr").find(def->name) != std::string::npos);

  // Every row: what --help shows is what a run without the flag holds (the struct keeps its default) and what the
  // effective configuration records.
  Args none({"train"});
  Flags f(none.argc(), none.argv(), funnel::cli::train_flag_specs());
  const funnel::cli::RunOptions ran = funnel::cli::run_options(f);
  const nlohmann::json config = f.effective();
  for (const auto& row : funnel::cli::run_option_table()) {
    INFO("--" << row.name << ": " << entry(train, row.name));
    REQUIRE(!entry(train, row.name).empty());
    const std::string shown = dflt(row.name);
    CHECK(shown == row.text(ran));
    CHECK(shown == row.text(funnel::cli::RunOptions{}));
    if (row.recorded && !row.type.empty() && !shown.empty()) {
      REQUIRE(config.contains(row.name));
      const nlohmann::json& v = config[row.name];
      if (v.is_string()) CHECK(v.get<std::string>() == shown);
      else if (v.is_number_integer()) CHECK(std::to_string(v.get<long long>()) == shown);
      else CHECK(v.get<double>() == Approx(std::stod(shown)));
    }
  }
  for (const auto& row : funnel::cli::read_option_table()) {
    INFO("--" << row.name);
    CHECK(dflt(row.name) == row.text(funnel::ReadOptions{}));
  }

  // eval's and predict's batches are the loop's evaluation batches; predict's passes are the Predictor's.
  for (const char* cmd : {"eval", "predict"})
    CHECK(shown_default(entry(help_of(cmd), "batch-size")) == std::to_string(t.eval_batch_size));
  CHECK(shown_default(entry(help_of("predict"), "max-batch")) == std::to_string(funnel::PredictorOptions{}.max_batch));

  // compare holds out half of the data: its one default of its own, shown and used.
  const std::string compare = help_of("compare");
  CHECK(shown_default(entry(compare, "eval-fraction")) == "0.5");
  CHECK(shown_default(entry(compare, "batch-size")) == std::to_string(t.batch_size));
  // compare shares train's rows: the same help for the same flag.
  for (const char* shared : {"batch-size", "epochs", "lr", "optimizer", "hidden", "threads", "precision", "on-bad-row"})
    CHECK(entry(compare, shared) == entry(train, shared));
}

TEST_CASE("a bad value exits 2 naming the flag, from the command line or a --config file, before any data",
          "[cli][flags]") {
  auto usage = [](std::vector<std::string> args) -> std::string {
    try {
      (void)run_with(std::move(args));
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  CHECK_THAT(usage({"train", "--batch-size", "0"}), Catch::StartsWith("--batch-size: must be at least 1"));
  CHECK_THAT(usage({"train", "--epochs", "many"}), Catch::StartsWith("--epochs: expected an integer"));
  CHECK_THAT(usage({"train", "--threads", "300"}), Catch::StartsWith("--threads: at most 256"));
  CHECK_THAT(usage({"train", "--eval-fraction", "1"}), Catch::StartsWith("--eval-fraction: must be 0 < x < 1"));
  CHECK_THAT(usage({"train", "--lr", "0"}), Catch::StartsWith("--lr: must be > 0"));
  CHECK_THAT(usage({"train", "--pool", "max"}), Catch::StartsWith("--pool: expected sum or mean, got 'max'"));
  CHECK_THAT(usage({"train", "--hidden", "200,,80"}), Catch::StartsWith("--hidden: empty item"));
  CHECK_THAT(usage({"train", "--optimizer", "lion"}), Catch::StartsWith("--optimizer: expected adam"));
  CHECK_THAT(usage({"train", "--on-bad-row", "maybe"}), Catch::StartsWith("--on-bad-row: expected error or skip"));
  CHECK(usage({"train", "--batch-size", "1"}) == "(accepted)");

  // The check is the CLI11 option's: parsing alone refuses the value.
  auto parse_error = [](std::vector<std::string> args) -> std::string {
    Args a(std::move(args));
    try {
      Flags f(a.argc(), a.argv(), funnel::cli::train_flag_specs());
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  CHECK_THAT(parse_error({"train", "--batch-size", "0"}), Catch::StartsWith("--batch-size: must be at least 1, got 0"));
  CHECK_THAT(parse_error({"train", "--shuffle-window", "x"}), Catch::StartsWith("--shuffle-window: expected an integer"));
  CHECK(parse_error({"train", "--batch-size", "2"}) == "(accepted)");

  funnel::test::TempDir d("flag_table");
  d.write("bad.toml", "batch-size = 0\n");
  CHECK_THAT(usage({"train", "--config", d.file("bad.toml")}), Catch::StartsWith("--batch-size: must be at least 1"));
  CHECK_THAT(parse_error({"train", "--config", d.file("bad.toml")}), Catch::StartsWith("--batch-size: must be"));
  d.write("bad_list.toml", "hidden = [8, 0]\n");
  CHECK_THAT(usage({"train", "--config", d.file("bad_list.toml")}), Catch::StartsWith("--hidden:"));

  // The whole command: exit 2, and the (missing) data file is never opened.
  Args a({"funnel", "train", "--data", "csv:" + d.file("absent.csv"), "--batch-size", "0"});
  CHECK(funnel::cli::run(a.argc(), a.argv()) == 2);
  Args c({"funnel", "compare", "--data", "csv:" + d.file("absent.csv"), "--prefetch", "2"});
  CHECK(funnel::cli::run(c.argc(), c.argv()) == 2);  // a flag compare does not take
}

TEST_CASE("a recorded configuration read back through --config gives the same run", "[cli][flags][config]") {
  funnel::test::TempDir d("flag_roundtrip");
  const funnel::cli::RunOptions a =
      run_with({"train", "--data", "synthetic:rows=100", "--batch-size", "64", "--hidden", "8,4", "--no-shuffle",
                "--optimizer", "sgd", "--lr-schedule", "cosine", "--lr-min", "0.001", "--pool", "mean",
                "--eval-fraction", "0.25", "--max-rows", "50", "--seed", "7"});
  CHECK(a.trainer.train.batch_size == 64);
  CHECK(a.trainer.model.hidden == std::vector<std::int64_t>{8, 4});
  CHECK(!a.trainer.train.shuffle);
  CHECK(a.trainer.opt.lr == Approx(0.05));  // sgd's default, resolved and recorded
  CHECK(a.trainer.config["lr"].get<double>() == Approx(0.05));
  d.write("run.toml", as_toml(a.trainer.config));
  INFO(as_toml(a.trainer.config));
  const funnel::cli::RunOptions b = run_with({"train", "--config", d.file("run.toml")});
  CHECK(b.trainer.config == a.trainer.config);
  CHECK(b.trainer.train.batch_size == 64);
  CHECK(b.trainer.model.hidden == a.trainer.model.hidden);
  CHECK(b.trainer.train.shuffle == a.trainer.train.shuffle);
  CHECK(b.trainer.optimizer == "sgd");
  CHECK(b.trainer.opt.lr == a.trainer.opt.lr);
  CHECK(b.trainer.train.lr_schedule.kind == funnel::LrScheduleKind::Cosine);
  CHECK(b.trainer.train.lr_schedule.min_lr == a.trainer.train.lr_schedule.min_lr);
  CHECK(b.trainer.model.pool == funnel::Pool::Mean);
  CHECK(b.data.eval_fraction == a.data.eval_fraction);
  CHECK(b.data.train == "synthetic:rows=100");
  CHECK(b.trainer.train.seed == 7);
  // Flags not given are recorded with their structs' defaults: a run of defaults reads back as one.
  const funnel::cli::RunOptions plain = run_with({"train"});
  d.write("plain.toml", as_toml(plain.trainer.config));
  CHECK(run_with({"train", "--config", d.file("plain.toml")}).trainer.config == plain.trainer.config);
}
