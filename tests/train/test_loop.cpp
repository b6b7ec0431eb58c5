// The training loop (train/loop.*) and Model (train/model.*) on small synthetic data: ESMM learns, it is
// deterministic, the separate compute-gradients / apply-optimizer steps compose (with the after_gradients hook in
// between), and predictions follow the model's structure.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/parallel.hpp"
#include "train/checkpoint.hpp"

#include "data/synthetic.hpp"
#include "support/small_model.hpp"
#include "train/loop.hpp"

using namespace funnel;

namespace {
SyntheticConfig small_data() {
  SyntheticConfig c;
  c.rows = 30000;
  c.fields = 6;
  c.vocab_per_field = 50;
  c.seed = 7;
  c.ctr = 0.1;
  c.ctcvr = 0.02;
  return c;
}
ModelConfig small_model(const Dataset& d, const std::string& kind) { return test::sized_for(d, kind, 6, {16, 8}); }
// ESMM on small_data() with SGD, its parameters drawn with `seed`.
struct SgdEsmm {
  Dataset d = make_synthetic(small_data());
  Model m;
  std::unique_ptr<Optimizer<float>> opt = make_optimizer<float>("sgd", {});
  explicit SgdEsmm(std::uint64_t seed) : m(small_model(d, "esmm")) { m.exec().init_params(seed); }
};
}  // namespace

TEST_CASE("ESMM learns on synthetic data and beats chance on every metric", "[train]") {
  Dataset all = make_synthetic(small_data());
  Dataset tr, ev;
  split_tail(all, 0.3, tr, ev);
  REQUIRE(tr.rows() + ev.rows() == all.rows());
  Model m(small_model(tr, "esmm"));
  m.exec().init_params(1);
  OptimizerConfig oc;
  oc.lr = 0.01;
  auto opt = make_optimizer<float>("adam", oc);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 256;
  TrainResult r = train(m, *opt, tr, &ev, o, {});
  REQUIRE(r.epochs.size() == 2);
  const auto& e = r.epochs.back().eval;
  CHECK(e.ctr_auc > 0.6);
  CHECK(e.ctcvr_auc > 0.6);
  CHECK(e.cvr_auc_entire_space > 0.55);
  CHECK(r.epochs[1].mean_losses[0] < r.epochs[0].mean_losses[0] + 1e-3);
  CHECK(std::abs(e.mean_pctr - e.click_rate) < 0.03);
}

TEST_CASE("training is deterministic for a seed", "[train]") {
  Dataset d = make_synthetic(small_data());
  auto run = [&](std::uint64_t seed) {
    Model m(small_model(d, "esmm"));
    m.exec().init_params(seed);
    auto opt = make_optimizer<float>("adam", {});
    TrainOptions o;
    o.batch_size = 512;
    o.max_steps = 20;
    o.seed = seed;
    train(m, *opt, d, nullptr, o, {});
    return predict(m, d, 1000).column("pctcvr");
  };
  auto a = run(3), b = run(3), c = run(4);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("predictions satisfy pctcvr = pctr × pcvr for ESMM and clip for DIVISION", "[train]") {
  Dataset d = make_synthetic(small_data());
  for (std::string kind : {"esmm", "division"}) {
    Model m(small_model(d, kind));
    m.exec().init_params(2);
    Predictions p = predict(m, d, 777);
    REQUIRE(p.column("pctr").size() == static_cast<std::size_t>(d.rows()));
    for (std::size_t i = 0; i < p.column("pctr").size(); i += 97) {
      if (kind == "esmm") CHECK(p.column("pctcvr")[i] == Approx(p.column("pctr")[i] * p.column("pcvr")[i]).epsilon(1e-6));
      CHECK(p.column("pcvr")[i] >= 0.0f);
      CHECK(p.column("pcvr")[i] <= 1.0f);
    }
  }
}

TEST_CASE("max_steps and the stop flag end training early", "[train]") {
  SgdEsmm r0(1);
  auto& [d, m, opt] = r0;
  TrainOptions o;
  o.batch_size = 100;
  o.max_steps = 7;
  CHECK(train(m, *opt, d, nullptr, o, {}).steps == 7);
  std::atomic<bool> stop{false};
  TrainHooks h;
  h.stop = &stop;
  int calls = 0;
  h.on_step = [&](const StepInfo&) {
    if (++calls == 3) stop = true;
  };
  o.max_steps = 0;
  TrainResult r = train(m, *opt, d, nullptr, o, h);
  CHECK(r.stopped);
  CHECK(r.steps == 3);
}

TEST_CASE("the steady rate leaves out the first steps of a run, across epochs and when resumed", "[train]") {
  SgdEsmm r0(1);  // 30,000 rows: 3 steps of 10,000 an epoch
  auto& [d, m, opt] = r0;
  TrainOptions o;
  o.batch_size = 10000;
  o.epochs = 3;
  TrainResult r = train(m, *opt, d, nullptr, o, {});
  REQUIRE(r.steps == 9);
  CHECK(r.steady_rows == (9 - TrainResult::kWarmupSteps) * 10000);
  CHECK(r.steady_seconds > 0);
  CHECK(r.steady_samples_per_sec() > 0);
  double all_seconds = 0;
  for (const EpochReport& e : r.epochs) all_seconds += 3 * 10000 / e.samples_per_sec;
  CHECK(r.steady_seconds < all_seconds);
  CHECK(r.steady_steps == 9 - TrainResult::kWarmupSteps);
  // The phases add up to the steady time; the gradients took some of it.
  CHECK(r.steady_batch_seconds + r.steady_gradient_seconds + r.steady_update_seconds ==
        Approx(r.steady_seconds).epsilon(1e-9));
  CHECK(r.steady_gradient_seconds > 0);
  CHECK(r.profile.empty());  // not asked for
  // Resumed at step 9: the warm-up counts from the run's own first step.
  o.epochs = 1;
  TrainResult again = train(m, *opt, d, nullptr, o, {}, 9);
  CHECK(again.steps == 12);
  CHECK(again.steady_rows == 0);
  CHECK(again.steady_samples_per_sec() == 0);
}

TEST_CASE("a profiled run times every op of its steady steps, not its warm-up or evaluation", "[train]") {
  SgdEsmm r0(1);
  auto& [d, m, opt] = r0;
  TrainOptions o;
  o.batch_size = 3000;
  o.epochs = 2;
  o.profile = true;
  std::int64_t evals = 0;
  const EvalFn ev = [&](Model& mm) {
    ++evals;
    DatasetSource es(d, 3000);
    return evaluate(mm, es);
  };
  DatasetSource src(d, o.batch_size, true, 1);
  TrainResult r = train(m, *opt, src, ev, o, {});
  REQUIRE(evals == 2);
  REQUIRE(r.steady_steps == 20 - TrainResult::kWarmupSteps);
  REQUIRE_FALSE(r.profile.empty());
  double ms = 0;
  bool has_embedding = false, has_matmul = false;
  for (std::size_t i = 0; i < r.profile.size(); ++i) {
    const OpTime& t = r.profile[i];
    CHECK_FALSE(t.node.empty());
    CHECK(t.forward_ms >= 0);
    CHECK(t.backward_ms >= 0);
    // One thread: no loop runs on several threads, so all of an op's time is serial and nothing waits.
    CHECK(t.serial_ms == Approx(t.forward_ms + t.backward_ms).margin(1e-9));
    CHECK(t.wait_ms == 0.0);
    if (i > 0) CHECK(t.forward_ms + t.backward_ms <= r.profile[i - 1].forward_ms + r.profile[i - 1].backward_ms);
    has_embedding = has_embedding || t.op == "embedding";
    has_matmul = has_matmul || t.op == "matmul";
    ms += t.forward_ms + t.backward_ms;
  }
  CHECK(has_embedding);
  CHECK(has_matmul);
  // Per steady step the ops take part of the forward and backward time (not the evaluations').
  CHECK(ms <= 1e3 * r.steady_gradient_seconds / static_cast<double>(r.steady_steps) * 1.01);
  CHECK_FALSE(m.exec().profiling());
  REQUIRE(r.profile_thread_busy_ms.size() == 1);
  CHECK(r.profile_loop_ms == 0.0);
  CHECK(r.profile_wait_ms == 0.0);
}

TEST_CASE("a profiled run on two threads says how much of each op ran on one thread and how long it waited",
          "[train]") {
  set_num_threads(2);
  struct OneThread {
    ~OneThread() { set_num_threads(1); }
  } restore;
  const Dataset d = make_synthetic(small_data());
  // Towers wide enough that their gemms and elementwise ops split over both threads.
  Model m(test::sized_for(d, "esmm", 16, {192, 96}));
  m.exec().init_params(1);
  auto opt = make_optimizer<float>("adam", {});
  TrainOptions o;
  o.batch_size = 1000;
  o.epochs = 1;
  o.profile = true;
  TrainResult r = train(m, *opt, d, nullptr, o, {});
  REQUIRE(r.steady_steps > 0);
  REQUIRE(r.profile_thread_busy_ms.size() == 2);
  const double step_ms = 1e3 * r.steady_seconds / static_cast<double>(r.steady_steps);
  CHECK(r.profile_loop_ms > 0.0);
  CHECK(r.profile_loop_ms <= step_ms * 1.01);
  CHECK(r.profile_wait_ms <= r.profile_loop_ms);
  CHECK(r.profile_thread_busy_ms[1] > 0.0);  // the worker ran chunks
  CHECK(r.profile_thread_busy_ms[1] <= r.profile_loop_ms * 1.01);
  bool split = false;
  for (const OpTime& t : r.profile) {
    INFO(t.node);
    CHECK(t.serial_ms <= t.forward_ms + t.backward_ms + 1e-6);
    CHECK(t.serial_ms >= -1e-6);
    CHECK(t.wait_ms >= 0.0);
    CHECK(t.wait_ms <= t.forward_ms + t.backward_ms + 1e-6);
    if (t.op == "matmul" && t.serial_ms < 0.5 * (t.forward_ms + t.backward_ms)) split = true;
  }
  CHECK(split);  // some gemm ran mostly on both threads
}

TEST_CASE("data that does not fit the model is a clear error", "[train]") {
  Dataset d = make_synthetic(small_data());
  ModelConfig mc = small_model(d, "esmm");
  mc.num_fields = 5;
  Model m(mc);
  CHECK_THROWS_WITH(predict(m, d, 100), Catch::Contains("6 fields") && Catch::Contains("5"));
}

TEST_CASE("predictions from a saved checkpoint equal those of the in-memory model, --init resumes the optimizer",
          "[train][checkpoint]") {
  Dataset d = make_synthetic(small_data());
  const ModelConfig mc = small_model(d, "esmm");
  Model m(mc);
  m.exec().init_params(5);
  auto opt = make_optimizer<float>("adam", {});
  TrainOptions o;
  o.batch_size = 256;
  o.max_steps = 15;
  train(m, *opt, d, nullptr, o, {});
  const Predictions before = predict(m, d, 1000);

  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("funnel_trainer_ck_" + std::to_string(::getpid()))).string();
  save_checkpoint(dir, m.exec(), opt.get(), to_json(mc), nlohmann::json::object(), 15, 1);

  Model loaded(mc);
  loaded.exec().init_params(99);  // different values, overwritten by the load
  auto opt2 = make_optimizer<float>("adam", {});
  load_checkpoint(dir, loaded.exec(), opt2.get());
  const Predictions after = predict(loaded, d, 1000);
  CHECK(after.column("pctr") == before.column("pctr"));
  CHECK(after.column("pcvr") == before.column("pcvr"));
  CHECK(after.column("pctcvr") == before.column("pctcvr"));

  // Continuing both (same batches, same optimizer state) keeps them bit-identical.
  TrainOptions more = o;
  more.max_steps = 5;
  more.seed = 11;
  train(m, *opt, d, nullptr, more, {});
  train(loaded, *opt2, d, nullptr, more, {});
  CHECK(predict(loaded, d, 1000).column("pctcvr") == predict(m, d, 1000).column("pctcvr"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("after_gradients runs after backward and before the optimizer: what it does to the gradients is applied",
          "[train]") {
  SgdEsmm r0(4);
  auto& [d, m, opt] = r0;
  TrainOptions o;
  o.batch_size = 128;
  o.max_steps = 4;
  std::vector<std::int64_t> order;  // +step from after_gradients, -step from on_step
  bool saw_gradient = false;
  TrainHooks h;
  h.after_gradients = [&](Model& mm, GradientStep& g) {
    order.push_back(g.step);
    auto& ex = mm.exec();
    for (NodeId p : ex.params()) {
      if (ex.is_sparse(p)) {
        for (auto& v : ex.sparse_grad_mut(p).values) {
          saw_gradient = saw_gradient || v != 0.0f;
          v = 0.0f;
        }
      } else {
        for (auto& v : ex.grad_mut(p)) {
          saw_gradient = saw_gradient || v != 0.0f;
          v = 0.0f;
        }
      }
    }
  };
  h.on_step = [&](const StepInfo& i) { order.push_back(-i.step); };
  const Predictions before = predict(m, d, 1000);
  TrainResult r = train(m, *opt, d, nullptr, o, h);
  CHECK(r.steps == 4);
  CHECK(order == std::vector<std::int64_t>{1, -1, 2, -2, 3, -3, 4, -4});
  CHECK(saw_gradient);
  // Every gradient was zeroed before SGD saw it: the parameters did not move.
  CHECK(predict(m, d, 1000).column("pctcvr") == before.column("pctcvr"));
  // Without the hook they do.
  train(m, *opt, d, nullptr, o, {});
  CHECK(predict(m, d, 1000).column("pctcvr") != before.column("pctcvr"));
}
