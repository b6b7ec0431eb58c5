// Data-parallel training: N ranks against one process on the same global batches, replicas identical, agreed
// stop, an error on one rank reported on all, the replica check, sharded evaluation. Run by CTest without
// mpirun (one rank) and under `mpirun -np 2` and `-np 3`; every rank runs every case.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <limits>
#include <memory>
#include <numeric>

#include "distributed/data_parallel.hpp"
#include "tests/distributed/fixtures.hpp"
#include "train/checkpoint.hpp"

using namespace funnel;
using namespace funnel::dist;
using funnel::test::opt_config;
using funnel::test::SharedTemp;
using funnel::test::small_model;

namespace {

Dataset small_data() { return funnel::test::synthetic_data(3); }

struct Run {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer<float>> opt;
  TrainResult result;
};

// Trains with funnel::train (one process, whole batches).
Run single(const Dataset& d, const std::string& optimizer, const TrainOptions& o) {
  Run r;
  r.model = std::make_unique<Model>(small_model(d));
  r.model->exec().init_params(11);
  r.opt = make_optimizer<float>(optimizer, opt_config(optimizer));
  r.result = train(*r.model, *r.opt, d, nullptr, o, TrainHooks{});
  return r;
}

Run parallel(Communicator& c, const Dataset& d, const std::string& optimizer, const TrainOptions& o,
             const TrainHooks& hooks = {}, bool shard_optimizer = true) {
  Run r;
  r.model = std::make_unique<Model>(small_model(d));
  r.model->exec().init_params(11);
  r.opt = make_optimizer<float>(optimizer, opt_config(optimizer));
  DataParallel dp(c, *r.model, DataParallelOptions{.check_every = 5, .shard_optimizer = shard_optimizer});
  r.result = train_data_parallel(dp, *r.model, *r.opt, d, nullptr, o, hooks);
  return r;
}

// Largest difference between two optimizer states relative to the largest magnitude of the array it is in (the
// moments of different arrays differ by orders of magnitude), after checking both have the same arrays.
double state_diff(const OptimizerState& a, const OptimizerState& b) {
  REQUIRE(a.optimizer == b.optimizer);
  REQUIRE(a.step == b.step);
  REQUIRE(a.arrays.size() == b.arrays.size());
  double worst = 0;
  for (std::size_t k = 0; k < a.arrays.size(); ++k) {
    REQUIRE(a.arrays[k].name == b.arrays[k].name);
    REQUIRE(a.arrays[k].data.size() == b.arrays[k].data.size());
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.arrays[k].data.size(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(a.arrays[k].data[i]) - b.arrays[k].data[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(b.arrays[k].data[i])));
    }
    if (scale > 0) worst = std::max(worst, diff / scale);
  }
  return worst;
}

std::uint64_t state_hash(const OptimizerState& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& a : s.arrays) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(a.data.data());
    for (std::size_t i = 0; i < a.data.size() * sizeof(float); ++i) {
      h ^= bytes[i];
      h *= 1099511628211ull;
    }
  }
  return h;
}

// max |a - b| over every parameter, and max |b| (for scale).
std::pair<double, double> max_diff(Model& a, Model& b) {
  double diff = 0, scale = 0;
  for (NodeId p : a.exec().params()) {
    const auto& x = a.exec().param(p);
    const auto& y = b.exec().param(p);
    for (std::size_t i = 0; i < x.size(); ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(x.data()[i]) - y.data()[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(y.data()[i])));
    }
  }
  return {diff, scale};
}

std::uint64_t hash_of(Communicator& c, Model& m) {
  DataParallel dp(c, m);
  return dp.param_hash();
}

TrainOptions options(bool shuffle) { return funnel::test::train_options(shuffle); }

}  // namespace

TEST_CASE("shard_of splits a batch into nearly equal contiguous parts covering it once", "[distributed]") {
  std::vector<std::int64_t> rows(10);
  std::iota(rows.begin(), rows.end(), 100);
  std::vector<std::int64_t> seen;
  std::vector<std::size_t> sizes;
  for (int r = 0; r < 3; ++r) {
    auto s = shard_of(rows, r, 3);
    sizes.push_back(s.size());
    seen.insert(seen.end(), s.begin(), s.end());
  }
  CHECK(seen == rows);
  CHECK(sizes == std::vector<std::size_t>{4, 3, 3});
  CHECK(shard_of(std::span<const std::int64_t>(rows.data(), 2), 2, 3).empty());
}

TEST_CASE("with the one-process communicator the data-parallel loop is funnel::train, bit for bit", "[distributed]") {
  const Dataset d = small_data();
  auto local = make_local_comm();
  for (const char* optimizer : {"sgd", "adam"}) {
    Run a = single(d, optimizer, options(true));
    Run b = parallel(*local, d, optimizer, options(true));
    REQUIRE(a.result.steps == b.result.steps);
    CHECK(max_diff(*a.model, *b.model).first == 0.0);
  }
}

// Tolerance: the ranks sum their shards' gradients and the shards' sums are added in rank order, where one
// process keeps one running sum over the whole batch, and each rank's gradient is scaled by (its rows / batch)
// instead of dividing the whole sum by the batch. Only float rounding differs (a few ulp per gradient entry,
// ~1e-7 relative), compounded over 20 steps of Adam/SGD. Measured: at most 1.2e-7 (one or two ulp of parameters
// ~0.9) with 2 and 3 ranks; the tolerance 2e-5 (scaled by the largest parameter when above 1) leaves 100× room
// and is far below what a different data order gives (the control below, > 1e-3).
TEST_CASE("N ranks equal one process after K steps (SGD and Adam), and the replicas are identical", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  for (const char* optimizer : {"sgd", "adam"}) {
    for (bool shuffle : {false, true}) {
      for (bool sharded : {true, false}) {
        INFO(optimizer << (shuffle ? " shuffled" : " --no-shuffle") << ", " << w.size() << " rank(s)"
                       << (sharded ? ", sharded optimizer" : ", replicated optimizer"));
        Run a = single(d, optimizer, options(shuffle));
        Run b = parallel(w, d, optimizer, options(shuffle), {}, sharded);
        REQUIRE(b.result.steps == 20);
        const auto [diff, scale] = max_diff(*a.model, *b.model);
        INFO("max |param difference| = " << diff << ", max |param| = " << scale);
        CHECK(diff <= 2e-5 * std::max(1.0, scale));
        // Every rank holds the same bits.
        const auto hashes = w.allgather_one(hash_of(w, *b.model));
        CHECK(std::all_of(hashes.begin(), hashes.end(), [&](std::uint64_t h) { return h == hashes[0]; }));
      }
    }
  }
}

namespace {
// Plain SGD that counts the dense elements it is asked to update (what a rank's optimizer costs).
class CountingSgd final : public Optimizer<float> {
 public:
  using Optimizer<float>::Optimizer;
  const char* name() const override { return "sgd"; }
  std::vector<std::string> slot_names() const override { return {}; }
  std::uint64_t dense_elements = 0;

 protected:
  void update_dense(float* p, const float* g, std::size_t n, float* const*, std::int64_t) override {
    dense_elements += n;
    for (std::size_t i = 0; i < n; ++i) p[i] -= static_cast<float>(cfg_.lr) * g[i];
  }
  void update_sparse(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     float* const*, std::int64_t) override {
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t j = 0; j < dim; ++j)
        p[static_cast<std::size_t>(idx[k]) * dim + j] -= static_cast<float>(cfg_.lr) * g[k * dim + j];
  }
};
}  // namespace

// The point of the sharded optimizer: each of N ranks runs the dense update on about 1/N of the elements, the
// slices together cover every element once per step, and the result is still one process's.
TEST_CASE("sharded optimizer: each rank updates ~1/N of the dense elements, together all of them once", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  TrainOptions o = options(false);
  o.max_steps = 6;
  const std::size_t N = static_cast<std::size_t>(w.size());
  Model ref(small_model(d));
  ref.params().init(11);
  CountingSgd ref_opt(opt_config("sgd"));
  train(ref, ref_opt, d, nullptr, o, TrainHooks{});
  const std::uint64_t whole = ref_opt.dense_elements / 6;  // one process: every dense element, every step
  REQUIRE(whole > 0);

  Model m(small_model(d));
  m.params().init(11);
  CountingSgd opt(opt_config("sgd"));
  DataParallel dp(w, m);
  REQUIRE(train_data_parallel(dp, m, opt, d, nullptr, o, TrainHooks{}).steps == 6);
  REQUIRE(opt.dense_elements % 6 == 0);
  const std::uint64_t mine = opt.dense_elements / 6;
  INFO(N << " rank(s): this rank updates " << mine << " of " << whole << " dense elements per step");
  CHECK(mine == dp.reducer().last_optimizer_elements());
  CHECK(dp.stats().optimizer_elements == opt.dense_elements);
  CHECK(dp.reducer().dense_elements() == whole);
  // Slices of ceil(fused/N) floats of the fused buffer (dense gradients + the 2 losses): at most that many each.
  CHECK(mine <= (dp.dense_floats() + N - 1) / N);
  const auto all = w.allgather_one(mine);
  std::uint64_t sum = 0;
  for (auto k : all) sum += k;
  CHECK(sum == whole);
  if (N > 1) CHECK(mine < whole);
  CHECK(max_diff(ref, m).first <= 2e-5);

  // Replicated: every rank updates every element.
  Model rep(small_model(d));
  rep.params().init(11);
  CountingSgd rep_opt(opt_config("sgd"));
  DataParallel rdp(w, rep, DataParallelOptions{.shard_optimizer = false});
  train_data_parallel(rdp, rep, rep_opt, d, nullptr, o, TrainHooks{});
  CHECK(rep_opt.dense_elements == 6 * whole);
}

// After sharded steps each rank's dense Adam moments are current in its own slice only; train_data_parallel and
// the save hook make them whole, so what rank 0 checkpoints is what one process holds. Tolerance: 1e-4 of the
// largest magnitude in each array — the gradients differ by reduction-order rounding only (~1e-7 relative), the
// moments accumulate them over 20 steps. Measured: at most 3.0e-7 with 2 and 3 ranks (0 with one). A stale
// slice (the moments of step 0 = zeros, or of an earlier step) is off by O(1) of that scale: without the gather
// these checks fail with 1.0.
TEST_CASE("sharded optimizer: the optimizer state is whole on every rank for saves, equal to one process's",
          "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  const SharedTemp tmp(w, "dp_state");
  const std::string& root = tmp.root;
  TrainOptions o = options(true);
  o.save_every = 10;
  TrainHooks hooks;
  Model* saving = nullptr;
  Optimizer<float>* saving_opt = nullptr;
  hooks.save = [&](std::int64_t step, std::int64_t) {
    if (w.rank() == 0)
      save_checkpoint(root + "/at" + std::to_string(step), saving->params(), saving_opt, to_json(saving->config()),
                      nlohmann::json::object(), step);
  };
  Model m(small_model(d));
  m.params().init(11);
  auto opt = make_optimizer<float>("adam", opt_config("adam"));
  saving = &m;
  saving_opt = opt.get();
  DataParallel dp(w, m);
  REQUIRE(train_data_parallel(dp, m, *opt, d, nullptr, o, hooks).steps == 20);
  w.barrier();

  // On return: every rank holds one process's state after 20 steps, the same bits on every rank.
  Run at20 = single(d, "adam", o);
  const OptimizerState mine = m.params().export_optimizer();
  CHECK(state_diff(mine, at20.model->params().export_optimizer()) <= 1e-4);
  const auto hashes = w.allgather_one(state_hash(mine));
  CHECK(std::all_of(hashes.begin(), hashes.end(), [&](std::uint64_t h) { return h == hashes[0]; }));

  // The checkpoint the save hook wrote at step 10 (mid-run) holds one process's state after 10 steps.
  TrainOptions o10 = o;
  o10.max_steps = 10;
  Run at10 = single(d, "adam", o10);
  Model back(small_model(d));
  auto back_opt = make_optimizer<float>("adam", opt_config("adam"));
  REQUIRE(load_checkpoint(root + "/at10", back.params(), back_opt.get()).step == 10);
  CHECK(state_diff(back.params().export_optimizer(), at10.model->params().export_optimizer()) <= 1e-4);
  CHECK(max_diff(back, *at10.model).first <= 2e-5);
  w.barrier();
}

TEST_CASE("the equality check can fail: another data order is far outside the tolerance", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  TrainOptions other = options(true);
  other.seed = 6;
  Run a = single(d, "adam", other);
  Run b = parallel(w, d, "adam", options(true));
  CHECK(max_diff(*a.model, *b.model).first > 1e-3);
}

TEST_CASE("the global loss reported by every rank is the whole batch's mean", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  TrainOptions o = options(false);
  o.max_steps = 1;
  Model ref(small_model(d));
  ref.exec().init_params(11);
  std::vector<std::int64_t> rows(64);
  std::iota(rows.begin(), rows.end(), 0);
  ref.bind(d, rows);
  ref.compute_gradients();
  Run b = parallel(w, d, "sgd", o);
  REQUIRE(b.result.epochs.size() == 1);
  for (std::size_t k = 0; k < ref.last_losses().size(); ++k)
    CHECK(b.result.epochs[0].mean_losses[k] == Approx(ref.last_losses()[k]).epsilon(1e-5));
}

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_term(int) { g_stop.store(true); }
}  // namespace

TEST_CASE("SIGTERM on the last rank stops every rank after the same step", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  struct sigaction sa {}, old {};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &old);
  g_stop.store(false);
  TrainHooks hooks;
  hooks.stop = &g_stop;
  hooks.on_step = [&](const StepInfo& i) {
    if (i.step == 3 && w.rank() == w.size() - 1) std::raise(SIGTERM);  // a real signal, on one rank only
  };
  TrainOptions o = options(false);
  Run b = parallel(w, d, "adam", o, hooks);
  sigaction(SIGTERM, &old, nullptr);
  CHECK(b.result.stopped);
  CHECK(b.result.steps == 4);  // the signal came after step 3; step 4 saw it and was completed by every rank
  const auto steps = w.allgather_one(b.result.steps);
  CHECK(std::all_of(steps.begin(), steps.end(), [](std::int64_t s) { return s == 4; }));
  const auto hashes = w.allgather_one(hash_of(w, *b.model));
  CHECK(std::all_of(hashes.begin(), hashes.end(), [&](std::uint64_t h) { return h == hashes[0]; }));
}

TEST_CASE("a NaN on one rank stops every rank, naming the rank and the node", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  Model m(small_model(d));
  m.exec().init_params(11);
  auto opt = make_optimizer<float>("adam", opt_config("adam"));
  DataParallel dp(w, m);
  const int bad = w.size() - 1;
  if (w.rank() == bad) {
    // Poison one dense weight on this rank only: its forward pass produces NaN.
    for (NodeId p : m.exec().params())
      if (!m.exec().is_sparse(p) && m.exec().param(p).size() > 1) {
        m.exec().param(p).data()[0] = std::numeric_limits<float>::quiet_NaN();
        break;
      }
  }
  std::vector<std::int64_t> rows(64);
  std::iota(rows.begin(), rows.end(), 0);
  try {
    dp.step(d, rows, *opt, false);
    FAIL("no rank reported the NaN");
  } catch (const RemoteError& e) {
    CHECK(e.rank == bad);
    CHECK_FALSE(e.node.empty());
    CHECK(std::string(e.what()).find(e.node) != std::string::npos);
    CHECK(std::string(e.what()).find("rank " + std::to_string(bad)) != std::string::npos);
  }
  CHECK(m.params().optimizer_steps() == 0);  // nobody applied the step
}

TEST_CASE("the replica check finds a rank whose parameters drifted", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  Model m(small_model(d));
  m.exec().init_params(11);
  DataParallel dp(w, m);
  CHECK_NOTHROW(dp.check_replicas(1));
  if (w.rank() == w.size() - 1) m.exec().param(m.exec().params()[0]).data()[0] += 1e-6f;
  if (w.size() > 1)
    CHECK_THROWS_AS(dp.check_replicas(2), ReplicaMismatch);
  else
    CHECK_NOTHROW(dp.check_replicas(2));
}

TEST_CASE("sharded evaluation gives the whole set's metrics of one process", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  Run b = parallel(w, d, "adam", options(true));
  const FunnelMetrics one = evaluate(*b.model, d, 4096);
  const FunnelMetrics all = evaluate_sharded(w, *b.model, d, 100);
  CHECK(all.rows == one.rows);
  CHECK(all.ctr_auc == Approx(one.ctr_auc).margin(1e-6));
  CHECK(all.cvr_auc == Approx(one.cvr_auc).margin(1e-6));
  CHECK(all.ctcvr_auc == Approx(one.ctcvr_auc).margin(1e-6));
  CHECK(all.ctr_logloss == Approx(one.ctr_logloss).epsilon(1e-5));
}

// Checkpoints hold the replicated model once (rank 0 writes them), so they load on any number of ranks.
TEST_CASE("checkpoints cross rank counts: 1 process -> N ranks -> 1 process", "[distributed]") {
  auto& w = world();
  const Dataset d = small_data();
  const SharedTemp tmp(w, "dp_ckpt");  // a directory every rank sees
  const std::string ck_one = tmp.root + "/one", ck_many = tmp.root + "/many";
  TrainOptions first = options(false), second = options(false);
  first.max_steps = 10;
  second.max_steps = 20;

  // One process trains 10 steps; rank 0 saves (every rank computed the same single-process run).
  Run a = single(d, "adam", first);
  const nlohmann::json no_data = nlohmann::json::object();
  if (w.rank() == 0) save_checkpoint(ck_one, a.model->exec(), a.opt.get(), to_json(a.model->config()), no_data, 10);
  w.barrier();
  // N ranks continue from it to step 20; rank 0 saves.
  Model m(small_model(d));
  auto opt = make_optimizer<float>("adam", opt_config("adam"));
  const CheckpointInfo info = load_checkpoint(ck_one, m.exec(), opt.get());
  REQUIRE(info.step == 10);
  DataParallel dp(w, m);
  TrainResult r = train_data_parallel(dp, m, *opt, d, nullptr, second, TrainHooks{}, info.step);
  REQUIRE(r.steps == 20);
  if (w.rank() == 0) save_checkpoint(ck_many, m.exec(), opt.get(), to_json(m.config()), no_data, r.steps);
  w.barrier();
  // One process continued from the same checkpoint: equal up to reduction order.
  Model ref(small_model(d));
  auto ref_opt = make_optimizer<float>("adam", opt_config("adam"));
  load_checkpoint(ck_one, ref.exec(), ref_opt.get());
  train(ref, *ref_opt, d, nullptr, second, TrainHooks{}, 10);
  CHECK(max_diff(m, ref).first <= 2e-5);
  // The N-rank checkpoint loads in one process bit for bit, optimizer state included.
  Model back(small_model(d));
  auto back_opt = make_optimizer<float>("adam", opt_config("adam"));
  CHECK(load_checkpoint(ck_many, back.exec(), back_opt.get()).step == 20);
  CHECK(max_diff(m, back).first == 0.0);
  CHECK(back.params().optimizer_steps() == m.params().optimizer_steps());
  // ... and its optimizer state is the one process's (the N ranks' sharded moments were gathered before the save).
  CHECK(state_diff(back.params().export_optimizer(), ref.params().export_optimizer()) <= 1e-4);
  w.barrier();  // rank 0 removes the directory only after everyone has read it
}
