// Learning-rate schedules (train/lr_schedule.*) and their use by the training loop: the rate of every step, the
// horizon counted from the data, the configured rate restored afterwards, and a constant schedule that leaves
// training bit-identical.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <vector>

#include "data/synthetic.hpp"
#include "support/small_model.hpp"
#include "train/loop.hpp"
#include "train/lr_schedule.hpp"

using namespace funnel;

TEST_CASE("schedules start at the base rate, end at min_lr, and stay there past the end", "[train][lr]") {
  LrSchedule s;
  CHECK(s.at(0.5, 0) == 0.5);
  CHECK(s.at(0.5, 1000) == 0.5);
  for (auto kind : {LrScheduleKind::Cosine, LrScheduleKind::Linear}) {
    s.kind = kind;
    s.steps = 101;
    s.min_lr = 0.01;
    CHECK(s.at(0.5, 0) == Approx(0.5));
    CHECK(s.at(0.5, 100) == Approx(0.01));
    CHECK(s.at(0.5, 5000) == Approx(0.01));
    CHECK(s.at(0.5, 50) == Approx(0.01 + 0.49 * 0.5));  // half way: half of the span for both shapes
    for (int k = 1; k <= 100; ++k) CHECK(s.at(0.5, k) < s.at(0.5, k - 1));
  }
  s.kind = LrScheduleKind::Cosine;
  CHECK(s.at(0.5, 25) == Approx(0.01 + 0.49 * 0.5 * (1 + std::cos(M_PI / 4))));
  s.kind = LrScheduleKind::Linear;
  CHECK(s.at(0.5, 25) == Approx(0.01 + 0.49 * 0.75));
  CHECK(lr_schedule_kind("cosine") == LrScheduleKind::Cosine);
  CHECK(std::string(lr_schedule_name(LrScheduleKind::Linear)) == "linear");
  CHECK_THROWS_WITH(lr_schedule_kind("step"), Catch::Contains("constant, cosine or linear"));
}

namespace {
struct Run {
  Dataset d;
  Model m;
  std::unique_ptr<Optimizer<float>> opt;
  std::vector<double> lrs;  // the optimizer's rate seen after each step
  explicit Run(const LrSchedule& s, std::int64_t max_steps = 0)
      : d(make_data()), m(test::sized_for(d, "esmm", 4, {8})) {
    m.exec().init_params(1);
    OptimizerConfig oc;
    oc.lr = 0.01;
    opt = make_optimizer<float>("adam", oc);
    TrainOptions o;
    o.batch_size = 100;  // 1000 rows: 10 steps an epoch
    o.epochs = 2;
    o.max_steps = max_steps;
    o.lr_schedule = s;
    TrainHooks h;
    h.on_step = [this](const StepInfo&) { lrs.push_back(opt->config().lr); };
    train(m, *opt, d, nullptr, o, h);
  }
  static Dataset make_data() { return make_synthetic({.rows = 1000, .fields = 4, .vocab_per_field = 20, .seed = 3}); }
  // The shared embedding table: every step moves it.
  std::vector<float> params() {
    const auto id = m.exec().graph().find("embedding/table");
    REQUIRE(id);
    const auto& t = m.params().value(*id);
    return std::vector<float>(t.data(), t.data() + t.size());
  }
};
}  // namespace

TEST_CASE("the loop sets the scheduled rate before every step and restores the configured one", "[train][lr]") {
  LrSchedule s;
  s.kind = LrScheduleKind::Linear;
  s.min_lr = 0.001;
  Run r(s);  // horizon counted by the loop: 2 epochs × 10 batches
  REQUIRE(r.lrs.size() == 20);
  for (std::size_t k = 0; k < r.lrs.size(); ++k) CHECK(r.lrs[k] == Approx(0.001 + 0.009 * (1.0 - k / 19.0)));
  CHECK(r.opt->config().lr == 0.01);  // restored: a checkpoint records the configured rate

  Run capped(s, 5);  // max_steps shortens the horizon: the decay ends at the last step taken
  REQUIRE(capped.lrs.size() == 5);
  CHECK(capped.lrs.back() == Approx(0.001));
}

TEST_CASE("a constant schedule trains bit-identically to none, a decaying one differently", "[train][lr]") {
  LrSchedule constant, cosine;
  cosine.kind = LrScheduleKind::Cosine;
  Run a(constant), b(constant), c(cosine);
  CHECK(a.params() == b.params());
  CHECK(a.params() != c.params());
  for (double lr : a.lrs) CHECK(lr == 0.01);
}
