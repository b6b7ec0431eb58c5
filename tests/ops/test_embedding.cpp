// embedding: sum and mean pooling by hand (weights, empty cells, repeated ids), the sparse table gradient, dense
// accumulation when the table is also read densely, out-of-range ids, attribute and shape rules.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "op_test_util.hpp"

using namespace funnel;
using namespace funnel::testing;
using Catch::Matchers::Contains;

namespace {
// Table 4×2: row r = [10r, 10r + 1]. B=2, F=2:
//   row 0: {1}   {2 (w 2), 3 (w 0.5)}
//   row 1: {}    {1, 1}
void feed(IdBatch& b) {
  b.reset(2, 2);
  b.push(1); b.end_cell();
  b.push(2, 2.0f); b.push(3, 0.5f); b.end_cell();
  b.end_cell();
  b.push(1); b.push(1); b.end_cell();
}

template <class T>
struct Fixture {
  Graph g;
  Var table, idv, e, r, loss;
  explicit Fixture(Pool pool) {
    table = param(g, "table", Shape{4, 2}, Init::zeros());
    idv = ids(g, "ids", 2);
    e = embedding(table, idv, pool, "lookup");
    r = input(g, "r", Shape{kBatch, 2, 2});
    loss = sum(mul(e, r));  // de = r
  }
  void run(Executor<T>& ex) {
    ex.set_batch(2);
    fill(ex.param(table.id), {0, 1, 10, 11, 20, 21, 30, 31});
    feed(ex.ids(idv.id));
    fill(ex.input(r.id), {1, 2, 3, 4, 5, 6, 7, 8});  // r[b, f] = cells (1,2) (3,4) (5,6) (7,8)
    ex.forward();
    ex.backward(loss.id);
  }
};

template <class T>
std::map<std::int64_t, std::vector<double>> sparse_rows(const SparseRows<T>& s) {
  std::map<std::int64_t, std::vector<double>> out;
  for (std::size_t k = 0; k < s.size(); ++k) out[s.rows[k]] = std::vector<double>(s.row_at(k), s.row_at(k) + s.dim);
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("embedding sum pooling by hand, sparse gradient", "[ops][embedding]", float, double) {
  Fixture<TestType> f(Pool::Sum);
  CHECK(f.e.shape() == Shape{kBatch, 2, 2});
  Executor<TestType> ex(f.g);
  f.run(ex);
  // (0,1): table[1]; (0,1): 2·table[2] + 0.5·table[3]; (1,0): empty; (1,1): 2·table[1].
  check_near(values(ex.value(f.e.id)), {10, 11, 40 + 15, 42 + 15.5, 0, 0, 20, 22});
  REQUIRE(ex.is_sparse(f.table.id));
  const auto& sg = ex.sparse_grad(f.table.id);
  CHECK(sg.rows == std::vector<std::int64_t>{1, 2, 3});  // first-touch order; row 0 untouched
  auto rows = sparse_rows(sg);
  check_near(rows[1], {1 + 2 * 7, 2 + 2 * 8});
  check_near(rows[2], {2 * 3, 2 * 4});
  check_near(rows[3], {0.5 * 3, 0.5 * 4});
}

TEMPLATE_TEST_CASE("embedding mean pooling by hand", "[ops][embedding]", float, double) {
  Fixture<TestType> f(Pool::Mean);
  Executor<TestType> ex(f.g);
  f.run(ex);
  // Cell (0,1) divides by 2.5, cell (1,1) by 2; the empty cell stays zero.
  check_near(values(ex.value(f.e.id)), {10, 11, 55 / 2.5, 57.5 / 2.5, 0, 0, 10, 11}, 1e-5);
  auto rows = sparse_rows(ex.sparse_grad(f.table.id));
  REQUIRE(rows.size() == 3);
  check_near(rows[1], {1 + 7, 2 + 8}, 1e-6);
  check_near(rows[2], {2 / 2.5 * 3, 2 / 2.5 * 4}, 1e-6);
  check_near(rows[3], {0.5 / 2.5 * 3, 0.5 / 2.5 * 4}, 1e-6);
}

TEST_CASE("embedding mean of weights summing to zero gives zeros and no gradient", "[ops][embedding]") {
  Graph g;
  Var t = param(g, "table", Shape{3, 2}, Init::normal(1.0));
  Var idv = ids(g, "ids", 1);
  Var e = embedding(t, idv, Pool::Mean);
  Var loss = sum(e);
  Executor<double> ex(g);
  ex.init_params(7);
  ex.set_batch(1);
  IdBatch& b = ex.ids(idv.id);
  b.reset(1, 1);
  b.push(1, 1.0f);
  b.push(2, -1.0f);
  b.end_cell();
  ex.forward();
  check_near(values(ex.value(e.id)), {0, 0});
  ex.backward(loss.id);
  CHECK(ex.sparse_grad(t.id).size() == 0);
}

TEST_CASE("embedding accumulates densely when the table is also read densely", "[ops][embedding]") {
  Graph g;
  Var table = param(g, "table", Shape{4, 2}, Init::zeros());
  Var idv = ids(g, "ids", 2);
  Var e = embedding(table, idv, Pool::Sum);
  Var loss = add(sum(e), sum(mul(table, table)));  // d/dtable: counts·1 + 2·table
  Executor<double> ex(g);
  ex.set_batch(2);
  fill(ex.param(table.id), {0, 1, 10, 11, 20, 21, 30, 31});
  feed(ex.ids(idv.id));
  ex.forward();
  ex.backward(loss.id);
  REQUIRE_FALSE(ex.is_sparse(table.id));
  // Row weights: id 0: 0, id 1: 1 + 1 + 1 = 3, id 2: 2, id 3: 0.5.
  check_near(values(ex.grad(table.id)), {0, 2, 3 + 20, 3 + 22, 2 + 40, 2 + 42, 0.5 + 60, 0.5 + 62});
  // A second backward replaces, not adds.
  ex.backward(loss.id);
  check_near(values(ex.grad(table.id)), {0, 2, 3 + 20, 3 + 22, 2 + 40, 2 + 42, 0.5 + 60, 0.5 + 62});
}

TEST_CASE("embedding rejects out-of-range ids naming node, row, field, id and table size", "[ops][embedding]") {
  Graph g;
  Var table = param(g, "table", Shape{4, 2}, Init::zeros());
  Var idv = ids(g, "ids", 2);
  {
    auto s = g.scope("emb");
    embedding(table, idv, Pool::Sum, "lookup");
  }
  Executor<float> ex(g);
  ex.set_batch(2);
  IdBatch& b = ex.ids(idv.id);
  b.reset(2, 2);
  b.push(0); b.end_cell();
  b.push(1); b.end_cell();
  b.push(3); b.end_cell();
  b.push(2); b.push(4); b.end_cell();
  CHECK_THROWS_AS(ex.forward(), Error);
  CHECK_THROWS_WITH(ex.forward(), Contains("'emb/lookup'") && Contains("row 1") && Contains("field 1") &&
                                      Contains("id 4") && Contains("4 rows"));
  b.reset(2, 2);
  b.push(-1); b.end_cell();
  b.end_cell();
  b.end_cell();
  b.end_cell();
  CHECK_THROWS_WITH(ex.forward(), Contains("row 0") && Contains("field 0") && Contains("id -1"));
}

TEST_CASE("embedding attribute and shape rules", "[ops][embedding]") {
  Graph g;
  Var table = param(g, "table", Shape{4, 2}, Init::zeros());
  Var idv = ids(g, "ids", 3);
  CHECK(embedding(table, idv).shape() == Shape{kBatch, 3, 2});
  Attrs bad;
  bad.str["pool"] = "max";
  CHECK_THROWS_AS(g.add_op("embedding", {table.id, idv.id}, bad, "e"), GraphError);
  CHECK_THROWS_WITH(g.add_op("embedding", {table.id, idv.id}, bad, "e"), Contains("'e'") && Contains("max"));
  Var v = param(g, "v", Shape{4}, Init::zeros());
  CHECK_THROWS_WITH(embedding(v, idv, Pool::Sum, "e"), Contains("'e'") && Contains("V\u00d7D"));
  Var x = input(g, "x", Shape{kBatch, 3});
  CHECK_NOTHROW(embedding(table, x));  // same shape as an ids node: caught at run time
  Var fixed = param(g, "fixed", Shape{2, 3}, Init::zeros());
  CHECK_THROWS_WITH(embedding(table, fixed), Contains("ids node"));
}

TEST_CASE("embedding run with a dense input in place of ids fails clearly", "[ops][embedding]") {
  Graph g;
  Var table = param(g, "table", Shape{4, 2}, Init::zeros());
  Var x = input(g, "x", Shape{kBatch, 3});
  embedding(table, x, Pool::Sum, "lookup");
  Executor<double> ex(g);
  ex.set_batch(1);
  CHECK_THROWS_WITH(ex.forward(), Contains("'lookup'") && Contains("not an ids node"));
}

namespace {
// Restores one thread when a test that changed the count ends (however it ends).
struct ThreadsGuard {
  ~ThreadsGuard() { set_num_threads(1); }
};

// A batch large enough that the layout in the forward pass groups the ids by row (several chunks of cells): 512
// rows × 8 fields, bags of 0..7 ids skewed to a few hot rows, every 37th cell empty, and for mean pooling every
// 41st cell with weights summing to zero (no gradient).
template <class T>
struct BigFixture {
  static constexpr std::int64_t V = 3000, D = 18, B = 512, F = 8;
  Graph g;
  Var table, idv, e, r, loss, other, loss2;
  explicit BigFixture(Pool pool) {
    table = param(g, "table", Shape{V, D}, Init::normal(1.0));
    idv = ids(g, "ids", F);
    e = embedding(table, idv, pool, "lookup");
    r = input(g, "r", Shape{kBatch, F, D});
    loss = sum(mul(e, r));
    other = param(g, "other", Shape{1}, Init::constant(2.0));
    loss2 = sum(mul(other, other));  // does not reach the table
  }
  void bind(Executor<T>& ex) {
    ex.set_batch(B);
    IdBatch& b = ex.ids(idv.id);
    b.reset(B, F);
    std::uint64_t x = 12345;
    auto next = [&x] {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      return x >> 33;
    };
    for (std::int64_t cell = 0; cell < B * F; ++cell) {
      const std::uint64_t n = cell % 37 == 0 ? 0 : next() % 8;
      for (std::uint64_t j = 0; j < n; ++j) {
        const double u = static_cast<double>(next() % 10000) / 10000.0;
        const auto id = static_cast<std::int64_t>(static_cast<double>(V) * u * u * u);
        const float w = cell % 41 == 0 ? (j % 2 ? -1.0f : 1.0f) : 0.25f + static_cast<float>(next() % 4);
        b.push(id, cell % 41 == 0 && n % 2 ? 0.0f : w);
      }
      b.end_cell();
    }
    const std::vector<T> rv = random_vec<T>(static_cast<std::size_t>(B * F * D), 7);
    std::copy(rv.begin(), rv.end(), ex.input(r.id).data());
  }
};
}  // namespace

TEMPLATE_TEST_CASE("a forward that prepares the backward gives the same gradient rows and bits for any thread count",
                   "[ops][embedding][threads]", float, double) {
  ThreadsGuard guard;
  for (Pool pool : {Pool::Sum, Pool::Mean}) {
    BigFixture<TestType> f(pool);
    ParamStore<TestType> ref_store(f.g);
    ref_store.init(3);
    Executor<TestType> ref(f.g, ref_store);
    f.bind(ref);
    ref.forward();
    ref.backward(f.loss.id);  // one thread, the layout made in the backward pass
    const SparseRows<TestType>& want = ref.sparse_grad(f.table.id);
    REQUIRE(want.size() > 100);
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      for (bool prepared : {false, true}) {
        INFO("pool " << (pool == Pool::Sum ? "sum" : "mean") << ", " << threads << " threads, "
                     << (prepared ? "forward_for_backward" : "forward"));
        ParamStore<TestType> store(f.g);
        store.init(3);
        Executor<TestType> ex(f.g, store);
        for (int step = 0; step < 2; ++step) {  // the second step reuses the first one's buffers
          f.bind(ex);
          if (prepared) ex.forward_for_backward({f.loss.id});
          else ex.forward();
          CHECK(values(ex.value(f.e.id)) == values(ref.value(f.e.id)));
          ex.backward(f.loss.id);
          const SparseRows<TestType>& got = ex.sparse_grad(f.table.id);
          CHECK(got.rows == want.rows);
          CHECK(got.values == want.values);
          CHECK_FALSE(got.slots_ready);
        }
      }
    }
    set_num_threads(1);
  }
}

TEST_CASE("rows laid out in a forward pass are dropped when the backward does not reach the table",
          "[ops][embedding][threads]") {
  ThreadsGuard guard;
  set_num_threads(2);
  BigFixture<float> f(Pool::Sum);
  Executor<float> ex(f.g);
  ex.init_params(3);
  f.bind(ex);
  ex.forward_for_backward({f.loss.id, f.loss2.id});
  CHECK(ex.sparse_grad(f.table.id).size() > 0);  // laid out ahead
  ex.backward(f.loss2.id);
  CHECK(ex.sparse_grad(f.table.id).size() == 0);
  CHECK(ex.sparse_grad(f.table.id).values.empty());
  CHECK(ex.grad(f.other.id).data()[0] == Approx(4.0));
  // A plain forward after a prepared one: the backward lays out the rows itself.
  ex.forward_for_backward({f.loss.id});
  ex.forward();
  ex.backward(f.loss.id);
  CHECK(ex.sparse_grad(f.table.id).size() > 100);
  CHECK(ex.sparse_grad(f.table.id).values.size() == ex.sparse_grad(f.table.id).size() * 18);
}

TEST_CASE("a forward that prepares rows already touched (no clear in between) lays them out without grouping",
          "[ops][embedding][threads]") {
  ThreadsGuard guard;
  set_num_threads(2);
  using F = BigFixture<float>;
  F f(Pool::Sum);
  Executor<float> ex(f.g);
  ex.init_params(3);
  f.bind(ex);
  ex.forward();
  ex.backward(f.loss.id);
  const auto want = sparse_rows(ex.sparse_grad(f.table.id));
  REQUIRE(want.size() > 100);
  // The op called directly, as code outside the executor may: two forwards prepare the same rows without a
  // clear() between them (the second finds every row touched), then the backward.
  const Op& op = get_op("embedding");
  SparseRows<float> sp;
  sp.init(F::V, F::D);
  Tensor<float> out = Tensor<float>::from_shape({static_cast<std::size_t>(F::B), static_cast<std::size_t>(F::F),
                                                 static_cast<std::size_t>(F::D)});
  const Tensor<float>* in[2] = {&ex.param(f.table.id), nullptr};
  const IdBatch* id_in[2] = {nullptr, &ex.ids(f.idv.id)};
  SparseRows<float>* sparse[2] = {&sp, nullptr};
  Tensor<float>* gin[2] = {nullptr, nullptr};
  Ctx<float> c;
  c.node = &f.g.node(f.e.id);
  c.batch = F::B;
  c.in = in;
  c.ids = id_in;
  c.out = &out;
  c.sparse = sparse;
  c.gin = gin;
  op.forward(c);
  op.forward(c);
  CHECK(values(out) == values(ex.value(f.e.id)));
  c.gout = &ex.node_grad(f.e.id);
  op.backward(c);
  CHECK(sparse_rows(sp) == want);
}
