// Evaluation that can be watched and stopped (train/loop.hpp: EvalHooks, EvalInterrupted): progress after every
// batch up to the whole set, the stop flag ending it after the current batch, and a training run whose stop comes
// during the evaluation after an epoch ending as stopped, with that epoch's steps kept and no metrics for it.
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "data/synthetic.hpp"
#include "support/small_model.hpp"
#include "train/loop.hpp"

using namespace funnel;

namespace {
struct EvalStopSetup {
  Dataset train, eval;
  Model m;
  std::unique_ptr<Optimizer<float>> opt = make_optimizer<float>("sgd", {});
  static Dataset data() { return make_synthetic({.rows = 6000, .fields = 4, .vocab_per_field = 30, .seed = 11}); }
  explicit EvalStopSetup(Dataset all = data()) : m(test::sized_for(all, "esmm", 4, {8})) {
    split_tail(all, 0.5, train, eval);
    m.exec().init_params(3);
  }
};
}  // namespace

TEST_CASE("evaluate reports progress after every batch and stops after the batch in which the flag is set",
          "[train][eval]") {
  EvalStopSetup s;
  DatasetSource src(s.eval, 500);
  std::vector<EvalProgress> seen;
  EvalHooks h;
  h.on_batch = [&](const EvalProgress& p) { seen.push_back(p); };
  const FunnelMetrics full = evaluate(s.m, src, {}, h);
  REQUIRE(seen.size() == 6);  // 3000 rows in batches of 500
  CHECK(seen.front().batches == 1);
  CHECK(seen.front().rows_done == 500);
  CHECK(seen.back().rows_done == 3000);
  CHECK(seen.back().rows_total == 3000);
  CHECK(full.rows == 3000);
  // The same scores with hooks as without.
  DatasetSource plain(s.eval, 500);
  CHECK(evaluate(s.m, plain).ctr_auc == full.ctr_auc);

  std::atomic<bool> stop{false};
  seen.clear();
  h.stop = &stop;
  h.on_batch = [&](const EvalProgress& p) {
    seen.push_back(p);
    if (p.batches == 2) stop = true;
  };
  DatasetSource again(s.eval, 500);
  CHECK_THROWS_AS(evaluate(s.m, again, {}, h), EvalInterrupted);
  CHECK(seen.size() == 2);
}

TEST_CASE("a stop during the evaluation after an epoch ends training as stopped, the epoch kept without metrics",
          "[train][eval]") {
  EvalStopSetup s;
  std::atomic<bool> stop{false};
  TrainHooks h;
  h.stop = &stop;
  int eval_batches = 0;
  h.on_eval_batch = [&](const EvalProgress&) {
    if (++eval_batches == 1) stop = true;
  };
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 250;
  o.eval_batch_size = 500;
  const TrainResult r = train(s.m, *s.opt, s.train, &s.eval, o, h);
  CHECK(r.stopped);
  CHECK(r.stopped_in_eval);
  CHECK(eval_batches == 1);
  CHECK(r.steps == 12);  // the whole first epoch: 3000 rows in batches of 250
  REQUIRE(r.epochs.size() == 1);
  CHECK_FALSE(r.epochs[0].has_eval);
  CHECK(r.epochs[0].steps == 12);
  // Without a stop: every epoch is evaluated.
  EvalStopSetup s2;
  TrainHooks none;
  int batches = 0;
  none.on_eval_batch = [&](const EvalProgress&) { ++batches; };
  const TrainResult full = train(s2.m, *s2.opt, s2.train, &s2.eval, o, none);
  CHECK_FALSE(full.stopped);
  CHECK(full.epochs.size() == 3);
  CHECK(full.epochs.back().has_eval);
  CHECK(batches == 18);
}
