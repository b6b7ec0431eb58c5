// Checkpoints: bit-exact round trip of parameters and optimizer state, the manifest, every load-time check
// (truncated .npy, flipped byte, wrong shape, missing/garbled manifest, missing file, other optimizer), and atomic
// saving: a save that fails midway leaves the old checkpoint intact, an overwrite replaces it completely.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

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
  CHECK(b.opt->steps() == 3);
  auto sa = a.opt->export_state(), sb = b.opt->export_state();
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
  CHECK(b.opt->steps() == 0);
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
    CHECK(b.opt->steps() == 0);
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
  const std::string stale = dir + ".tmp-" + std::to_string(::getpid());
  fs::create_directories(stale + "/optimizer");
  spit(stale + "/junk.npy", "junk");
  Trained a(1);
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  CHECK_FALSE(fs::exists(stale));
  CHECK_FALSE(fs::exists(dir + "/junk.npy"));
  Trained c(3, "adam", 0);
  load_checkpoint(dir, c.ex, c.opt.get());
  CHECK(same_params(a.ex, c.ex));
}

TEST_CASE("saving over an existing checkpoint replaces it completely", "[checkpoint][atomic]") {
  TempDir t;
  HookGuard guard;
  SECTION("with renameat2 RENAME_EXCHANGE") {}
  SECTION("with the rename-aside fallback") { funnel::testing::set_checkpoint_no_exchange(true); }
  const std::string dir = t.file("ckpt");
  Trained a(1, "adam");
  save_checkpoint(dir, a.ex, a.opt.get(), kModel, kData, 3);
  spit(dir + "/stray.txt", "from the old checkpoint");
  Trained b(2, "sgd", 2);
  save_checkpoint(dir, b.ex, nullptr, kModel, {{"v", 2}}, 8, 1);
  CHECK_FALSE(fs::exists(dir + "/stray.txt"));
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
  fs::rename(dir, dir + ".old-12345");  // what a crash at that point leaves
  CHECK_THROWS_WITH(read_checkpoint_info(dir), Contains(dir + ".old-12345") && Contains("interrupted save"));
}

TEST_CASE("save refuses to replace a directory that is not a checkpoint", "[checkpoint]") {
  TempDir t;
  const std::string dir = t.file("precious");
  fs::create_directories(dir);
  spit(dir + "/thesis.tex", "do not delete");
  Trained a(1);
  CHECK_THROWS_WITH(save_checkpoint(dir, a.ex, nullptr, kModel, kData, 1),
                    Contains(dir) && Contains("not a checkpoint"));
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
