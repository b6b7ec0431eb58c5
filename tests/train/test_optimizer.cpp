// Optimizers: each update against hand-computed values (dense and lazily-applied sparse rows), L2, state
// export/import (resume is bit-identical), the factory and config checks, and convergence on a small least-squares
// problem.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "train/optimizer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// loss = sum(w ⊙ c): dL/dw = c. w is 1×3, c is fed. An extra parameter reaches no loss.
struct DenseProblem {
  Graph g;
  Var w, c, unused, loss;
  DenseProblem() {
    w = param(g, "w", Shape{1, 3}, Init::constant(1.0));
    c = input(g, "c", Shape{1, 3});
    unused = param(g, "unused", Shape{2}, Init::constant(5.0));
    loss = sum(mul(w, c));
    g.mark_loss(loss.id);
  }
  template <class T>
  void run(Executor<T>& ex, std::vector<double> grad) {
    ex.set_batch(1);
    auto& in = ex.input(c.id);
    for (std::size_t i = 0; i < 3; ++i) in.data()[i] = static_cast<T>(grad[i]);
    ex.forward();
    ex.backward(loss.id);
  }
};

// loss = sum(embedding(table, ids) ⊙ r): the table (4×2) gets a sparse gradient, row ids[b] gets r[b].
struct SparseProblem {
  Graph g;
  Var table, idv, r, loss;
  SparseProblem() {
    table = param(g, "emb/table", Shape{4, 2}, Init::zeros());
    idv = ids(g, "ids", 1);
    r = input(g, "r", Shape{kBatch, 1, 2});
    loss = sum(mul(embedding(table, idv), r));
    g.mark_loss(loss.id);
  }
  // One row per id; grads[k] is the gradient row of ids[k].
  void run(Executor<float>& ex, const std::vector<std::int64_t>& rows, const std::vector<std::vector<float>>& grads) {
    const auto b = static_cast<std::int64_t>(rows.size());
    ex.set_batch(b);
    IdBatch& ib = ex.ids(idv.id);
    ib.reset(b, 1);
    for (auto row : rows) {
      ib.push(row);
      ib.end_cell();
    }
    auto& in = ex.input(r.id);
    for (std::size_t k = 0; k < rows.size(); ++k)
      for (std::size_t d = 0; d < 2; ++d) in.data()[k * 2 + d] = grads[k][d];
    ex.forward();
    ex.backward(loss.id);
  }
  void set_table(Executor<float>& ex) {
    auto& t = ex.param(table.id);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = 1.0f + 0.5f * static_cast<float>(i);
  }
};

OptimizerConfig cfg_lr(double lr) {
  OptimizerConfig c;
  c.lr = lr;
  return c;
}

const NamedArray* find_array(const OptimizerState& s, const std::string& name) {
  for (const auto& a : s.arrays)
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

TEST_CASE("sgd, momentum, adagrad and adam match hand-computed dense updates", "[optimizer]") {
  DenseProblem pb;
  Executor<float> ex(pb.g);
  ex.init_params(1);
  const std::vector<double> g{2.0, -1.0, 0.5};

  SECTION("sgd") {
    auto opt = make_optimizer<float>("sgd", cfg_lr(0.1));
    pb.run(ex, g);
    opt->step(ex);
    // p = 1 - 0.1·g
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.8));
    CHECK(ex.param(pb.w.id)(0, 1) == Approx(1.1));
    CHECK(ex.param(pb.w.id)(0, 2) == Approx(0.95));
    CHECK(ex.store().export_optimizer().arrays.empty());
  }
  SECTION("sgd with momentum 0.9") {
    OptimizerConfig c = cfg_lr(0.1);
    c.momentum = 0.9;
    auto opt = make_optimizer<float>("sgd", c);
    pb.run(ex, g);
    opt->step(ex);
    pb.run(ex, g);
    opt->step(ex);
    // v1 = g, p1 = 1 - 0.1 g; v2 = 0.9 g + g = 1.9 g, p2 = p1 - 0.19 g = 1 - 0.29 g
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(1 - 0.29 * 2.0));
    CHECK(ex.param(pb.w.id)(0, 1) == Approx(1 + 0.29));
    const auto st = ex.store().export_optimizer();
    const auto* v = find_array(st, "w/momentum");
    REQUIRE(v);
    CHECK(v->data[0] == Approx(3.8));
  }
  SECTION("adagrad") {
    auto opt = make_optimizer<float>("adagrad", cfg_lr(0.1));
    pb.run(ex, g);
    opt->step(ex);
    // acc = g², p1 = 1 - 0.1·g/|g|
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.9));
    CHECK(ex.param(pb.w.id)(0, 1) == Approx(1.1));
    pb.run(ex, g);
    opt->step(ex);
    // acc = 2g², p2 = p1 - 0.1·g/(√2·|g|)
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.9 - 0.1 / std::sqrt(2.0)));
    CHECK(ex.param(pb.w.id)(0, 2) == Approx(0.9 - 0.1 / std::sqrt(2.0)));  // every coordinate moves by lr·sign(g)
    const auto st = ex.store().export_optimizer();
    CHECK(find_array(st, "w/adagrad_sum")->data[0] == Approx(8.0));
  }
  SECTION("adagrad with an initial accumulator") {
    OptimizerConfig c = cfg_lr(0.1);
    c.initial_accumulator = 12.0;
    auto opt = make_optimizer<float>("adagrad", c);
    pb.run(ex, g);
    opt->step(ex);
    // acc = 12 + 4 = 16, p = 1 - 0.1·2/4
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.95));
  }
  SECTION("adam") {
    auto opt = make_optimizer<float>("adam", cfg_lr(0.1));
    // With a constant gradient the bias-corrected moments are m̂ = g, v̂ = g², so every step moves by lr·sign(g).
    pb.run(ex, g);
    opt->step(ex);
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.9));
    CHECK(ex.param(pb.w.id)(0, 1) == Approx(1.1));
    pb.run(ex, g);
    opt->step(ex);
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.8));
    CHECK(ex.param(pb.w.id)(0, 2) == Approx(0.8));
    auto st = ex.store().export_optimizer();
    CHECK(st.step == 2);
    // m2 = 0.9·0.1·g + 0.1·g = 0.19 g, v2 = (0.999·0.001 + 0.001) g²
    CHECK(find_array(st, "w/adam_m")->data[0] == Approx(0.38));
    CHECK(find_array(st, "w/adam_v")->data[0] == Approx(0.001999 * 4.0));
    // A changing gradient: step 3 with g3 = [-1, 0, 0] against the formula.
    const double m3 = 0.9 * 0.38 + 0.1 * -1.0, v3 = 0.999 * 0.007996 + 0.001 * 1.0;
    const double mh = m3 / (1 - std::pow(0.9, 3)), vh = v3 / (1 - std::pow(0.999, 3));
    pb.run(ex, {-1.0, 0.0, 0.0});
    opt->step(ex);
    CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.8 - 0.1 * mh / (std::sqrt(vh) + 1e-8)));
  }
  // The parameter that reaches no loss is never touched.
  CHECK(ex.param(pb.unused.id)(0) == 5.0f);
}

TEST_CASE("optimizers work on Executor<double> as well", "[optimizer]") {
  DenseProblem pb;
  Executor<double> ex(pb.g);
  ex.init_params(1);
  auto opt = make_optimizer<double>("adam", cfg_lr(0.01));
  for (int i = 0; i < 3; ++i) {
    pb.run(ex, {1.0, 1.0, -3.0});
    opt->step(ex);
  }
  CHECK(ex.param(pb.w.id)(0, 0) == Approx(0.97).epsilon(1e-9));
  CHECK(ex.param(pb.w.id)(0, 2) == Approx(1.03).epsilon(1e-9));
  auto st = ex.store().export_optimizer();
  CHECK(st.arrays.size() == 4);  // w and unused, m and v each
}

TEST_CASE("L2 weight decay is added to the gradient", "[optimizer]") {
  DenseProblem pb;
  Executor<float> ex(pb.g);
  ex.init_params(1);
  OptimizerConfig c = cfg_lr(0.1);
  c.weight_decay = 0.5;
  auto opt = make_optimizer<float>("sgd", c);
  pb.run(ex, {2.0, 0.0, -1.0});
  opt->step(ex);
  // p = 1 - 0.1·(g + 0.5·1)
  CHECK(ex.param(pb.w.id)(0, 0) == Approx(1 - 0.1 * 2.5));
  CHECK(ex.param(pb.w.id)(0, 1) == Approx(1 - 0.1 * 0.5));
  CHECK(ex.param(pb.w.id)(0, 2) == Approx(1 - 0.1 * -0.5));
  CHECK(ex.param(pb.unused.id)(1) == 5.0f);  // no gradient, no decay
}

TEST_CASE("sparse gradients update only the touched rows", "[optimizer][sparse]") {
  SparseProblem pb;
  Executor<float> ex(pb.g);
  pb.set_table(ex);  // row r = [1 + r, 1.5 + r]
  REQUIRE(ex.is_sparse(pb.table.id));
  const Tensor<float> before = ex.param(pb.table.id);

  SECTION("sgd with L2: decay on touched rows only") {
    OptimizerConfig c = cfg_lr(0.1);
    c.weight_decay = 0.5;
    auto opt = make_optimizer<float>("sgd", c);
    pb.run(ex, {1, 3}, {{2.0f, -2.0f}, {1.0f, 0.0f}});
    opt->step(ex);
    const auto& t = ex.param(pb.table.id);
    CHECK(t(1, 0) == Approx(2.0 - 0.1 * (2.0 + 0.5 * 2.0)));
    CHECK(t(1, 1) == Approx(2.5 - 0.1 * (-2.0 + 0.5 * 2.5)));
    CHECK(t(3, 0) == Approx(4.0 - 0.1 * (1.0 + 0.5 * 4.0)));
    CHECK(t(3, 1) == Approx(4.5 - 0.1 * (0.5 * 4.5)));
    for (int r : {0, 2})
      for (int d = 0; d < 2; ++d) CHECK(t(r, d) == before(r, d));
  }
  SECTION("adagrad accumulators of untouched rows stay at their initial value") {
    OptimizerConfig c = cfg_lr(0.1);
    c.initial_accumulator = 0.25;
    auto opt = make_optimizer<float>("adagrad", c);
    pb.run(ex, {2}, {{1.0f, -3.0f}});
    opt->step(ex);
    const auto& t = ex.param(pb.table.id);
    CHECK(t(2, 0) == Approx(3.0 - 0.1 * 1.0 / std::sqrt(1.25)));
    CHECK(t(2, 1) == Approx(3.5 + 0.1 * 3.0 / std::sqrt(9.25)));
    const auto st = ex.store().export_optimizer();
    const auto* acc = find_array(st, "emb/table/adagrad_sum");
    REQUIRE(acc);
    CHECK(acc->data[0] == 0.25f);
    CHECK(acc->data[4] == Approx(1.25));
    CHECK(acc->data[5] == Approx(9.25));
    CHECK(t(0, 0) == before(0, 0));
  }
  SECTION("adam (lazy, like SparseAdam): untouched moments are not decayed, bias correction by global step") {
    auto opt = make_optimizer<float>("adam", cfg_lr(0.1));
    pb.run(ex, {1, 3}, {{2.0f, -2.0f}, {1.0f, 4.0f}});
    opt->step(ex);
    auto st1 = ex.store().export_optimizer();
    const Tensor<float> after1 = ex.param(pb.table.id);
    CHECK(after1(1, 0) == Approx(1.9));
    CHECK(after1(3, 1) == Approx(4.4));

    // Step 2 touches row 1 only: row 3 and its moments keep their step-1 values exactly.
    pb.run(ex, {1}, {{-1.0f, 0.5f}});
    opt->step(ex);
    auto st2 = ex.store().export_optimizer();
    const auto& t = ex.param(pb.table.id);
    for (int d = 0; d < 2; ++d) {
      CHECK(t(3, d) == after1(3, d));
      CHECK(t(0, d) == before(0, d));
      CHECK(t(2, d) == before(2, d));
    }
    for (const char* slot : {"emb/table/adam_m", "emb/table/adam_v"}) {
      const auto* a1 = find_array(st1, slot);
      const auto* a2 = find_array(st2, slot);
      REQUIRE(a1);
      REQUIRE(a2);
      CHECK(a2->data[6] == a1->data[6]);  // row 3
      CHECK(a2->data[7] == a1->data[7]);
      CHECK(a2->data[0] == 0.0f);  // row 0 never touched
    }
    // Row 1, coordinate 0: g1 = 2, g2 = -1, t = 2.
    const double m = 0.9 * 0.2 + 0.1 * -1.0, v = 0.999 * 0.004 + 0.001 * 1.0;
    const double upd = 0.1 * (m / (1 - 0.81)) / (std::sqrt(v / (1 - 0.998001)) + 1e-8);
    CHECK(t(1, 0) == Approx(1.9 - upd));
    CHECK(find_array(st2, "emb/table/adam_m")->data[2] == Approx(m));

    // Step 3 touches row 3 again: its bias correction uses t = 3 although the row saw only 2 updates.
    pb.run(ex, {3}, {{1.0f, 4.0f}});
    opt->step(ex);
    const double m3 = 0.9 * 0.1 + 0.1, v3 = 0.999 * 0.001 + 0.001;
    const double upd3 = 0.1 * (m3 / (1 - std::pow(0.9, 3))) / (std::sqrt(v3 / (1 - std::pow(0.999, 3))) + 1e-8);
    CHECK(ex.param(pb.table.id)(3, 0) == Approx(after1(3, 0) - upd3));
  }
}

TEST_CASE("a sparse update equals the dense update on touched rows (sgd)", "[optimizer][sparse]") {
  SparseProblem sp;
  Executor<float> ex(sp.g);
  sp.set_table(ex);
  auto opt = make_optimizer<float>("sgd", cfg_lr(0.3));
  // Row 2 appears twice: its gradient is the sum of both.
  sp.run(ex, {2, 0, 2}, {{1.0f, 2.0f}, {0.5f, 0.5f}, {-3.0f, 1.0f}});
  opt->step(ex);
  const auto& t = ex.param(sp.table.id);
  CHECK(t(2, 0) == Approx(3.0 - 0.3 * -2.0));
  CHECK(t(2, 1) == Approx(3.5 - 0.3 * 3.0));
  CHECK(t(0, 0) == Approx(1.0 - 0.3 * 0.5));
  CHECK(t(1, 1) == 2.5f);
}

TEST_CASE("exported state resumes training bit-identically", "[optimizer][state]") {
  for (const char* name : {"adam", "adagrad", "sgd"}) {
    CAPTURE(name);
    OptimizerConfig c = cfg_lr(0.05);
    c.momentum = 0.5;
    c.weight_decay = 0.01;
    SparseProblem pa, pb;
    Executor<float> a(pa.g), b(pb.g);
    pa.set_table(a);
    pb.set_table(b);
    auto oa = make_optimizer<float>(name, c);
    auto ob = make_optimizer<float>(name, c);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<std::vector<std::int64_t>> rows{{0, 1}, {2}, {1, 3}, {0}, {3, 2}};
    std::vector<std::vector<std::vector<float>>> grads;
    for (auto& r : rows) {
      grads.emplace_back();
      for (std::size_t k = 0; k < r.size(); ++k) grads.back().push_back({u(rng), u(rng)});
    }
    for (std::size_t s = 0; s < 2; ++s) {
      pa.run(a, rows[s], grads[s]);
      oa->step(a);
      pb.run(b, rows[s], grads[s]);
      ob->step(b);
    }
    // A fresh optimizer takes over b's state, exported, dropped and imported again.
    auto oc = make_optimizer<float>(name, c);
    const OptimizerState st = b.store().export_optimizer();
    b.store().reset_optimizer();
    CHECK(b.store().optimizer_steps() == 0);
    oc->import_state(b.store(), st);
    CHECK(b.store().optimizer_steps() == 2);
    for (std::size_t s = 2; s < rows.size(); ++s) {
      pa.run(a, rows[s], grads[s]);
      oa->step(a);
      pb.run(b, rows[s], grads[s]);
      oc->step(b);
    }
    const auto& ta = a.param(pa.table.id);
    const auto& tb = b.param(pb.table.id);
    for (std::size_t i = 0; i < ta.size(); ++i) CHECK(ta.data()[i] == tb.data()[i]);
    CHECK(ta(0, 0) != 1.0f);  // something moved
  }
}

TEST_CASE("state import rejects mismatched state", "[optimizer][state]") {
  DenseProblem pb;
  Executor<float> ex(pb.g);
  ex.init_params(1);
  auto adam = make_optimizer<float>("adam", cfg_lr(0.1));
  pb.run(ex, {1, 1, 1});
  adam->step(ex);
  OptimizerState st = ex.store().export_optimizer();
  REQUIRE(st.arrays.size() == 4);
  CHECK(st.arrays[0].name == "w/adam_m");
  CHECK(st.arrays[0].shape == std::vector<std::int64_t>{1, 3});

  auto fresh = make_optimizer<float>("adam", cfg_lr(0.1));
  Executor<float> target(pb.g);  // a store without optimizer state
  SECTION("another optimizer's state") {
    auto sgd = make_optimizer<float>("adagrad", cfg_lr(0.1));
    CHECK_THROWS_WITH(sgd->import_state(target.store(), st), Contains("'adam'") && Contains("'adagrad'"));
  }
  SECTION("missing array") {
    st.arrays.erase(st.arrays.begin() + 1);
    CHECK_THROWS_WITH(fresh->import_state(target.store(), st), Contains("missing array 'w/adam_v'"));
  }
  SECTION("wrong shape") {
    st.arrays[0].shape = {3, 1};
    CHECK_THROWS_WITH(fresh->import_state(target.store(), st), Contains("'w/adam_m'") && Contains("[3, 1]") &&
                                                         Contains("[1, 3]"));
  }
  SECTION("unknown array") {
    st.arrays.push_back({"nope/adam_m", {1}, {0.0f}});
    CHECK_THROWS_WITH(fresh->import_state(target.store(), st), Contains("'nope/adam_m'"));
  }
  // A failed import leaves the store as it was.
  CHECK(target.store().optimizer_steps() == 0);
  CHECK(target.store().optimizer().empty());
  CHECK(target.store().export_optimizer().arrays.empty());
}

TEST_CASE("make_optimizer names and config checks", "[optimizer]") {
  CHECK(std::string(make_optimizer<float>("adam", {})->name()) == "adam");
  CHECK(std::string(make_optimizer<float>("adagrad", {})->name()) == "adagrad");
  CHECK(std::string(make_optimizer<double>("sgd", {})->name()) == "sgd");
  CHECK_THROWS_WITH(make_optimizer<float>("rmsprop", {}),
                    Contains("unknown optimizer 'rmsprop'") && Contains("adagrad, adam, sgd"));
  OptimizerConfig bad;
  bad.lr = -1;
  CHECK_THROWS_WITH(make_optimizer<float>("adam", bad), Contains("lr"));
  bad = {};
  bad.beta2 = 1.0;
  CHECK_THROWS_WITH(make_optimizer<float>("adam", bad), Contains("beta2"));

  OptimizerConfig c;
  c.lr = 0.25;
  c.momentum = 0.5;
  OptimizerConfig back = optimizer_config_from_json(to_json(c));
  CHECK(back.lr == 0.25);
  CHECK(back.momentum == 0.5);
  CHECK(back.beta2 == 0.999);
  CHECK_THROWS_WITH(optimizer_config_from_json(nlohmann::json{{"learning_rate", 1}}),
                    Contains("unknown key 'learning_rate'"));
  CHECK_THROWS_WITH(optimizer_config_from_json(nlohmann::json{{"lr", "fast"}}), Contains("'lr' must be a number"));
}

TEST_CASE("every optimizer converges on a small least-squares problem", "[optimizer][converge]") {
  // loss = mean((x·w - y)²) with y = x·w*, w* = [1, -2, 0.5]ᵀ; fixed batch of 16 rows.
  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  Var yneg = input(g, "yneg", Shape{kBatch, 1});
  Var w = param(g, "w", Shape{3, 1}, Init::zeros());
  Var d = add(matmul(x, w), yneg);
  Var loss = mean(mul(d, d));
  g.mark_loss(loss.id);
  const double wstar[3] = {1.0, -2.0, 0.5};
  struct Case {
    const char* name;
    double lr;
    int steps;
  };
  for (Case cs : {Case{"sgd", 0.1, 400}, Case{"adagrad", 0.5, 600}, Case{"adam", 0.05, 800}}) {
    CAPTURE(cs.name);
    Executor<float> ex(g);
    ex.init_params(0);
    ex.set_batch(16);
    std::mt19937 rng(3);
    std::normal_distribution<float> n01(0, 1);
    for (int b = 0; b < 16; ++b) {
      double y = 0;
      for (int j = 0; j < 3; ++j) {
        const float v = n01(rng);
        ex.input(x.id)(b, j) = v;
        y += v * wstar[j];
      }
      ex.input(yneg.id)(b, 0) = static_cast<float>(-y);
    }
    OptimizerConfig c = cfg_lr(cs.lr);
    if (std::string(cs.name) == "sgd") c.momentum = 0.5;
    auto opt = make_optimizer<float>(cs.name, c);
    ex.forward();
    const float first = ex.scalar(loss.id);
    for (int s = 0; s < cs.steps; ++s) {
      ex.forward();
      ex.backward(loss.id);
      opt->step(ex);
    }
    ex.forward();
    CHECK(ex.scalar(loss.id) < 1e-5f * first);
    for (int j = 0; j < 3; ++j) CHECK(ex.param(w.id)(j, 0) == Approx(wstar[j]).margin(2e-3));
  }
}

TEST_CASE("optimizer state lives in the store: one optimizer steps several stores, a store holds one kind",
          "[optimizer][store]") {
  DenseProblem a;
  SparseProblem b;
  Executor<float> ea(a.g);
  Executor<float> eb(b.g);
  ea.init_params(0);
  b.set_table(eb);
  auto opt = make_optimizer<float>("adam", {});
  a.run(ea, {1, 2, 3});
  opt->step(ea);
  opt->step(ea);
  b.run(eb, {0}, {{1.0f, 1.0f}});
  opt->step(eb);  // another graph's store: its own slots and step count
  CHECK(ea.store().optimizer_steps() == 2);
  CHECK(eb.store().optimizer_steps() == 1);
  CHECK(ea.store().optimizer() == "adam");
  CHECK(eb.store().export_optimizer().arrays.size() == 2);  // emb/table m and v
  // A store holding adam's state refuses another kind until it is reset.
  auto sgd = make_optimizer<float>("sgd", cfg_lr(0.1));
  CHECK_THROWS_WITH(sgd->step(ea), Contains("'adam'") && Contains("'sgd'"));
  CHECK(ea.store().optimizer_steps() == 2);  // the refused step counted nothing
  ea.store().reset_optimizer();
  CHECK_NOTHROW(sgd->step(ea));
  CHECK(ea.store().optimizer() == "sgd");
  CHECK(ea.store().optimizer_steps() == 1);
}
