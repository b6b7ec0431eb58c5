// Parallelism strategies (train/strategy.hpp): the loop calls a strategy's hooks at their points of every step, a
// Trainer given one trains, evaluates and saves through it, and strategies are found by name.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "train/communicator.hpp"
#include "train/strategy.hpp"
#include "support/small_model.hpp"
#include "train/trainer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// A strategy of one process that records where the loop calls it, and scales the gradients in after_gradients
// (a reduction stand-in whose effect the optimizer step must show).
class Recording final : public ParallelStrategy {
 public:
  std::string name() const override { return "recording"; }
  Communicator& comm() override { return comm_; }
  ParamStoreOptions store_options() const override { return {}; }
  void attach(Trainer&) override { log.push_back("attach"); }
  void before_training() override { log.push_back("begin"); }
  void before_step() override { log.push_back("step"); }
  void after_gradients(Model& m, GradientStep& g) override {
    log.push_back("grads");
    if (g.error) return;
    ParamStore<float>& ps = m.params();
    for (NodeId p : ps.ids())
      if (!ps.is_sparse(p) && ps.has_grad(p)) ps.grad(p) *= scale;
  }
  void apply_optimizer(Model& m, Optimizer<float>& opt, GradientStep& g) override {
    log.push_back("apply");
    ParallelStrategy::apply_optimizer(m, opt, g);
  }
  void after_step(const StepInfo&) override { log.push_back("after"); }
  FunnelMetrics evaluate(Model& m, BatchSource& mine, const EvalHooks& h) override {
    log.push_back("eval");
    return ParallelStrategy::evaluate(m, mine, h);
  }
  void before_save() override { log.push_back("before_save"); }
  void after_training() override { log.push_back("end"); }
  void save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) override {
    log.push_back("save");
    ParallelStrategy::save(t, dir, step, epoch);
  }

  std::vector<std::string> log;
  float scale = 1.0f;

 private:
  LocalCommunicator comm_;
};

TrainerOptions strategy_options() {
  TrainerOptions o = test::small_trainer("esmm", 4, {8, 4}, 500, 0.01);
  o.train.max_steps = 2;
  o.train.save_every = 2;
  return o;
}

std::shared_ptr<const TrainData> strategy_data() {
  static std::shared_ptr<const TrainData> d =
      load_train_data({.train = "synthetic:rows=1000,fields=3,vocab=20,seed=2"}, ReadOptions{});
  return d;
}

}  // namespace

TEST_CASE("strategy: the loop calls a strategy's hooks in order, around the user's", "[train][strategy]") {
  auto st = std::make_shared<Recording>();
  Trainer t(strategy_options(), strategy_data(), st);
  CHECK(&t.strategy() == st.get());
  TrainHooks h;
  h.after_gradients = [&](Model&, GradientStep&) { st->log.push_back("user_grads"); };
  h.on_step = [&](const StepInfo&) { st->log.push_back("on_step"); };
  h.save = [&](std::int64_t step, std::int64_t) {
    st->log.push_back("user_save");
    t.save(std::filesystem::temp_directory_path() / ("funnel_strategy_" + std::to_string(::getpid())), step);
  };
  const TrainResult r = t.train(h);
  CHECK(r.steps == 2);
  const std::vector<std::string> want{"attach", "begin",
                                      "step", "grads", "user_grads", "apply", "after", "on_step",
                                      "step", "grads", "user_grads", "apply", "after", "on_step",
                                      "before_save", "user_save", "save",
                                      "eval", "end"};
  CHECK(st->log == want);
  std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                              ("funnel_strategy_" + std::to_string(::getpid())));
}

TEST_CASE("strategy: what after_gradients does to the gradients is what the optimizer applies", "[train][strategy]") {
  // Two runs from the same seed, one with the gradients scaled by 0 in the strategy's hook: its dense parameters
  // stay at their initial values (SGD), the other's move.
  TrainerOptions o = strategy_options();
  o.optimizer = "sgd";
  o.train.save_every = 0;
  auto frozen = std::make_shared<Recording>();
  frozen->scale = 0.0f;
  Trainer a(o, strategy_data(), frozen), b(o, strategy_data());
  std::vector<std::vector<float>> before;
  const ParamStore<float>& pa = a.model().params();
  for (NodeId p : pa.ids()) before.emplace_back(pa.value(p).data(), pa.value(p).data() + pa.numel(p));
  a.train();
  b.train();
  std::size_t k = 0, dense = 0, moved_b = 0;
  for (NodeId p : pa.ids()) {
    const std::vector<float>& v0 = before[k++];
    if (pa.is_sparse(p)) continue;
    ++dense;
    CHECK(std::equal(v0.begin(), v0.end(), pa.value(p).data()));
    const float* vb = b.model().params().value(p).data();
    if (!std::equal(v0.begin(), v0.end(), vb)) ++moved_b;
  }
  CHECK(dense > 0);
  CHECK(moved_b > 0);
}

TEST_CASE("strategy: strategies by name, the local one always, an unknown name lists the known", "[train][strategy]") {
  CHECK(has_strategy("local"));
  CHECK(strategy_names().front() == "local");
  LocalCommunicator c;
  auto s = make_strategy("local", c);
  CHECK(s->name() == "local");
  CHECK(s->lead());
  CHECK_THROWS_WITH(make_strategy("no-such-strategy", c),
                    Contains("no parallelism strategy 'no-such-strategy'") && Contains("local"));
  CHECK_THROWS_WITH(register_strategy("local", "again", {}), Contains("'local' is registered twice"));
}

TEST_CASE("strategy: the local communicator copies, and is the process's when no MPI layer registered one",
          "[train][strategy]") {
  LocalCommunicator c;
  CHECK(c.rank() == 0);
  CHECK(c.size() == 1);
  std::int64_t x[2] = {3, 4}, y[2] = {0, 0};
  c.allgatherv(x, 2, y, std::vector<std::int64_t>{2}, DType::I64);
  CHECK(y[1] == 4);
  CHECK(c.allreduce_one<std::int64_t>(7, ReduceOp::Sum) == 7);
  CHECK(c.broadcast_string("abc", 0) == "abc");
  CHECK_THROWS_AS(c.alltoallv(x, std::vector<std::int64_t>{2}, y, std::vector<std::int64_t>{1}, DType::I64),
                  CommError);
  // test_train links no MPI layer: the process's communicator is a local one.
  CHECK_FALSE(process_communicator().is_mpi());
  CHECK(process_communicator().size() == 1);
}
