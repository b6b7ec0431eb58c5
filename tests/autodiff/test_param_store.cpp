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

namespace {

// A storage keeping its own copy of the rows (not the lookup tensor) and recording the initializer's rows in the
// order they came: what a storage whose rows live elsewhere sees of ParamStore::init.
class RecordingTable final : public TableStorage<float> {
 public:
  RecordingTable(std::int64_t rows, std::int64_t dim) : rows_(rows), dim_(dim) {}
  const char* kind() const override { return "recording"; }
  std::int64_t rows() const override { return rows_; }
  std::int64_t dim() const override { return dim_; }
  void bind(Tensor<float>& lookup, SparseRows<float>* grad) override {
    lookup = Tensor<float>::from_shape({std::size_t{0}, static_cast<std::size_t>(dim_)});
    if (grad) grad->init(0, dim_);
  }
  bool held_in_store() const override { return false; }
  void init(const TableRowDraw<float>& draw) override {
    order.clear();
    drawn.clear();
    draw([&](std::int64_t r, const float* x) {
      order.push_back(r);
      drawn.insert(drawn.end(), x, x + dim_);
    });
  }
  std::int64_t held_rows() const override { return static_cast<std::int64_t>(order.size()); }
  std::int64_t table_row(std::int64_t i) const override { return order.at(static_cast<std::size_t>(i)); }
  const float* held_values() const override { return drawn.data(); }
  void apply(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) override {}
  void apply_lookup(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) override {}
  std::vector<std::int64_t> order;
  std::vector<float> drawn;

 private:
  std::int64_t rows_, dim_;
};

// Plain SGD as a row rule: p -= lr·g on the rows given, counting the rows it saw.
struct RowSgd final : RowUpdateRule<float> {
  float lr = 0.5f;
  std::size_t seen = 0;
  void update_rows(float* p, const float* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                   float* const*, std::int64_t) override {
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t j = 0; j < dim; ++j) p[static_cast<std::size_t>(idx[k]) * dim + j] -= lr * g[k * dim + j];
    seen += rows;
  }
};

}  // namespace

TEST_CASE("table storage: a storage takes init()'s rows of its table, row by row in order, for every seed",
          "[autodiff][store][table]") {
  Net n;
  ParamStore<float> full(n.g);
  full.init(21);
  ParamStoreOptions o;
  o.tables = [](const Graph& g, NodeId p) -> std::unique_ptr<TableStorage<float>> {
    return std::make_unique<RecordingTable>(g.node(p).shape[0], g.node(p).shape[1]);
  };
  ParamStore<float> rec(n.g, o);
  REQUIRE(rec.is_table(n.table.id));
  CHECK_FALSE(rec.is_table(n.w1.id));
  CHECK(std::string(full.table(n.table.id).kind()) == "local");
  auto& r = dynamic_cast<RecordingTable&>(rec.table(n.table.id));
  rec.init(21);
  CHECK(r.order == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  REQUIRE(r.drawn.size() == 12);
  CHECK(std::memcmp(r.drawn.data(), full.value(n.table.id).data(), 12 * sizeof(float)) == 0);
  // The dense parameters are the full store's; the table was never allocated in the store.
  CHECK(std::memcmp(full.value(n.w1.id).data(), rec.value(n.w1.id).data(), 6 * sizeof(float)) == 0);
  CHECK(rec.value(n.table.id).size() == 0);
  // Another seed draws other rows (the comparison above can fail).
  rec.init(22);
  CHECK(std::memcmp(r.drawn.data(), full.value(n.table.id).data(), 12 * sizeof(float)) != 0);
  // A local table holds its rows in the lookup tensor: what the executor reads.
  const TableStorage<float>& local = full.table(n.table.id);
  CHECK(local.held_in_store());
  CHECK(local.held_values() == full.value(n.table.id).data());
  CHECK(local.rows() == 6);
  CHECK(local.dim() == 2);
  CHECK_THROWS_WITH(full.table(n.w1.id), Contains("'w1'") && Contains("not an embedding table"));
  // Storages from a factory are for float stores.
  CHECK_THROWS_WITH(ParamStore<double>(n.g, o), Contains("float store"));
}

TEST_CASE("table storage: the optimizer's rule updates the rows the storage holds, which the next lookup reads",
          "[autodiff][store][table]") {
  Net n;
  ParamStore<float> ps(n.g);
  ps.init(5);
  Executor<float> ex(n.g, ps);
  n.feed(ex, 4);  // rows 0..3 of the table
  ex.forward();
  ex.backward(n.loss.id);
  const NodeId t = n.table.id;
  const std::vector<float> before(ps.value(t).data(), ps.value(t).data() + 12);
  const SparseRows<float>& g = ps.sparse_grad(t);
  REQUIRE(g.size() == 4);
  RowSgd sgd;
  ps.table(t).apply_lookup(g, sgd, 1);
  CHECK(sgd.seen == 4);
  // Touched rows moved by −lr·g, untouched rows (4, 5) kept their bits.
  for (std::size_t k = 0; k < g.size(); ++k)
    for (std::size_t j = 0; j < 2; ++j) {
      const auto at = static_cast<std::size_t>(g.rows[k]) * 2 + j;
      CHECK(ps.table(t).held_values()[at] == before[at] - 0.5f * g.row_at(k)[j]);
      CHECK(ps.table(t).held_values()[at] != before[at]);
    }
  CHECK(std::memcmp(ps.value(t).data() + 8, before.data() + 8, 4 * sizeof(float)) == 0);
  // The next forward pass looks up the updated rows: e2[b] = table row b.
  ex.forward();
  const Tensor<float>& e = ex.value(n.g.at("e2"));
  for (std::size_t b = 0; b < 4; ++b)
    for (std::size_t j = 0; j < 2; ++j) CHECK(e.data()[b * 2 + j] == ps.table(t).held_values()[b * 2 + j]);

  // A new storage for the table: the executor made before reads it (the lookup tensor did not move), the old
  // storage's slots are freed with it.
  ps.ensure_slots("adam", {"m", "v"}, {0.0f, 0.5f});
  CHECK(ps.table(t).num_slots() == 2);
  CHECK(ps.slot(t, 1)[11] == 0.5f);
  const std::size_t with_slots = ps.allocated_bytes();
  // (the gradient's touched rows are forgotten too; its row index is made again)
  const std::size_t touched = g.values.capacity() * sizeof(float) + g.rows.capacity() * sizeof(std::int64_t);
  ps.set_table(t, std::make_unique<LocalTable<float>>(6, 2));
  CHECK(with_slots - ps.allocated_bytes() == 2 * 12 * sizeof(float) + touched);
  CHECK(ps.table(t).num_slots() == 0);
  CHECK(ps.value(t).data() != nullptr);
  ps.init(9);
  ex.forward();
  const Tensor<float>& e9 = ex.value(n.g.at("e2"));
  for (std::size_t k = 0; k < 8; ++k) CHECK(e9.data()[k] == ps.value(t).data()[k]);
  CHECK(std::memcmp(e9.data(), before.data(), 8 * sizeof(float)) != 0);
  CHECK_THROWS_WITH(ps.set_table(t, std::make_unique<LocalTable<float>>(7, 2)), Contains("'table'"));
  CHECK_THROWS_WITH(ps.set_table(n.w1.id, std::make_unique<LocalTable<float>>(2, 3)),
                    Contains("'w1'") && Contains("not an embedding table"));
}

TEST_CASE("table storage: a table held outside the store is never allocated in it, nor its state exported",
          "[autodiff][store][table]") {
  Net n;
  ParamStoreOptions o;
  o.tables = [](const Graph& g, NodeId p) -> std::unique_ptr<TableStorage<float>> {
    return std::make_unique<RecordingTable>(g.node(p).shape[0], g.node(p).shape[1]);
  };
  ParamStore<float> full(n.g), outside(n.g, o);
  full.init(3);
  outside.init(3);
  CHECK(full.table(n.table.id).held_in_store());
  CHECK_FALSE(outside.table(n.table.id).held_in_store());
  CHECK(outside.value(n.table.id).size() == 0);
  CHECK(outside.value(n.table.id).shape()[1] == 2);
  // The table (6 × 2 values, its 6-entry row index) is all the difference.
  CHECK(full.allocated_bytes() - outside.allocated_bytes() == 6 * 2 * sizeof(float) + 6 * sizeof(std::int32_t));
  // The store exports and imports the state of the rest only.
  full.ensure_slots("adam", {"m", "v"}, {0.0f, 0.0f});
  outside.ensure_slots("adam", {"m", "v"}, {0.0f, 0.0f});
  CHECK(full.export_optimizer().arrays.size() == 2 * 5);
  const OptimizerState st = outside.export_optimizer();
  CHECK(st.arrays.size() == 2 * 4);
  for (const auto& a : st.arrays) CHECK(a.name.rfind("table/", 0) != 0);
  ParamStore<float> back(n.g, o);
  back.import_optimizer("adam", {"m", "v"}, full.export_optimizer());  // the table's arrays: accepted, not read
  CHECK(back.optimizer() == "adam");
}
