// The optimizer registry (train/optimizer.hpp): an optimizer defined and registered in one file — here this test
// file, as a user's project would — is made by name, trained with by the Trainer and checkpointed like funnel's own.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "support/small_model.hpp"
#include "train/trainer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// Sign descent with a per-element count of updates: p -= lr·sign(g); count += 1.
template <class T>
class SignDescent final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "signsgd"; }
  std::vector<std::string> slot_names() const override { return {"sign_count"}; }

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t) override {
    const T lr = static_cast<T>(this->cfg_.lr);
    for (std::size_t i = 0; i < n; ++i) {
      p[i] -= lr * static_cast<T>((g[i] > 0) - (g[i] < 0));
      slots[0][i] += 1;
    }
  }
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim, T* const* slots,
                     std::int64_t t) override {
    for (std::size_t k = 0; k < rows; ++k) {
      const std::size_t off = static_cast<std::size_t>(idx[k]) * dim;
      T* row_slots[1] = {slots[0] + off};
      update_dense(p + off, g + k * dim, dim, row_slots, t);
    }
  }
};

}  // namespace

FUNNEL_REGISTER_OPTIMIZER(signsgd, SignDescent, .name = "signsgd", .help = "sign descent (a test's own optimizer)",
                          .default_lr = 0.001, .order = 200);

TEST_CASE("an optimizer registered from a test file is found by name and listed", "[optimizer][registry]") {
  const OptimizerDef* d = find_optimizer("signsgd");
  REQUIRE(d);
  CHECK(d->default_lr == 0.001);
  CHECK(std::string(make_optimizer<float>("signsgd", {})->name()) == "signsgd");
  CHECK(std::string(make_optimizer<double>("signsgd", {})->name()) == "signsgd");
  const auto defs = optimizer_defs();
  REQUIRE(defs.size() >= 4);
  CHECK(defs[0]->name == "adam");  // funnel's own first, by their order
  CHECK(defs.back()->name == "signsgd");
  CHECK(find_optimizer("adam")->default_lr == 0.002);
  CHECK(find_optimizer("adagrad")->default_lr == 0.05);
  CHECK(find_optimizer("sgd")->default_lr == 0.05);
  OptimizerDef again;
  again.name = "signsgd";
  again = with_optimizer_factories<SignDescent>(again);
  CHECK_THROWS_WITH(register_optimizer(again), Contains("already registered"));
  CHECK_THROWS_WITH(make_optimizer<float>("nosuch", {}), Contains("signsgd"));
}

TEST_CASE("the Trainer trains with a registered optimizer by name and checkpoints its slots", "[optimizer][registry]") {
  TrainerOptions o = test::small_trainer("esmm", 4, {8, 4}, 256, 0.001);
  o.optimizer = "signsgd";
  Trainer t(o, load_train_data({.train = "synthetic:rows=2000,fields=4,vocab=30,seed=5"}, ReadOptions{}));
  CHECK(std::string(t.optimizer().name()) == "signsgd");
  ParamStore<float>& ps = t.model().exec().store();
  // A dense parameter before training: every element moves by exactly lr (or 0 where its gradient was 0) per step.
  NodeId dense = ps.ids().front();
  for (NodeId p : ps.ids())
    if (!ps.is_sparse(p)) dense = p;
  const std::vector<float> before(ps.value(dense).data(), ps.value(dense).data() + ps.numel(dense));
  const TrainResult r = t.train();
  REQUIRE(r.steps > 1);
  CHECK(ps.optimizer() == "signsgd");
  const OptimizerState st = ps.export_optimizer();
  REQUIRE_FALSE(st.arrays.empty());
  CHECK(st.arrays.front().name.find("/sign_count") != std::string::npos);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    const double steps = std::abs(static_cast<double>(ps.value(dense).data()[i]) - before[i]) / 0.001;
    CHECK(steps <= static_cast<double>(r.steps) + 1e-3);
    moved += steps > 0.5;
  }
  CHECK(moved > 0);
  // Saved and loaded back under its name.
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("funnel_optreg_" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  t.save(dir, r.steps);
  const CheckpointInfo info = read_checkpoint_info(dir);
  CHECK(info.optimizer == "signsgd");
  std::filesystem::remove_all(dir);
}
