// Trainer (train/trainer.*): a whole training run as a library call — data from specs, the model built for it,
// hooks, checkpoints, resume, metrics JSON — and load_model for evaluation and prediction.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/simd.hpp"
#include "support/small_model.hpp"
#include "train/trainer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// 20,000 rows: with 4,000 (16 steps an epoch) the learned CTR AUC after two epochs still hangs on the initial draw.
const char* kSpec = "synthetic:rows=20000,fields=4,vocab=30,seed=5";

TrainerOptions small(const std::string& kind) {
  TrainerOptions o = test::small_trainer(kind, 4, {8, 4}, 256, 0.01);
  o.optimizer = "adam";
  return o;
}

std::shared_ptr<const TrainData> data() {
  static std::shared_ptr<const TrainData> d = load_train_data({.train = kSpec}, ReadOptions{});
  return d;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("funnel_trainer_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("Trainer: the model is built for the data, trained with hooks, evaluated every epoch", "[train][trainer]") {
  TrainerOptions o = small("esmm");
  o.train.epochs = 2;
  Trainer t(o, data());
  CHECK(t.options().model.num_fields == 4);
  CHECK(t.options().model.vocab == data()->train.data.vocab);
  CHECK(t.model().handle().kind == "esmm");
  int grads = 0, steps = 0, epochs = 0;
  TrainHooks h;
  h.after_gradients = [&](Model&, GradientStep& g) { CHECK(g.step == ++grads); };
  h.on_step = [&](const StepInfo&) { ++steps; };
  h.on_epoch = [&](const EpochReport& e) {
    ++epochs;
    CHECK(e.has_eval);
  };
  TrainResult r = t.train(h);
  const std::int64_t per_epoch = (data()->train.data.rows() + 255) / 256;
  CHECK(r.steps == 2 * per_epoch);
  CHECK(grads == r.steps);
  CHECK(steps == r.steps);
  CHECK(epochs == 2);
  REQUIRE(r.epochs.size() == 2);
  CHECK(r.epochs[1].eval.ctr_auc > 0.5);
  CHECK(t.loss_name(0) == "ctr");
  CHECK(t.loss_name(1) == "ctcvr");
  CHECK_THAT(t.model_description(), Contains("esmm: 4 fields") && Contains("adam lr 0.01"));

  const nlohmann::json j = t.metrics_json(r);
  CHECK(j["model"]["kind"] == "esmm");
  CHECK(j["steps"] == r.steps);
  REQUIRE(j["epochs"].size() == 2);
  CHECK(j["epochs"][1].contains("loss_ctcvr"));
  CHECK(j["epochs"][1]["ctr_auc"].get<double>() == r.epochs[1].eval.ctr_auc);
  // What ran: the gemm implementation and the CPU's flags.
  CHECK(j["gemm"]["precision"] == "fp32");
  CHECK(j["gemm"]["implementation"] == gemm_implementation());
  CHECK(j["gemm"]["cpu_flags"] == cpu_gemm_flags());
  CHECK(j["simd"]["isa"] == simd_isa_name(simd_isa()));
  // A second call continues from the last step.
  CHECK(t.train().steps == 4 * per_epoch);
}

TEST_CASE("Trainer: save, load_model for prediction, resume with --init, a different model is refused",
          "[train][trainer]") {
  const std::string dir = temp_dir("ck");
  TrainerOptions o = small("base");
  o.train.max_steps = 6;
  Trainer t(o, data());
  TrainResult r = t.train();
  REQUIRE(r.steps == 6);
  t.save(dir, r.steps);

  LoadedModel l = load_model(dir);
  CHECK(l.model->config().kind == "base");
  CHECK(l.info.step == 6);
  const auto& ev = data()->eval;
  CHECK(predict(*l.model, ev, 500).column("pcvr") == predict(t.model(), ev, 500).column("pcvr"));

  TrainerOptions resume = o;
  resume.init_dir = dir;
  resume.train.max_steps = 9;  // this run's steps: 6 from the checkpoint + 9 = global step 15
  Trainer t2(resume, data());
  CHECK(t2.start_step() == 6);
  CHECK(t2.train().steps == 15);

  TrainerOptions other = resume;
  other.model.kind = "esmm";
  CHECK_THROWS_WITH(Trainer(other, data()), Contains(dir) && Contains("does not match"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("Trainer: bad options are errors before any training", "[train][trainer]") {
  TrainerOptions o = small("nope");
  CHECK_THROWS_WITH(Trainer(o, data()), Contains("unknown model 'nope'"));
  o = small("esmm");
  o.threads = 0;
  CHECK_THROWS_WITH(Trainer(o, data()), Contains("threads"));
  o = small("esmm");
  CHECK_THROWS_WITH(Trainer(o, nullptr), Contains("no data"));
  o.optimizer = "lbfgs";
  CHECK_THROWS_AS(Trainer(o, data()), Error);
}
