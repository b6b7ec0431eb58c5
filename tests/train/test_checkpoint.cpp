// Checkpoints: bit-exact round trip of parameters and optimizer state, the manifest, every load-time check
// (truncated .npy, flipped byte, wrong shape, missing/garbled manifest, missing file, other optimizer), and atomic
// saving: a save that fails midway leaves the old checkpoint intact, an overwrite replaces it completely.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <limits>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "support/temp_dir.hpp"
#include "train/checkpoint.hpp"
#include "train/npy.hpp"
#include "train/optimizer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using funnel::test::TempDir;

// A small model with an embedding table (sparse gradient) and a scoped MLP: names with '/'.
struct Model {
  Graph g;
  Var idv, loss;
  explicit Model(std::int64_t dim = 3) {
    Var table = param(g, "emb/table", Shape{6, dim}, Init::normal(0.1));
    idv = ids(g, "ids", 2);
    Var h = flatten(embedding(table, idv));
    Var out;
    {
      auto s = g.scope("ctr_tower");
      out = dense(mlp(h, {4}, Act::Relu), 1, "out");
    }
    loss = mean(mul(out, out));
    g.mark_loss(loss.id);
  }
  void step(Executor<float>& ex, Optimizer<float>& opt, int k) {
    ex.set_batch(2);
    IdBatch& b = ex.ids(idv.id);
    b.reset(2, 2);
    for (int c = 0; c < 4; ++c) {
      b.push((k + c) % 6);
      b.end_cell();
    }
    ex.forward();
    ex.backward(loss.id);
    opt.step(ex);
  }
};

struct Trained {
  Model m;
  Executor<float> ex;
  std::unique_ptr<Optimizer<float>> opt;
  explicit Trained(std::uint64_t seed, const std::string& optname = "adam", int steps = 3)
      : ex(m.g), opt(make_optimizer<float>(optname, {})) {
    ex.init_params(seed);
    for (int k = 0; k < steps; ++k) m.step(ex, *opt, k);
  }
};

bool same_params(Executor<float>& a, Executor<float>& b) {
  for (std::size_t i = 0; i < a.params().size(); ++i) {
    const auto& x = a.param(a.params()[i]);
    const auto& y = b.param(b.params()[i]);
    if (x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

const nlohmann::json kModel = {{"kind", "test"}, {"dim", 3}};
const nlohmann::json kData = {{"fields", {"user", "item"}}, {"vocab", 6}};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void spit(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

struct HookGuard {
  ~HookGuard() {
    funnel::testing::set_checkpoint_fault_hook({});
    funnel::testing::set_checkpoint_no_exchange(false);
  }
};

}  // namespace

TEST_CASE("checkpoint round trip is bit-exact, optimizer state included", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 30, 2);

  CHECK(fs::exists(dir + "/manifest.json"));
  CHECK(fs::exists(dir + "/emb.table.npy"));
  CHECK(fs::exists(dir + "/ctr_tower.dense_0.w.npy"));
  CHECK(fs::exists(dir + "/optimizer/ctr_tower.dense_0.w.adam_m.npy"));
  CHECK(fs::exists(dir + "/optimizer/emb.table.adam_v.npy"));
  for (const auto& e : fs::directory_iterator(t.path)) CHECK(e.path().filename() == "ckpt");  // no temp leftovers
  // The files are plain .npy.
  auto w = read_npy<float>(dir + "/ctr_tower.dense_0.w.npy");
  CHECK(w.shape == std::vector<std::int64_t>{6, 4});

  CheckpointInfo meta = read_checkpoint_info(dir);
  CHECK(meta.model == kModel);
  CHECK(meta.data == kData);
  CHECK(meta.step == 30);
  CHECK(meta.epoch == 2);
  CHECK(meta.optimizer == "adam");
  CHECK(meta.optimizer_step == 3);
  CHECK(meta.optimizer_config.at("beta2") == 0.999);
  REQUIRE(meta.params.size() == a.ex.params().size());
  CHECK(meta.params[0].checksum.rfind("fnv1a64:", 0) == 0);
  CHECK(meta.params[0].checksum.size() == 8 + 16);

  Trained b(99, "adam", 0);
  REQUIRE_FALSE(same_params(a.ex, b.ex));
  CheckpointInfo info = load_checkpoint(dir, b.ex, b.opt.get());
  CHECK(info.step == 30);
  CHECK(info.data == kData);
  CHECK(same_params(a.ex, b.ex));
  CHECK(b.ex.store().optimizer_steps() == 3);
  auto sa = a.ex.store().export_optimizer(), sb = b.ex.store().export_optimizer();
  REQUIRE(sa.arrays.size() == sb.arrays.size());
  for (std::size_t i = 0; i < sa.arrays.size(); ++i) {
    CHECK(sa.arrays[i].name == sb.arrays[i].name);
    CHECK(sa.arrays[i].data == sb.arrays[i].data);
  }
  // Training on from the checkpoint is identical to training on without it.
  a.m.step(a.ex, *a.opt, 7);
  b.m.step(b.ex, *b.opt, 7);
  CHECK(same_params(a.ex, b.ex));

  // Parameters only: no optimizer needed.
  Trained c(5, "adam", 0);
  load_checkpoint(dir, c.ex, nullptr);
  CHECK(same_params(a.ex, c.ex) == false);  // a moved on one step
  Trained d(5, "adam", 0);
  load_checkpoint(dir + "/", d.ex, nullptr);
  CHECK(same_params(c.ex, d.ex));
}

TEST_CASE("a checkpoint saved without an optimizer carries no state", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("p");
  Trained a(1, "sgd", 1);
  save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1);
  CHECK_FALSE(fs::exists(dir + "/optimizer"));
  Trained b(2, "adagrad", 0);
  CheckpointInfo info = load_checkpoint(dir, b.ex, b.opt.get());
  CHECK(info.optimizer.empty());
  CHECK(b.ex.store().optimizer_steps() == 0);
  CHECK(same_params(a.ex, b.ex));
}

TEST_CASE("loading rejects damaged or mismatched checkpoints and changes nothing", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  Trained b(42, "adam", 0);
  Trained b0(42, "adam", 0);  // b's parameters as they were
  const std::string wfile = dir + "/ctr_tower.dense_0.w.npy";

  SECTION("truncated .npy") {
    const std::string s = slurp(wfile);
    spit(wfile, s.substr(0, s.size() - 7));
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()),
                      Contains(wfile) && Contains("truncated") && Contains("96 data bytes") && Contains("holds 89"));
  }
  SECTION("flipped byte in the data") {
    std::string s = slurp(wfile);
    s[s.size() - 10] ^= 0x01;
    spit(wfile, s);
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains(wfile) && Contains("checksum mismatch"));
  }
  SECTION("flipped byte in an optimizer array") {
    const std::string f = dir + "/optimizer/emb.table.adam_m.npy";
    std::string s = slurp(f);
    s[s.size() - 1] ^= 0x40;
    spit(f, s);
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains(f) && Contains("checksum mismatch"));
    CHECK(b.ex.store().optimizer_steps() == 0);
  }
  SECTION("missing parameter file") {
    fs::remove(wfile);
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains(wfile) && Contains("missing"));
  }
  SECTION("missing manifest") {
    fs::remove(dir + "/manifest.json");
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains(dir + "/manifest.json") && Contains("missing"));
    CHECK_THROWS_WITH(read_checkpoint_info(t.file("nowhere")), Contains("no such checkpoint directory"));
  }
  SECTION("manifest that is not JSON") {
    std::string s = slurp(dir + "/manifest.json");
    spit(dir + "/manifest.json", s.substr(0, s.size() / 2));
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains(dir + "/manifest.json") &&
                                                                  Contains("not valid JSON"));
  }
  SECTION("manifest with an ill-typed field") {
    auto j = nlohmann::json::parse(slurp(dir + "/manifest.json"));
    j["params"][1]["shape"] = "6x4";
    spit(dir + "/manifest.json", j.dump());
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, b.opt.get()), Contains("manifest.json") &&
                                                                  Contains("'params[1].shape'"));
  }
  SECTION("manifest of another format version") {
    auto j = nlohmann::json::parse(slurp(dir + "/manifest.json"));
    j["format_version"] = 7;
    spit(dir + "/manifest.json", j.dump());
    CHECK_THROWS_WITH(read_checkpoint_info(dir), Contains("format_version") && Contains("is 7"));
  }
  SECTION("a parameter shape that differs from the graph") {
    Model other(5);  // embedding dim 5: table 6×5, dense_0/w 10×4
    Executor<float> ex(other.g);
    ex.init_params(0);
    CHECK_THROWS_WITH(load_checkpoint(dir, ex, nullptr),
                      Contains("'emb/table'") && Contains("[6, 3]") && Contains("[6, 5]"));
  }
  SECTION("a graph parameter the checkpoint lacks") {
    auto j = nlohmann::json::parse(slurp(dir + "/manifest.json"));
    const std::string name = j["params"][0]["name"].get<std::string>();
    j["params"].erase(0);
    spit(dir + "/manifest.json", j.dump());
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, nullptr), Contains("no parameter '" + name + "'"));
  }
  SECTION("a checkpoint parameter the graph lacks") {
    auto j = nlohmann::json::parse(slurp(dir + "/manifest.json"));
    auto extra = j["params"][0];
    extra["name"] = "extra/param";
    extra["file"] = "extra.param.npy";
    j["params"].push_back(extra);
    spit(dir + "/manifest.json", j.dump());
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, nullptr), Contains("'extra/param' is not in the graph"));
  }
  SECTION("state of another optimizer") {
    auto sgd = make_optimizer<float>("sgd", {});
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, sgd.get()), Contains("'adam'") && Contains("'sgd'"));
  }
  // Nothing was changed by the failed load.
  CHECK(same_params(b.ex, b0.ex));
}

TEST_CASE("a save that fails midway leaves the old checkpoint intact", "[checkpoint][atomic]") {
  TempDir t;
  HookGuard guard;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  const std::string manifest_before = slurp(dir + "/manifest.json");
  Trained b(2, "sgd", 2);  // other values, other optimizer

  for (std::string stage : {"param:ctr_tower/dense_0/w", "manifest", "swap"}) {
    CAPTURE(stage);
    funnel::testing::set_checkpoint_fault_hook([&](std::string_view s) {
      if (s == stage) throw Error("simulated crash at " + std::string(s));
    });
    CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 99), Contains("simulated crash"));
    funnel::testing::set_checkpoint_fault_hook({});
    // The old checkpoint is there, complete, and the temporary directory is gone.
    CHECK(slurp(dir + "/manifest.json") == manifest_before);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(t.path)) names.push_back(e.path().filename().string());
    CHECK(names == std::vector<std::string>{"ckpt"});
    Trained c(3, "adam", 0);
    CheckpointInfo info = load_checkpoint(dir, c.ex, c.opt.get());
    CHECK(info.step == 3);
    CHECK(same_params(a.ex, c.ex));
  }
}

TEST_CASE("a crash that leaves the temporary directory behind does not disturb the next save", "[checkpoint][atomic]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  const std::string stale = dir + ".funnel-tmp";  // a save killed while writing: the marker is still there
  fs::create_directories(stale + "/optimizer");
  spit(stale + "/funnel-save-in-progress", "");
  spit(stale + "/junk.npy", "junk");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  CHECK_FALSE(fs::exists(stale));
  CHECK_FALSE(fs::exists(dir + "/junk.npy"));
  Trained c(3, "adam", 0);
  load_checkpoint(dir, c.ex, c.opt.get());
  CHECK(same_params(a.ex, c.ex));
}

TEST_CASE("a save killed while it removes the previous version leaves nothing that blocks the next save",
          "[checkpoint][atomic]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 1);
  // A second save, in a child process killed (as by kill -9: no unwinding, no cleanup) right after the first file
  // of the previous version was removed: the manifest went first, its arrays are still there.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    testing::set_checkpoint_fault_hook([](std::string_view stage) {
      if (stage.rfind("discard:", 0) == 0) ::_exit(37);
    });
    try {
      save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 2);
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 37);  // killed in the middle of removing the previous version
  const std::string left = dir + ".funnel-tmp";
  REQUIRE(fs::exists(left));
  CHECK_FALSE(fs::exists(left + "/manifest.json"));
  CHECK(read_checkpoint_info(dir).step == 2);  // the new version is in place
  // The next save recovers on its own.
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  CHECK_FALSE(fs::exists(left));
  CHECK(read_checkpoint_info(dir).step == 3);
}

TEST_CASE("saving over an existing checkpoint replaces it completely", "[checkpoint][atomic]") {
  TempDir t;
  HookGuard guard;
  SECTION("with renameat2 RENAME_EXCHANGE") {}
  SECTION("with the rename-aside fallback") { funnel::testing::set_checkpoint_no_exchange(true); }
  const std::string dir = t.file("ckpt");
  Trained a(1, "adam");
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  Trained b(2, "sgd", 2);
  save_checkpoint(dir, b.ex, nullptr, kModel, {{"v", 2}}, 8, 1);
  CHECK_FALSE(fs::exists(dir + "/optimizer"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t.path)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"ckpt"});
  Trained c(3, "adam", 0);
  CheckpointInfo info = load_checkpoint(dir, c.ex, c.opt.get());
  CHECK(info.step == 8);
  CHECK(info.epoch == 1);
  CHECK(info.data == nlohmann::json{{"v", 2}});
  CHECK(same_params(b.ex, c.ex));
  CHECK_FALSE(same_params(a.ex, c.ex));
}

TEST_CASE("the rename-aside fallback restores the old checkpoint when the swap fails", "[checkpoint][atomic]") {
  TempDir t;
  HookGuard guard;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  funnel::testing::set_checkpoint_no_exchange(true);
  funnel::testing::set_checkpoint_fault_hook([](std::string_view s) {
    if (s == "aside") {
      // Between the two renames: DIR is gone, the old checkpoint waits next to it.
      throw Error("simulated failure while the old checkpoint is aside");
    }
  });
  Trained b(2);
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9), Contains("simulated failure"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t.path)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"ckpt"});
  Trained c(3, "adam", 0);
  CHECK(load_checkpoint(dir, c.ex, c.opt.get()).step == 3);
  CHECK(same_params(a.ex, c.ex));
}

TEST_CASE("a crash between the fallback's renames is reported with the directory to recover", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, nullptr, kModel, kData, 3);
  fs::rename(dir, dir + ".funnel-old");  // what a crash at that point leaves
  CHECK_THROWS_WITH(read_checkpoint_info(dir), Contains(dir + ".funnel-old") && Contains("interrupted save"));
  // A save does not start a new checkpoint beside it either.
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 4), Contains("interrupted save"));
  CHECK(fs::exists(dir + ".funnel-old/manifest.json"));
}

TEST_CASE("save refuses to replace a directory that is not a checkpoint", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("precious");
  fs::create_directories(dir);
  spit(dir + "/thesis.tex", "do not delete");
  Trained a(1);
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1),
                    Contains(dir) && Contains("not a funnel checkpoint"));
  CHECK(slurp(dir + "/thesis.tex") == "do not delete");
  // A missing parent directory is created; an empty existing directory is fine.
  save_checkpoint(t.file("deep/er/ckpt"), a.ex, nullptr, kModel, kData, 1);
  CHECK(fs::exists(t.file("deep/er/ckpt/manifest.json")));
  fs::create_directories(t.file("empty"));
  save_checkpoint(t.file("empty"), a.ex, nullptr, kModel, kData, 1);
  CHECK(fs::exists(t.file("empty/manifest.json")));
}

TEST_CASE("checkpoint helpers", "[checkpoint]") {
  CHECK(checkpoint_file_name("ctr_tower/dense_0/w") == "ctr_tower.dense_0.w.npy");
  // FNV-1a 64 test vectors.
  CHECK(checkpoint_checksum("", 0) == "fnv1a64:cbf29ce484222325");
  CHECK(checkpoint_checksum("a", 1) == "fnv1a64:af63dc4c8601ec8c");
  CHECK(checkpoint_checksum("foobar", 6) == "fnv1a64:85944171f73967e8");
}

// ---- save-target rules: funnel replaces only its own checkpoints ----

namespace {
std::vector<std::string> listing(const fs::path& d) {
  std::vector<std::string> names;
  for (const auto& e : fs::recursive_directory_iterator(d)) names.push_back(fs::relative(e.path(), d).string());
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace

TEST_CASE("a directory with someone else's manifest.json is refused and left untouched", "[checkpoint][target]") {
  TempDir t;
  const std::string dir = t.file("web");
  fs::create_directories(dir + "/src");
  spit(dir + "/manifest.json", R"({"name": "my web app", "icons": []})");
  spit(dir + "/index.html", "<html></html>");
  spit(dir + "/src/app.js", "main()");
  const auto before = listing(dir);
  Trained a(1);
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1),
                    Contains(dir) && Contains("not a funnel checkpoint") && Contains("refusing"));
  CHECK_THROWS_WITH(CheckpointLock(dir), Contains("not a funnel checkpoint"));
  CHECK_THROWS_WITH(check_checkpoint_target(dir), Contains("not a funnel checkpoint"));
  CHECK(listing(dir) == before);
  CHECK(slurp(dir + "/index.html") == "<html></html>");
  // Only a manifest.json, but not funnel's: refused too.
  const std::string only = t.file("only");
  fs::create_directories(only);
  spit(only + "/manifest.json", R"({"format": "something-else"})");
  CHECK_THROWS_WITH(check_checkpoint_target(only), Contains("format"));
}

TEST_CASE("a user's file inside a checkpoint blocks the save instead of being deleted", "[checkpoint][target]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  spit(dir + "/notes.txt", "mine");
  spit(dir + "/optimizer/extra.npy", "mine too");
  Trained b(2);
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9), Contains("which funnel did not write"));
  CHECK(slurp(dir + "/notes.txt") == "mine");
  fs::remove(dir + "/notes.txt");
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9), Contains("optimizer/extra.npy"));
  fs::remove(dir + "/optimizer/extra.npy");
  spit(dir + "/unlisted.npy", "an array the manifest does not list");
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9), Contains("does not list"));
  fs::remove(dir + "/unlisted.npy");
  save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9);
  CHECK(read_checkpoint_info(dir).step == 9);
}

TEST_CASE("a file where the checkpoint should go is refused", "[checkpoint][target]") {
  TempDir t;
  spit(t.file("file"), "data");
  Trained a(1);
  CHECK_THROWS_WITH(save_checkpoint(t.file("file"), a.ex, nullptr, kModel, kData, 1), Contains("not a directory"));
  CHECK(slurp(t.file("file")) == "data");
}

TEST_CASE("a symlinked checkpoint directory is replaced at its real place and the link stays", "[checkpoint][target]") {
  TempDir t;
  const std::string real = t.file("store/ckpt");
  Trained a(1), b(2);
  save_checkpoint(real, a.ex, a.opt.get(), kModel, kData, 3);
  fs::create_symlink(real, t.path / "link");
  save_checkpoint(t.file("link"), b.ex, b.opt.get(), kModel, kData, 7);
  CHECK(fs::is_symlink(t.path / "link"));
  CHECK(read_checkpoint_info(real).step == 7);
  CHECK(listing(t.path / "store").front() == "ckpt");
  for (const auto& n : listing(t.path / "store")) CHECK(n.find("funnel-tmp") == std::string::npos);
  // A dangling link to a new directory: the directory is created where it points.
  fs::create_symlink(t.path / "store" / "new", t.path / "dangling");
  save_checkpoint(t.file("dangling"), b.ex, nullptr, kModel, kData, 1);
  CHECK(fs::is_symlink(t.path / "dangling"));
  CHECK(fs::exists(t.file("store/new/manifest.json")));
}

TEST_CASE("a second saver is refused while the lock is held, across saves", "[checkpoint][lock]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  {
    CheckpointLock lock(dir);
    CHECK(fs::is_directory(dir));
    save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 1);  // reuses this process's lock
    save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 2);  // the directory was swapped twice
    // Another open file description (as another process would have) cannot take the lock now.
    const int fd = ::open((dir + "/funnel.lock").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    CHECK(::flock(fd, LOCK_EX | LOCK_NB) != 0);
    ::close(fd);
  }
  // Released: an outside holder now blocks our save.
  const int fd = ::open((dir + "/funnel.lock").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 3), Contains("another process"));
  CHECK(read_checkpoint_info(dir).step == 2);
  ::close(fd);
  save_checkpoint(dir, a.ex, nullptr, kModel, kData, 3);
  CHECK(read_checkpoint_info(dir).step == 3);
}

TEST_CASE("a lock taken before the work and never used leaves nothing behind", "[checkpoint][lock]") {
  TempDir t;
  { CheckpointLock lock(t.file("new/ckpt")); }
  CHECK_FALSE(fs::exists(t.file("new/ckpt")));
  fs::create_directories(t.file("empty"));
  { CheckpointLock lock(t.file("empty")); }
  CHECK(fs::exists(t.file("empty")));
}

TEST_CASE("a non-finite parameter is never saved over a good checkpoint", "[checkpoint][finite]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  const std::string before = slurp(dir + "/manifest.json");
  Trained b(2);
  const NodeId p = b.ex.params()[1];
  b.ex.param(p).data()[2] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9),
                    Contains("Inf") && Contains(b.ex.graph().node(p).name) && Contains("left as it was"));
  b.ex.param(p).data()[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(save_checkpoint(dir, b.ex, b.opt.get(), kModel, kData, 9), Contains("NaN"));
  CHECK(slurp(dir + "/manifest.json") == before);
  for (const auto& n : listing(t.path)) CHECK(n.find("funnel-tmp") == std::string::npos);
}

TEST_CASE("a temporary directory that is not funnel's is never removed", "[checkpoint][target]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  fs::create_directories(dir + ".funnel-tmp");
  spit(dir + ".funnel-tmp/report.docx", "mine");
  Trained a(1);
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1), Contains("in the way"));
  CHECK(slurp(dir + ".funnel-tmp/report.docx") == "mine");
}

TEST_CASE("a FIFO or device inside a checkpoint is refused without blocking", "[checkpoint][nonregular]") {
  TempDir t;
  const std::string dir = t.file("ckpt");
  Trained a(1), b(2);
  save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1);
  const std::string w = dir + "/ctr_tower.out.w.npy";
  SECTION("manifest.json is a FIFO") {
    fs::remove(dir + "/manifest.json");
    REQUIRE(::mkfifo((dir + "/manifest.json").c_str(), 0600) == 0);
    CHECK_THROWS_WITH(read_checkpoint_info(dir), Contains("manifest.json") && Contains("FIFO"));
  }
  SECTION("a parameter file is a FIFO") {
    fs::remove(w);
    REQUIRE(::mkfifo(w.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, nullptr), Contains(w) && Contains("FIFO"));
  }
  SECTION("a parameter file is a symlink to a device") {
    fs::remove(w);
    fs::create_symlink("/dev/zero", w);
    CHECK_THROWS_WITH(load_checkpoint(dir, b.ex, nullptr), Contains(w) && Contains("character device"));
  }
}

TEST_CASE("every malformed manifest field is an error naming manifest.json and the field", "[checkpoint][manifest]") {
  const std::string good = R"({"format": "funnel-checkpoint", "format_version": 1, "step": 3, "epoch": 0,
    "model": {}, "data": {}, "optimizer": null,
    "params": [{"name": "a/w", "file": "a.w.npy", "shape": [2, 3], "dtype": "float32",
                "checksum": "fnv1a64:0123456789abcdef"}]})";
  CHECK(parse_checkpoint_manifest(good, "m/manifest.json").params.at(0).shape == std::vector<std::int64_t>{2, 3});
  auto bad = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& field) {
    auto j = nlohmann::json::parse(good);
    edit(j);
    CAPTURE(field, j.dump());
    CHECK_THROWS_WITH(parse_checkpoint_manifest(j.dump(), "m/manifest.json"),
                      Contains("m/manifest.json") && Contains("'" + field + "'"));
  };
  bad([](auto& j) { j.erase("format"); }, "format");
  bad([](auto& j) { j["format"] = "zip"; }, "format");
  bad([](auto& j) { j["format_version"] = 1.5; }, "format_version");
  bad([](auto& j) { j["step"] = -1; }, "step");
  bad([](auto& j) { j["step"] = 18446744073709551615ull; }, "step");
  bad([](auto& j) { j["epoch"] = "0"; }, "epoch");
  bad([](auto& j) { j["model"] = 3; }, "model");
  bad([](auto& j) { j["data"] = nullptr; }, "data");
  bad([](auto& j) { j["config"] = "fast"; }, "config");
  bad([](auto& j) { j["params"] = nlohmann::json::object(); }, "params");
  bad([](auto& j) { j["params"][0] = 7; }, "params[0]");
  bad([](auto& j) { j["params"][0]["file"] = "../../etc/passwd"; }, "params[0].file");
  bad([](auto& j) { j["params"][0]["file"] = "optimizer/a.npy"; }, "params[0].file");
  bad([](auto& j) { j["params"][0]["file"] = "a.w.txt"; }, "params[0].file");
  bad([](auto& j) { j["params"][0]["checksum"] = "md5:abc"; }, "params[0].checksum");
  bad([](auto& j) { j["params"][0]["dtype"] = "float16"; }, "params[0].dtype");
  bad([](auto& j) { j["params"][0]["shape"] = {1, -2}; }, "params[0].shape");
  bad([](auto& j) { j["params"][0]["shape"] = {1 << 30, 1 << 30}; }, "params[0].shape");
  bad([](auto& j) { j["params"][0]["name"] = "has space"; }, "params[0].name");
  bad([](auto& j) { j["params"].push_back(j["params"][0]); }, "params[1].name");
  bad([](auto& j) { j["optimizer"] = 1; }, "optimizer");
  bad([](auto& j) { j["optimizer"] = {{"name", "adam"}, {"step", 1}, {"config", 2}, {"arrays", nlohmann::json::array()}}; },
      "optimizer.config");
  bad([](auto& j) { j["optimizer"] = {{"name", "adam"}, {"step", 1}, {"config", nullptr}}; }, "optimizer.arrays");
}

TEST_CASE("bytes from a manifest are never printed raw", "[checkpoint][manifest]") {
  // A terminal escape sequence in a field (JSON-escaped, so it parses).
  const std::string raw = R"({"format": "\u001b[31mred\u0000", "format_version": 1})";
  try {
    parse_checkpoint_manifest(raw, "m/manifest.json");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("'format'"));
    for (unsigned char c : msg) CHECK((c >= 0x20 && c < 0x7f));
  }
  const std::string garbage("\x00\x01\x02\xff not json", 13);
  try {
    parse_checkpoint_manifest(garbage, "m/manifest.json");
    FAIL("no error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Contains("not valid JSON"));
    for (unsigned char c : msg) CHECK((c >= 0x20 && c < 0x7f));
  }
}
