// What funnel writes, end to end: save targets refused before any work, outputs that are inputs refused,
// devices/FIFOs/symlinks written in place or through, write errors (files and stdout) are non-zero exits, the
// checkpoint survives a failing metrics write, and INT/TERM/HUP/PIPE stop training with a saved checkpoint.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {
const std::string& kBin = funnel::test::kFunnel;
const std::string kSmall = "synthetic:rows=3000,fields=4,vocab=30,seed=5";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 256 --threads 1";
using funnel::test::Run;
using funnel::test::slurp;
Run run(const std::string& args) { return funnel::test::run_funnel(args, true); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("safety_" + name); }
using funnel::test::spit;

// A small trained checkpoint and a CSV data file for it.
struct Trained {
  fs::path dir;
  std::string ck, csv;
  explicit Trained(const std::string& name) : dir(temp_dir(name)) {
    csv = (dir / "data.csv").string();
    std::string text = "click,purchase,user,item\n";
    for (int i = 0; i < 400; ++i)
      text += std::to_string(i % 3 == 0) + "," + std::to_string(i % 9 == 0) + ",u" + std::to_string(i % 17) + ",i" +
              std::to_string(i % 5) + "\n";
    spit(csv, text);
    ck = (dir / "ck").string();
    Run t = run("train --data csv:" + csv + kModel + " --save " + ck);
    INFO(t.out);
    REQUIRE(t.code == 0);
  }
  ~Trained() { fs::remove_all(dir); }
};
}  // namespace

TEST_CASE("train refuses a save target that is not a funnel checkpoint before reading any data", "[cli][safety]") {
  fs::path d = temp_dir("webdir");
  fs::create_directories(d / "site" / "src");
  spit(d / "site" / "manifest.json", R"({"name": "web app"})");
  spit(d / "site" / "index.html", "<html/>");
  spit(d / "site" / "src" / "app.js", "go()");
  Run t = run("train --data " + kSmall + kModel + " --save " + (d / "site").string());
  INFO(t.out);
  CHECK(t.code == 1);
  CHECK(t.out.find("not a funnel checkpoint") != std::string::npos);
  CHECK(t.out.find("model:") == std::string::npos);  // no data was loaded, nothing was trained
  CHECK(slurp(d / "site" / "index.html") == "<html/>");
  CHECK(slurp(d / "site" / "src" / "app.js") == "go()");
  // A metrics target in a missing directory is refused up front too, and no checkpoint is started.
  Run m = run("train --data " + kSmall + kModel + " --save " + (d / "ck").string() + " --metrics-json " +
              (d / "missing" / "m.json").string());
  CHECK(m.code == 1);
  CHECK(m.out.find("--metrics-json") != std::string::npos);
  INFO(m.out);
  CHECK(m.out.find("model:") == std::string::npos);
  CHECK_FALSE(fs::exists(d / "ck"));
  fs::remove_all(d);
}

TEST_CASE("a failing metrics write does not cost the checkpoint", "[cli][safety]") {
  fs::path d = temp_dir("metricsfull");
  Run t = run("train --data " + kSmall + kModel + " --save " + (d / "ck").string() + " --metrics-json /dev/full");
  INFO(t.out);
  CHECK(t.code == 1);
  CHECK(t.out.find("/dev/full") != std::string::npos);
  CHECK(fs::exists(d / "ck" / "manifest.json"));
  fs::remove_all(d);
}

TEST_CASE("outputs that are the command's inputs are refused", "[cli][safety]") {
  Trained tr("inputs");
  const std::string before = slurp(tr.csv);
  Run p = run("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out " + tr.csv);
  INFO(p.out);
  CHECK(p.code == 1);
  CHECK(p.out.find("input") != std::string::npos);
  CHECK(slurp(tr.csv) == before);
  const std::string manifest = slurp(tr.ck + "/manifest.json");
  Run q = run("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out " + tr.ck + "/manifest.json");
  CHECK(q.code == 1);
  CHECK(slurp(tr.ck + "/manifest.json") == manifest);
  Run e = run("eval --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --metrics-json " + tr.csv);
  CHECK(e.code == 1);
  CHECK(slurp(tr.csv) == before);
  Run c = run("convert --data csv:" + tr.csv + " --out " + tr.csv);
  CHECK(c.code == 1);
  CHECK(slurp(tr.csv) == before);
}

TEST_CASE("device, FIFO and symlink outputs are written in place or through the link", "[cli][safety]") {
  Trained tr("targets");
  // A FIFO stays a FIFO and receives the predictions.
  const std::string fifo = (tr.dir / "pipe").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  Run p = run("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out " + fifo);
  reader.join();
  INFO(p.out);
  CHECK(p.code == 0);
  CHECK(got.rfind("row,pctr,pcvr,pctcvr\n", 0) == 0);
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  // /dev/stdout: the predictions arrive on stdout.
  Run s = funnel::test::run_funnel("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out /dev/stdout",
                                   false);
  CHECK(s.code == 0);
  CHECK(s.out.rfind("row,pctr,pcvr,pctcvr\n", 0) == 0);
  // A symlink is kept and its target replaced.
  spit(tr.dir / "real.csv", "old");
  fs::create_symlink(tr.dir / "real.csv", tr.dir / "link.csv");
  Run l = run("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out " + (tr.dir / "link.csv").string());
  CHECK(l.code == 0);
  CHECK(fs::is_symlink(tr.dir / "link.csv"));
  CHECK(slurp(tr.dir / "real.csv").rfind("row,pctr", 0) == 0);
  // convert to /dev/null: written in place (parse-only timing), /dev/null stays a device.
  Run c = run("convert --data csv:" + tr.csv + " --out /dev/null");
  INFO(c.out);
  CHECK(c.code == 0);
  REQUIRE(::lstat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
}

TEST_CASE("write errors are non-zero exits: a full device, a full or closed stdout", "[cli][safety]") {
  Trained tr("werr");
  Run p = run("predict --checkpoint " + tr.ck + " --data csv:" + tr.csv + " --out /dev/full");
  CHECK(p.code == 1);
  CHECK(p.out.find("No space left") != std::string::npos);
  Run e = funnel::test::run_shell(kBin + " eval --checkpoint " + tr.ck + " --data csv:" + tr.csv + " >/dev/full 2>&1; echo \"rc=$?\"");
  CHECK(e.out.find("rc=1") != std::string::npos);
  Run c = funnel::test::run_shell(kBin + " eval --checkpoint " + tr.ck + " --data csv:" + tr.csv + " >&- 2>/dev/null; echo \"rc=$?\"");
  CHECK(c.out.find("rc=1") != std::string::npos);
  Run h = funnel::test::run_shell(kBin + " --help >/dev/full 2>/dev/null; echo \"rc=$?\"");
  CHECK(h.out.find("rc=1") != std::string::npos);
}

TEST_CASE("a closed pipe on stdout is an error, not a silent death", "[cli][safety]") {
  Trained tr("epipe");
  // `true` exits at once: the eval output hits a closed pipe. Exit 1 with a message, not 141 (killed by SIGPIPE).
  Run r = funnel::test::run_shell("sh -c '" + kBin + " eval --checkpoint " + tr.ck + " --data csv:" + tr.csv +
                                  " 2>" + (tr.dir / "err.txt").string() + "; echo rc=$? >" +
                                  (tr.dir / "rc.txt").string() + "' | true");
  const std::string rc = slurp(tr.dir / "rc.txt");
  INFO(rc << slurp(tr.dir / "err.txt"));
  CHECK(rc.find("rc=1") != std::string::npos);
}

TEST_CASE("HUP and PIPE stop training like INT and TERM: the step ends, the checkpoint is saved", "[cli][safety]") {
  for (int sig : {SIGHUP, SIGPIPE, SIGINT}) {
    CAPTURE(sig);
    fs::path d = temp_dir("sig" + std::to_string(sig));
    const std::string log = (d / "log.txt").string();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::freopen(log.c_str(), "w", stderr);
      std::freopen("/dev/null", "w", stdout);
      const std::string ck = (d / "ck").string();
      execl(kBin.c_str(), kBin.c_str(), "train", "--data", "synthetic:rows=200000,fields=8,vocab=200", "--epochs", "50",
            "--batch-size", "64", "--save", ck.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (slurp(log).find("step ") != std::string::npos) break;
    }
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    INFO(slurp(log));
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 128 + sig);
    CHECK(fs::exists(d / "ck" / "manifest.json"));
    fs::remove_all(d);
  }
}

TEST_CASE("train --init maps new data through the checkpoint's feature map and counts this run's steps", "[cli][init]") {
  fs::path d = temp_dir("init");
  auto write = [&](const std::string& name, const std::string& a, const std::string& b, const std::string& c) {
    std::string text = "click,purchase,u\n";
    for (int i = 0; i < 300; ++i) text += std::to_string(i % 2) + ",0," + (i % 3 == 0 ? a : i % 3 == 1 ? b : c) + "\n";
    spit(d / name, text);
  };
  write("a.csv", "apple", "berry", "cherry");
  write("b.csv", "xeno", "yak", "zebra");  // as many values, none of them known
  const std::string ck = (d / "ck").string(), ck2 = (d / "ck2").string();
  Run a = run("train --data csv:" + (d / "a.csv").string() + " --min-count 1" + kModel + " --save " + ck);
  INFO(a.out);
  REQUIRE(a.code == 0);
  const auto first = nlohmann::json::parse(slurp(fs::path(ck) / "manifest.json"));
  Run b = run("train --init " + ck + " --data csv:" + (d / "b.csv").string() + " --min-count 1" + kModel +
              " --epochs 10 --max-steps 3 --save " + ck2);
  INFO(b.out);
  REQUIRE(b.code == 0);
  const auto second = nlohmann::json::parse(slurp(fs::path(ck2) / "manifest.json"));
  // The feature map is the checkpoint's (apple/berry/cherry), not one rebuilt from b.csv.
  CHECK(second["data"] == first["data"]);
  CHECK(second["data"].dump().find("apple") != std::string::npos);
  CHECK(second["data"].dump().find("zebra") == std::string::npos);
  // --max-steps 3 after --init: three more steps than the checkpoint had.
  CHECK(second["step"].get<std::int64_t>() == first["step"].get<std::int64_t>() + 3);
  // Another optimizer: refused with a hint, accepted with --reset-optimizer.
  Run c = run("train --init " + ck + " --data csv:" + (d / "a.csv").string() + kModel + " --optimizer sgd --max-steps 1");
  CHECK(c.code == 1);
  CHECK(c.out.find("--reset-optimizer") != std::string::npos);
  Run r = run("train --init " + ck + " --data csv:" + (d / "a.csv").string() + kModel +
              " --optimizer sgd --reset-optimizer --max-steps 1 --save " + ck2);
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(nlohmann::json::parse(slurp(fs::path(ck2) / "manifest.json"))["optimizer"]["name"] == "sgd");
  fs::remove_all(d);
}

TEST_CASE("bad flag values are exit 2 naming the flag, before any work", "[cli][flags]") {
  struct Case {
    std::string args, flag;
  };
  for (const Case& c : {Case{"train --hidden 1000000000", "--hidden"}, Case{"train --embedding-dim 99999999", "--embedding-dim"},
                        Case{"train --threads 100000", "--threads"}, Case{"eval --checkpoint x --data synthetic --threads 100000", "--threads"},
                        Case{"compare --models esmm,foo", "--models"},
                        Case{"predict --checkpoint x --data synthetic --out y --buckets 5", "--buckets"}}) {
    Run r = run(c.args);
    INFO(c.args << ": " << r.out);
    CHECK(r.code == 2);
    CHECK(r.out.find(c.flag) != std::string::npos);
    CHECK(r.out.find("training") == std::string::npos);
    CHECK(r.out.find("model:") == std::string::npos);
  }
}
