// ParamStore: parameters live apart from executors. Executors borrow a store: values are read from it, gradients
// written into it; two executors on one store see the same numbers; initialisation depends on (seed, name) only.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/param_store.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// out = relu(x·w1)·w2 + emb(ids)·v, loss = Σ out; "spare" reaches no loss.
struct Net {
  Graph g;
  Var x, ids, w1, w2, table, v, spare, loss;
  explicit Net(bool with_extra = false) {
    if (with_extra) param(g, "extra", {4}, Init::normal(1.0));  // declared first: shifts every node id
    x = input(g, "x", {kBatch, 2});
    ids = funnel::ids(g, "ids", 1);
    w1 = param(g, "w1", {2, 3}, Init::glorot_uniform());
    w2 = param(g, "w2", {3, 1}, Init::normal(0.5));
    table = param(g, "table", {6, 2}, Init::normal(0.1));
    v = param(g, "v", {2, 1}, Init::constant(0.25));
    spare = param(g, "spare", {3}, Init::constant(5.0));
    Var e = reshape(embedding(table, ids, Pool::Sum, "e"), {kBatch, 2}, "e2");
    Var out = add(matmul(relu(matmul(x, w1, "h"), "a"), w2, "o1"), matmul(e, v, "o2"), "out");
    loss = sum(out, "loss");
    g.mark_loss(loss.id);
  }
  template <class T>
  void feed(Executor<T>& ex, std::int64_t b) {
    ex.set_batch(b);
    for (std::int64_t i = 0; i < 2 * b; ++i) ex.input(x.id).data()[i] = static_cast<T>(0.5 + 0.25 * i);
    IdBatch& ib = ex.ids(ids.id);
    ib.reset(b, 1);
    for (std::int64_t i = 0; i < b; ++i) {
      ib.push(i % 6);
      ib.end_cell();
    }
  }
};

}  // namespace

TEST_CASE("an executor borrows the store: values read from it, gradients written into it", "[autodiff][store]") {
  Net n;
  ParamStore<double> ps(n.g);
  CHECK(ps.size() == 5);
  CHECK(ps.ids() == n.g.params());
  ps.init(3);
  Executor<double> ex(n.g, ps);
  CHECK(&ex.store() == &ps);
  CHECK(&ex.param(n.w1.id) == &ps.value(n.w1.id));
  n.feed(ex, 4);
  ex.forward();
  const double before = ex.scalar(n.loss.id);
  // A change made through the store is what the next forward pass reads.
  ps.value(n.v.id).fill(0.0);
  ex.forward();
  CHECK(ex.scalar(n.loss.id) != before);
  ex.backward(n.loss.id);
  CHECK(&ex.grad(n.w2.id) == &ps.grad(n.w2.id));
  CHECK(ps.has_grad(n.w1.id));
  CHECK(ps.has_grad(n.table.id));
  CHECK_FALSE(ps.has_grad(n.spare.id));  // reaches no loss
  REQUIRE(ps.is_sparse(n.table.id));
  CHECK(ps.sparse_grad(n.table.id).size() == 4);  // rows 0..3 of the batch's ids
  CHECK_THROWS_WITH(ps.grad(n.table.id), Contains("'table'") && Contains("sparse"));
  CHECK_THROWS_WITH(ps.sparse_grad(n.w1.id), Contains("'w1'") && Contains("dense"));
  CHECK_THROWS_WITH(ps.value(n.x.id), Contains("'x'") && Contains("not a parameter"));
}

TEST_CASE("two executors on one store share the parameters but not their batches", "[autodiff][store]") {
  Net n;
  ParamStore<float> ps(n.g);
  ps.init(7);
  Executor<float> train(n.g, ps), eval(n.g, ps);
  n.feed(train, 4);
  n.feed(eval, 2);
  train.forward();
  eval.forward();
  // The first two rows of both batches are the same rows, so the same parameters give the same outputs.
  const auto& o4 = train.value(n.g.at("out"));
  const auto& o2 = eval.value(n.g.at("out"));
  REQUIRE(o2.size() == 2);
  CHECK(o4.data()[0] == o2.data()[0]);
  CHECK(o4.data()[1] == o2.data()[1]);
  // An update through one is seen by the other.
  train.param(n.w2.id).fill(0.0f);
  eval.forward();
  CHECK(eval.value(n.g.at("o1")).data()[0] == 0.0f);
}

TEST_CASE("a store made for another graph is refused", "[autodiff][store]") {
  Net a, b;
  ParamStore<float> ps(a.g);
  CHECK_THROWS_WITH(Executor<float>(b.g, ps), Contains("another graph"));
}

TEST_CASE("initial values depend on the seed and the parameter's name only", "[autodiff][store]") {
  Net a, b(true);
  ParamStore<double> pa(a.g), pb(b.g), pc(a.g);
  pa.init(11);
  pb.init(11);
  pc.init(12);
  for (const char* name : {"w1", "w2", "table", "v", "spare"}) {
    INFO(name);
    const auto& x = pa.value(a.g.at(name));
    const auto& y = pb.value(b.g.at(name));
    REQUIRE(x.size() == y.size());
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(x.data()[i] == y.data()[i]);
  }
  CHECK(pa.value(a.w1.id).data()[0] != pc.value(a.w1.id).data()[0]);
  CHECK(pa.value(a.v.id).data()[1] == 0.25);
}

TEST_CASE("optimizer slots: made once, kept per kind, exported and imported by name", "[autodiff][store]") {
  Net n;
  ParamStore<float> ps(n.g);
  CHECK(ps.optimizer().empty());
  CHECK(ps.export_optimizer().arrays.empty());
  ps.ensure_slots("adam", {"adam_m", "adam_v"}, {0.0f, 0.5f});
  float* m = ps.slot(n.table.id, 0);
  ps.ensure_slots("adam", {"adam_m", "adam_v"}, {0.0f, 0.5f});  // again: nothing reallocated
  CHECK(ps.slot(n.table.id, 0) == m);
  CHECK(ps.slot(n.table.id, 1)[11] == 0.5f);
  CHECK_THROWS_WITH(ps.ensure_slots("adagrad", {"adagrad_sum"}, {0.0f}), Contains("'adam'"));
  CHECK(ps.count_step() == 1);
  const OptimizerState st = ps.export_optimizer();
  CHECK(st.optimizer == "adam");
  CHECK(st.step == 1);
  REQUIRE(st.arrays.size() == 10);
  CHECK(st.arrays[4].name == "table/adam_m");
  CHECK(st.arrays[4].shape == std::vector<std::int64_t>{6, 2});

  ParamStore<float> other(n.g);
  OptimizerState bad = st;
  bad.arrays[3].data.pop_back();
  CHECK_THROWS_WITH(other.import_optimizer("adam", {"adam_m", "adam_v"}, bad), Contains("'w2/adam_v'"));
  CHECK(other.optimizer().empty());  // untouched
  other.import_optimizer("adam", {"adam_m", "adam_v"}, st);
  CHECK(other.optimizer_steps() == 1);
  CHECK(other.slot(n.table.id, 1)[11] == 0.5f);
  other.reset_optimizer();
  CHECK(other.optimizer().empty());
  CHECK(other.optimizer_steps() == 0);
}

TEST_CASE("param_store: draw_rows gives init()'s values row by row, for every initializer", "[autodiff][store]") {
  Net n;
  ParamStore<float> full(n.g);
  full.init(21);
  for (NodeId p : full.ids()) {
    INFO(full.name(p));
    const auto& v = full.value(p);
    std::vector<float> got;
    std::int64_t next = 0;
    full.draw_rows(p, 21, [&](std::int64_t row, const float* x) {
      CHECK(row == next++);
      const std::size_t len = v.size() / static_cast<std::size_t>(n.g.node(p).shape[0]);
      got.insert(got.end(), x, x + len);
    });
    REQUIRE(got.size() == v.size());
    CHECK(std::memcmp(got.data(), v.data(), got.size() * sizeof(float)) == 0);
  }
  // Another seed draws other values (the comparison above can fail).
  std::vector<float> other;
  full.draw_rows(n.table.id, 22, [&](std::int64_t, const float* x) { other.insert(other.end(), x, x + 2); });
  CHECK(std::memcmp(other.data(), full.value(n.table.id).data(), other.size() * sizeof(float)) != 0);
}

TEST_CASE("param_store: a store with deferred tables never allocates them, hold_elsewhere frees a table",
          "[autodiff][store]") {
  Net n;
  ParamStore<float> full(n.g), deferred(n.g, ParamStoreOptions{.defer_tables = true});
  full.init(3);
  deferred.init(3);
  CHECK_FALSE(full.held_elsewhere(n.table.id));
  REQUIRE(deferred.held_elsewhere(n.table.id));
  CHECK(deferred.slots_elsewhere(n.table.id));
  CHECK_FALSE(deferred.held_elsewhere(n.w1.id));
  CHECK(deferred.value(n.table.id).size() == 0);
  CHECK(deferred.value(n.table.id).shape()[1] == 2);
  // The table (6 × 2 values, its 6-entry row index) is all the difference.
  CHECK(full.allocated_bytes() - deferred.allocated_bytes() == 6 * 2 * sizeof(float) + 6 * sizeof(std::int32_t));
  // Dense parameters are drawn as in the full store.
  CHECK(std::memcmp(full.value(n.w1.id).data(), deferred.value(n.w1.id).data(), 6 * sizeof(float)) == 0);
  // The optimizer's slots are not made for it.
  deferred.ensure_slots("adam", {"m", "v"}, {0.0f, 0.0f});
  CHECK(deferred.export_optimizer().arrays.size() == 2 * 4);
  // hold_elsewhere: only tables; frees the value, the gradient's row index and the slots.
  full.ensure_slots("adam", {"m", "v"}, {0.0f, 0.0f});
  const std::size_t before = full.allocated_bytes();
  full.hold_elsewhere(n.table.id);
  CHECK(full.held_elsewhere(n.table.id));
  CHECK(before - full.allocated_bytes() == 3 * 6 * 2 * sizeof(float) + 6 * sizeof(std::int32_t));
  CHECK_THROWS_WITH(full.hold_elsewhere(n.w1.id), Contains("'w1'") && Contains("not an embedding table"));
}
