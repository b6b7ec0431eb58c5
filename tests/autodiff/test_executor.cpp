// Executor: forward values, backward accumulation at fan-out, pruning, weighted/subset losses, determinism,
// batch-size changes, partial forward, non-finite detection, input validation and sparse embedding gradients.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// An identity op that counts its forward and backward calls, to observe which nodes an executor runs.
std::atomic<int> g_count_fwd{0};
std::atomic<int> g_count_bwd{0};
struct TestCountIdentity : OpT<TestCountIdentity> {
  const char* name() const override { return "test_count_identity"; }
  const char* doc() const override { return "y = x; counts calls (tests only)"; }
  int arity() const override { return 1; }
  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }
  template <class T>
  static void fwd(Ctx<T>& c) {
    ++g_count_fwd;
    std::copy(c.x(0).begin(), c.x(0).end(), c.out->begin());
  }
  template <class T>
  static void bwd(Ctx<T>& c) {
    ++g_count_bwd;
    for (std::size_t i = 0; i < c.gout->size(); ++i) c.put(0, i, c.gout->data()[i]);
  }
};
FUNNEL_REGISTER_OP(TestCountIdentity);

Var counted(Var x, const std::string& name) { return {x.g, x.g->add_op("test_count_identity", {x.id}, {}, name)}; }

template <class T>
void set(Tensor<T>& t, std::initializer_list<double> v) {
  REQUIRE(t.size() == v.size());
  std::size_t i = 0;
  for (double d : v) t.data()[i++] = static_cast<T>(d);
}

template <class T>
std::vector<T> flat(const Tensor<T>& t) {
  return std::vector<T>(t.begin(), t.end());
}

template <class T>
void fill_normal(Tensor<T>& t, std::mt19937_64& rng, double sd = 1.0) {
  std::normal_distribution<double> d(0.0, sd);
  for (auto& v : t) v = static_cast<T>(d(rng));
}

// The hand-computed two-layer model: out = relu(x·w1)·w2, loss = Σ out.
struct TwoLayer {
  Graph g;
  Var x, w1, w2, h, a, out, loss;
  TwoLayer() {
    x = input(g, "x", {kBatch, 2});
    w1 = param(g, "w1", {2, 3}, Init::zeros());
    w2 = param(g, "w2", {3, 1}, Init::zeros());
    h = matmul(x, w1, "h");
    a = relu(h, "a");
    out = matmul(a, w2, "out");
    loss = sum(out, "loss");
    g.mark_loss(loss.id);
  }
  template <class T>
  void feed(Executor<T>& ex) {
    set(ex.param(w1.id), {1, -1, 0.5, 0.5, 1, -2});
    set(ex.param(w2.id), {1, 2, 3});
    ex.set_batch(2);
    set(ex.input(x.id), {1, 2, -1, 0.5});
  }
};

}  // namespace

TEMPLATE_TEST_CASE("forward and backward of a two-layer model match a hand computation", "[autodiff][executor]",
                   float, double) {
  TwoLayer m;
  Executor<TestType> ex(m.g);
  m.feed(ex);
  ex.forward();
  // h = x·w1 = [[2, 1, -3.5], [-0.75, 1.5, -1.5]]
  CHECK(flat(ex.value(m.h.id)) == std::vector<TestType>{2, 1, -3.5, -0.75, 1.5, -1.5});
  CHECK(flat(ex.value(m.a.id)) == std::vector<TestType>{2, 1, 0, 0, 1.5, 0});
  CHECK(flat(ex.value(m.out.id)) == std::vector<TestType>{4, 3});
  CHECK(ex.scalar(m.loss.id) == 7);
  CHECK(ex.value("out").shape()[0] == 2);

  ex.backward(m.loss.id);
  CHECK(flat(ex.grad(m.w2.id)) == std::vector<TestType>{2, 2.5, 0});
  CHECK(flat(ex.grad(m.w1.id)) == std::vector<TestType>{1, 0, 0, 2, 5, 0});
  CHECK(flat(ex.node_grad(m.h.id)) == std::vector<TestType>{1, 2, 0, 0, 2, 0});
  CHECK(ex.has_grad(m.w1.id));
  CHECK(ex.has_grad(m.w2.id));
  CHECK_FALSE(ex.is_sparse(m.w1.id));
}

TEST_CASE("gradients are not available before a backward pass", "[autodiff][executor]") {
  TwoLayer m;
  Executor<float> ex(m.g);
  CHECK_FALSE(ex.has_grad(m.w1.id));
  CHECK_THROWS_AS(ex.grad(m.w1.id), GraphError);
  CHECK_THROWS_AS(ex.sparse_grad(m.w1.id), GraphError);
  CHECK_THROWS_AS(ex.forward(), Error);  // no batch yet
  CHECK_THROWS_AS(ex.input(m.x.id), Error);
  CHECK_THROWS_AS(ex.set_batch(0), Error);
  CHECK_THROWS_AS(ex.param(m.x.id), GraphError);
  CHECK_THROWS_AS(ex.input(m.w1.id), GraphError);
  CHECK_THROWS_AS(ex.ids(m.x.id), GraphError);
  CHECK(ex.params() == std::vector<NodeId>{m.w1.id, m.w2.id});
  CHECK(&ex.graph() == &m.g);
}

TEST_CASE("backward rejects an empty loss list and non-scalar losses", "[autodiff][executor]") {
  TwoLayer m;
  Executor<double> ex(m.g);
  m.feed(ex);
  ex.forward();
  CHECK_THROWS_AS(ex.backward(std::vector<LossWeight>{}), GraphError);
  CHECK_THROWS_WITH(ex.backward(m.out.id), Contains("'out'") && Contains("B×1"));
}

TEST_CASE("fan-out: a node read by two consumers accumulates both gradients", "[autodiff][executor]") {
  // w feeds two matmuls: L = Σ (x·w) ⊙ (z·w).  dL/dw = xᵀ(z·w) + zᵀ(x·w).
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var z = input(g, "z", {kBatch, 2});
  Var w = param(g, "w", {2, 2}, Init::zeros());
  Var p = matmul(x, w, "xw");
  Var q = matmul(z, w, "zw");
  Var l = sum(mul(p, q), "loss");
  Executor<double> ex(g);
  set(ex.param(w.id), {0.5, -1, 2, 0.25});
  ex.set_batch(3);
  std::mt19937_64 rng(7);
  fill_normal(ex.input(x.id), rng);
  fill_normal(ex.input(z.id), rng);
  ex.forward();
  ex.backward(l.id);
  const auto& X = ex.input(x.id);
  const auto& Z = ex.input(z.id);
  const auto& P = ex.value(p.id);
  const auto& Q = ex.value(q.id);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      double want = 0;
      for (std::size_t b = 0; b < 3; ++b) want += X(b, i) * Q(b, j) + Z(b, i) * P(b, j);
      CHECK(ex.grad(w.id)(i, j) == Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("fan-out: an intermediate node read by two consumers accumulates", "[autodiff][executor]") {
  // h = x·w feeds relu and mul: L = Σ relu(h) ⊙ h, so dL/dh = 2h·[h>0].
  Graph g;
  Var x = input(g, "x", {kBatch, 3});
  Var w = param(g, "w", {3, 4}, Init::zeros());
  Var h = matmul(x, w, "h");
  Var l = sum(mul(relu(h), h), "loss");
  Executor<double> ex(g);
  std::mt19937_64 rng(3);
  fill_normal(ex.param(w.id), rng);
  ex.set_batch(5);
  fill_normal(ex.input(x.id), rng);
  ex.forward();
  ex.backward(l.id);
  const auto& H = ex.value(h.id);
  const auto& G = ex.node_grad(h.id);
  int positive = 0;
  for (std::size_t k = 0; k < H.size(); ++k) {
    CHECK(G.data()[k] == Approx(H.data()[k] > 0 ? 2 * H.data()[k] : 0.0).margin(1e-15));
    positive += H.data()[k] > 0;
  }
  CHECK(positive > 0);
  CHECK(positive < static_cast<int>(H.size()));
}

TEMPLATE_TEST_CASE("the same node in both slots of mul: x*x gives 2x·g", "[autodiff][executor]", float, double) {
  Graph g;
  Var w = param(g, "w", {2, 3}, Init::zeros());
  Var r = input(g, "r", {2, 3});
  Var sq = mul(w, w, "sq");
  Var l = sum(mul(sq, r), "loss");
  Executor<TestType> ex(g);
  set(ex.param(w.id), {1, -2, 0.5, 3, -0.25, 4});
  ex.set_batch(1);
  set(ex.input(r.id), {1, 2, 3, -1, 0.5, 2});
  ex.forward();
  ex.backward(l.id);
  auto W = flat(ex.param(w.id));
  auto R = flat(ex.input(r.id));
  auto G = flat(ex.grad(w.id));
  for (std::size_t k = 0; k < 6; ++k) CHECK(G[k] == 2 * W[k] * R[k]);
  // The op's gradient wrt the squared node itself is r.
  CHECK(flat(ex.node_grad(sq.id)) == R);
}


TEST_CASE("the accumulate rule is the engine's: plain-store VJPs, a gemm adding in place, x·x through a gemm",
          "[autodiff][executor]") {
  // f = Σ (X·X) + Σ X·X·1 + Σ id(X): X is read by four slots of three ops. The first matmul overwrites dX, the second
  // matmul's slot 0 adds in place (beta 1), its slot 1 (the same node again) and the identity (plain stores) write
  // scratch buffers the executor adds in. dX = 1·Xᵀ + Xᵀ·1 (twice) + 1.
  Graph g;
  Var x = param(g, "x", {3, 3}, Init::zeros());
  Var one = input(g, "one", {3, 3});
  Var p1 = matmul(x, x, "p1");
  Var p2 = matmul(matmul(x, x, "p2"), one, "p2one");
  Var c = counted(x, "id");
  Var l = sum(add(add(p1, p2), c), "loss");
  Executor<double> ex(g);
  set(ex.param(x.id), {1, -2, 0.5, 3, -0.25, 4, 0.75, 2, -1});
  ex.set_batch(1);
  set(ex.input(one.id), {1, 0, 0, 0, 1, 0, 0, 0, 1});  // the identity matrix: p2 = X·X
  ex.forward();
  ex.backward(l.id);
  const auto X = flat(ex.param(x.id));
  const auto G = flat(ex.grad(x.id));
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      double want = 1.0;  // the identity
      for (std::size_t k = 0; k < 3; ++k) want += 2.0 * (X[j * 3 + k] + X[k * 3 + i]);  // 1·Xᵀ + Xᵀ·1, twice
      INFO("i=" << i << " j=" << j);
      CHECK(G[i * 3 + j] == Approx(want).epsilon(1e-12));
    }
  // A second pass gives the same bits (scratch buffers are overwritten, not added to).
  ex.backward(l.id);
  CHECK(flat(ex.grad(x.id)) == G);
}

TEST_CASE("typed attributes are parsed once, when the node is added", "[autodiff][executor]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var y = scale(x, 2.5, "y");
  Var r = relu(y, "r");
  REQUIRE(g.node(y.id).params);  // scale declares Params: parsed by add_op
  CHECK_FALSE(g.node(r.id).params);  // relu has no attributes
  // The step reads the parsed value, not the attribute map: editing the map afterwards changes nothing.
  const_cast<Node&>(g.node(y.id)).attrs.num["w"] = 100.0;
  Executor<double> ex(g);
  ex.set_batch(1);
  set(ex.input(x.id), {1, -2});
  ex.forward();
  CHECK(flat(ex.value(y.id)) == std::vector<double>{2.5, -5});
}

namespace {

// Two heads on a shared trunk, each head behind a counting identity:
//   l1 = Σ head1,  l2 = Σ head2,  l3 = Σ head1 ⊙ counted(z)   (z is an input: that branch needs no gradient)
struct TwoHeads {
  Graph g;
  Var x, z, ws, w1, w2, trunk, head1, head2, zc, l1, l2, l3;
  TwoHeads() {
    x = input(g, "x", {kBatch, 2});
    ws = param(g, "w_shared", {2, 3}, Init::normal(1.0));
    w1 = param(g, "w1", {3, 1}, Init::normal(1.0));
    w2 = param(g, "w2", {3, 1}, Init::normal(1.0));
    trunk = matmul(x, ws, "trunk");
    head1 = counted(matmul(trunk, w1, "head1_mm"), "head1");
    head2 = counted(matmul(trunk, w2, "head2_mm"), "head2");
    l1 = sum(head1, "l1");
    l2 = sum(head2, "l2");
    z = input(g, "z", {kBatch, 1});
    zc = counted(z, "z_counted");
    l3 = sum(mul(head1, zc), "l3");
    g.mark_loss(l1.id);
    g.mark_loss(l2.id);
    g.mark_loss(l3.id);
  }
  template <class T>
  void feed(Executor<T>& ex, std::int64_t batch, std::uint64_t seed) {
    ex.set_batch(batch);
    std::mt19937_64 rng(seed);
    fill_normal(ex.input(x.id), rng);
    fill_normal(ex.input(z.id), rng);
  }
  std::vector<NodeId> params() const { return {ws.id, w1.id, w2.id}; }
};

template <class T>
std::vector<std::vector<T>> grads_of(const Executor<T>& ex, const std::vector<NodeId>& ps) {
  std::vector<std::vector<T>> out;
  for (NodeId p : ps) out.push_back(flat(ex.grad(p)));
  return out;
}

}  // namespace

TEST_CASE("pruning: parameters off the requested loss get no gradient and their branch ops are not run",
          "[autodiff][executor]") {
  TwoHeads m;
  Executor<double> ex(m.g);
  ex.init_params(11);
  m.feed(ex, 4, 5);
  g_count_fwd = 0;
  ex.forward();
  CHECK(g_count_fwd == 3);  // head1, head2, z_counted

  g_count_bwd = 0;
  ex.backward(m.l1.id);
  CHECK(g_count_bwd == 1);  // head1 only
  CHECK(ex.has_grad(m.ws.id));
  CHECK(ex.has_grad(m.w1.id));
  CHECK_FALSE(ex.has_grad(m.w2.id));
  for (double v : ex.grad(m.w2.id)) CHECK(v == 0.0);

  g_count_bwd = 0;
  ex.backward(m.l2.id);
  CHECK(g_count_bwd == 1);  // head2 only
  CHECK(ex.has_grad(m.w2.id));
  CHECK_FALSE(ex.has_grad(m.w1.id));
  for (double v : ex.grad(m.w1.id)) CHECK(v == 0.0);  // no stale gradient from the l1 pass

  // l3 reads z through a counted identity, but z depends on no parameter: that VJP must be skipped.
  g_count_bwd = 0;
  ex.backward(m.l3.id);
  CHECK(g_count_bwd == 1);  // head1, not z_counted
  CHECK_FALSE(ex.has_grad(m.w2.id));
  CHECK(ex.has_grad(m.w1.id));
}

TEST_CASE("forward(targets) runs only the targets' ancestors", "[autodiff][executor]") {
  TwoHeads m;
  Executor<float> ex(m.g);
  ex.init_params(11);
  m.feed(ex, 4, 5);
  g_count_fwd = 0;
  ex.forward({m.l1.id});
  CHECK(g_count_fwd == 1);  // head1
  g_count_fwd = 0;
  ex.forward({m.head2.id});
  CHECK(g_count_fwd == 1);
  g_count_fwd = 0;
  ex.forward({m.l1.id, m.l3.id});
  CHECK(g_count_fwd == 2);  // head1 once, z_counted
  g_count_fwd = 0;
  ex.forward({m.trunk.id});
  CHECK(g_count_fwd == 0);
}

TEST_CASE("forward(targets) does not read inputs the targets do not need", "[autodiff][executor]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var y = input(g, "label", {kBatch, 1});
  Var w = param(g, "w", {2, 1}, Init::zeros());
  Var pred = matmul(x, w, "pred");
  Var l = sum(mul(pred, y, "weighted"), "loss");
  g.mark_loss(l.id);
  Executor<float> ex(g);
  set(ex.param(w.id), {1, 2});
  ex.set_batch(2);
  set(ex.input(x.id), {1, 1, 2, -1});
  for (auto& v : ex.input(y.id)) v = std::numeric_limits<float>::quiet_NaN();
  CHECK_NOTHROW(ex.forward({pred.id}));
  CHECK(flat(ex.value(pred.id)) == std::vector<float>{3, 0});
  // The full pass reads the label and trips on it at the first node that consumes it.
  try {
    ex.forward();
    FAIL("no NonFiniteError");
  } catch (const NonFiniteError& e) {
    CHECK(e.node == "weighted");
  }
}

TEST_CASE("backward from a weighted sum of losses equals the weighted sum of the separate gradients",
          "[autodiff][executor]") {
  TwoHeads m;
  Executor<double> ex(m.g);
  ex.init_params(3);
  m.feed(ex, 5, 9);
  ex.forward();
  ex.backward(m.l1.id);
  auto g1 = grads_of(ex, m.params());
  ex.backward(m.l2.id);
  auto g2 = grads_of(ex, m.params());
  ex.backward(m.l3.id);
  auto g3 = grads_of(ex, m.params());
  const double a = 0.3, b = -2.0, c = 1.5;
  ex.backward({{m.l1.id, a}, {m.l2.id, b}, {m.l3.id, c}});
  auto gs = grads_of(ex, m.params());
  for (std::size_t p = 0; p < gs.size(); ++p)
    for (std::size_t k = 0; k < gs[p].size(); ++k) {
      INFO("param " << p << " coord " << k);
      CHECK(gs[p][k] == Approx(a * g1[p][k] + b * g2[p][k] + c * g3[p][k]).epsilon(1e-12).margin(1e-14));
    }
  for (NodeId p : m.params()) CHECK(ex.has_grad(p));

  // A subset of the losses: l1 and l3 only; w2 is off both.
  ex.backward({{m.l1.id, 1.0}, {m.l3.id, 1.0}});
  auto gsub = grads_of(ex, m.params());
  CHECK_FALSE(ex.has_grad(m.w2.id));
  for (std::size_t p = 0; p < 2; ++p)
    for (std::size_t k = 0; k < gsub[p].size(); ++k) CHECK(gsub[p][k] == Approx(g1[p][k] + g3[p][k]).epsilon(1e-12));
  for (double v : gsub[2]) CHECK(v == 0.0);

  // The same loss listed twice counts twice; order of the list does not matter.
  ex.backward({{m.l1.id, 1.0}, {m.l1.id, 2.0}});
  auto gdup = grads_of(ex, m.params());
  for (std::size_t k = 0; k < gdup[0].size(); ++k) CHECK(gdup[0][k] == Approx(3 * g1[0][k]).epsilon(1e-12));
  ex.backward({{m.l3.id, c}, {m.l2.id, b}, {m.l1.id, a}});
  auto grev = grads_of(ex, m.params());
  for (std::size_t p = 0; p < gs.size(); ++p)
    for (std::size_t k = 0; k < gs[p].size(); ++k) CHECK(grev[p][k] == Approx(gs[p][k]).epsilon(1e-12));
}

TEST_CASE("repeated backward passes give bit-identical gradients", "[autodiff][executor]") {
  TwoHeads m;
  Executor<float> ex(m.g);
  ex.init_params(4);
  m.feed(ex, 6, 1);
  std::vector<LossWeight> all{{m.l1.id, 1.0}, {m.l2.id, 0.5}, {m.l3.id, 2.0}};
  ex.forward();
  ex.backward(all);
  auto first = grads_of(ex, m.params());
  ex.forward();
  ex.backward(all);
  auto second = grads_of(ex, m.params());
  ex.backward(m.l2.id);  // a different pass in between must leave nothing behind
  ex.backward(all);
  auto third = grads_of(ex, m.params());
  for (std::size_t p = 0; p < first.size(); ++p) {
    REQUIRE(first[p].size() == second[p].size());
    CHECK(std::memcmp(first[p].data(), second[p].data(), first[p].size() * sizeof(float)) == 0);
    CHECK(std::memcmp(first[p].data(), third[p].data(), first[p].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("changing the batch size between steps works", "[autodiff][executor]") {
  TwoHeads m;
  std::vector<LossWeight> all{{m.l1.id, 1.0}, {m.l2.id, 1.0}, {m.l3.id, 1.0}};
  auto run = [&](Executor<float>& ex, std::int64_t b, std::uint64_t seed) {
    m.feed(ex, b, seed);
    ex.forward();
    ex.backward(all);
    auto gs = grads_of(ex, m.params());
    gs.push_back(flat(ex.value(m.head1.id)));
    gs.push_back({ex.scalar(m.l1.id), ex.scalar(m.l2.id), ex.scalar(m.l3.id)});
    return gs;
  };
  Executor<float> ex(m.g);
  ex.init_params(8);
  auto a4 = run(ex, 4, 100);
  auto a7 = run(ex, 7, 200);
  auto a1 = run(ex, 1, 300);
  auto b4 = run(ex, 4, 100);
  CHECK(ex.batch() == 4);
  CHECK(a7[3].size() == 7);  // head1 values are B×1
  CHECK(a1[3].size() == 1);
  CHECK(a4 == b4);
  // A fresh executor at batch 7 agrees bit for bit.
  Executor<float> fresh(m.g);
  fresh.init_params(8);
  CHECK(run(fresh, 7, 200) == a7);
}

TEST_CASE("a non-finite forward value throws NonFiniteError naming the first node that produced it",
          "[autodiff][executor]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var y = input(g, "y", {kBatch, 2});
  Var w = param(g, "w", {2, 2}, Init::zeros());
  Var mm = matmul(x, w, "mm");
  Var act = relu(mm, "act");
  Var prod = mul(act, y, "prod");
  Var l = sum(prod, "loss");
  g.mark_loss(l.id);
  Executor<float> ex(g);
  set(ex.param(w.id), {1, 0.5, 0.25, 2});
  ex.set_batch(2);
  set(ex.input(y.id), {1, 1, 1, 1});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto node_of = [&]() -> std::string {
    try {
      ex.forward();
    } catch (const NonFiniteError& e) {
      std::string what = e.what();
      CHECK_THAT(what, Contains(e.node));
      return e.node;
    }
    return "<none>";
  };

  SECTION("NaN input into matmul") {
    set(ex.input(x.id), {1, 2, nan, 1});
    CHECK(node_of() == "mm");
    CHECK_THROWS_WITH(ex.forward(), Contains("NaN") && Contains("matmul"));
  }
  SECTION("Inf input into matmul") {
    set(ex.input(x.id), {1, 2, inf, 1});
    CHECK(node_of() == "mm");
    CHECK_THROWS_WITH(ex.forward(), Contains("Inf"));
  }
  SECTION("NaN in a parameter") {
    set(ex.input(x.id), {1, 2, 3, 1});
    ex.param(w.id)(1, 1) = nan;
    CHECK(node_of() == "mm");
  }
  SECTION("a later node: finite upstream, Inf introduced by the other operand") {
    set(ex.input(x.id), {1, 2, 3, 1});
    set(ex.input(y.id), {1, inf, 1, 1});
    CHECK(node_of() == "prod");
  }
  SECTION("the check can be switched off") {
    set(ex.input(x.id), {1, 2, nan, 1});
    ex.set_check_finite(false);
    CHECK_NOTHROW(ex.forward());
    CHECK(std::isnan(ex.value(mm.id)(1, 0)));
  }
  SECTION("finite values do not throw") {
    set(ex.input(x.id), {1, 2, 3, 1});
    CHECK(node_of() == "<none>");
  }
}

TEST_CASE("a NaN fed into relu is reported at the relu, not swallowed", "[autodiff][executor]") {
  // relu(NaN) must stay NaN (as in PyTorch); `x > 0 ? x : 0` turns it into 0 and the bad input goes unnoticed.
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var act = relu(x, "act");
  Var l = sum(act, "loss");
  g.mark_loss(l.id);
  Executor<float> ex(g);
  ex.set_batch(1);
  set(ex.input(x.id), {1, std::numeric_limits<float>::quiet_NaN()});
  std::string node = "<none>";
  try {
    ex.forward();
  } catch (const NonFiniteError& e) {
    node = e.node;
  }
  CHECK(node == "act");
}

TEST_CASE("an input of the wrong shape is a ShapeError naming the input", "[autodiff][executor]") {
  TwoLayer m;
  Executor<float> ex(m.g);
  m.feed(ex);
  ex.input(m.x.id) = Tensor<float>::from_shape({3, 2});
  CHECK_THROWS_AS(ex.forward(), ShapeError);
  CHECK_THROWS_WITH(ex.forward(), Contains("'x'") && Contains("3×2") && Contains("B×2"));
  ex.input(m.x.id) = Tensor<float>::from_shape({2, 2, 1});
  CHECK_THROWS_AS(ex.forward(), ShapeError);
  ex.input(m.x.id) = Tensor<float>::from_shape({2, 2});
  ex.input(m.x.id).fill(1.0f);
  CHECK_NOTHROW(ex.forward());
}

TEST_CASE("an IdBatch with the wrong rows, fields or layout is a ShapeError naming the ids input",
          "[autodiff][executor]") {
  Graph g;
  Var i = ids(g, "cat", 2);
  (void)i;
  Executor<float> ex(g);
  ex.set_batch(3);
  IdBatch& b = ex.ids(i.id);
  auto fill = [&](std::int64_t rows, std::int64_t fields, std::int64_t cells) {
    b.reset(rows, fields);
    for (std::int64_t c = 0; c < cells; ++c) {
      b.push(c % 5);
      b.end_cell();
    }
  };
  SECTION("correct") {
    fill(3, 2, 6);
    CHECK_NOTHROW(ex.forward());
  }
  SECTION("wrong rows") {
    fill(4, 2, 8);
    CHECK_THROWS_AS(ex.forward(), ShapeError);
    CHECK_THROWS_WITH(ex.forward(), Contains("'cat'") && Contains("4 rows") && Contains("B=3"));
  }
  SECTION("wrong fields") {
    fill(3, 3, 9);
    CHECK_THROWS_WITH(ex.forward(), Contains("'cat'") && Contains("3 fields") && Contains("2 fields"));
  }
  SECTION("missing cells") {
    fill(3, 2, 5);
    CHECK_THROWS_AS(ex.forward(), ShapeError);
  }
  SECTION("weights and ids of different lengths") {
    fill(3, 2, 6);
    b.weights.pop_back();
    CHECK_THROWS_AS(ex.forward(), ShapeError);
  }
  SECTION("never filled") {
    CHECK_THROWS_AS(ex.forward(), ShapeError);
  }
}

TEST_CASE("init_params is deterministic per (seed, name) and follows the initializers", "[autodiff][executor]") {
  Graph g1;
  param(g1, "a", {4, 5}, Init::glorot_uniform());
  param(g1, "c", {3}, Init::constant(0.5));
  param(g1, "u", {200}, Init::uniform(2, 3));
  param(g1, "n", {400}, Init::normal(0.1));
  param(g1, "z", {2, 2}, Init::zeros());
  Graph g2;  // same "a" after a different parameter: same values
  param(g2, "other", {7}, Init::normal(1));
  param(g2, "a", {4, 5}, Init::glorot_uniform());
  Executor<float> e1(g1), e2(g2), e3(g1);
  e1.init_params(42);
  e2.init_params(42);
  e3.init_params(43);
  CHECK(flat(e1.param("a")) == flat(e2.param("a")));
  CHECK(flat(e1.param("a")) != flat(e3.param("a")));
  const double lim = std::sqrt(6.0 / 9.0);
  for (float v : e1.param("a")) CHECK(std::abs(v) <= lim);
  for (float v : e1.param("c")) CHECK(v == 0.5f);
  for (float v : e1.param("u")) CHECK((v >= 2 && v <= 3));
  double ss = 0;
  for (float v : e1.param("n")) ss += double(v) * v;
  CHECK(std::sqrt(ss / 400) == Approx(0.1).epsilon(0.2));
  for (float v : e1.param("z")) CHECK(v == 0.0f);
  e1.init_params(42);  // re-initialising is idempotent
  CHECK(flat(e1.param("a")) == flat(e2.param("a")));
}

// ---------------------------------------------------------------------------------------------------------------
// Sparse embedding gradients against finite differences (needs the embedding op).

namespace {

std::vector<double> numeric_grad(Executor<double>& ex, NodeId param, NodeId loss, double eps = 1e-6) {
  auto& v = ex.param(param);
  std::vector<double> out(v.size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    const double x0 = v.data()[k];
    v.data()[k] = x0 + eps;
    ex.forward({loss});
    const double fp = ex.scalar(loss);
    v.data()[k] = x0 - eps;
    ex.forward({loss});
    const double fm = ex.scalar(loss);
    v.data()[k] = x0;
    out[k] = (fp - fm) / (2 * eps);
  }
  ex.forward({loss});
  return out;
}

struct EmbedModel {
  Graph g;
  Var table, cat, e, r, l;
  EmbedModel(Pool pool, bool dense_consumer) {
    table = param(g, "table", {10, 3}, Init::normal(1.0));
    cat = ids(g, "cat", 2);
    e = embedding(table, cat, pool, "emb");
    r = input(g, "r", {kBatch, 2, 3});
    Var s = sum(mul(e, r), "probe");
    l = dense_consumer ? sum(mul(s, sum(mul(table, table))), "loss") : s;
    g.mark_loss(l.id);
  }
  // Row 0: {1}, {4, 4·0.5};  row 1: {1}, {} (absent);  row 2: {7}, {2·2, 9·-1}.
  void feed(Executor<double>& ex) {
    ex.set_batch(3);
    IdBatch& b = ex.ids(cat.id);
    b.reset(3, 2);
    b.push(1);
    b.end_cell();
    b.push(4);
    b.push(4, 0.5f);
    b.end_cell();
    b.push(1);
    b.end_cell();
    b.end_cell();
    b.push(7);
    b.end_cell();
    b.push(2, 2.0f);
    b.push(9, -1.0f);
    b.end_cell();
    std::mt19937_64 rng(17);
    fill_normal(ex.input(r.id), rng);
  }
};

}  // namespace

TEST_CASE("sparse embedding gradients: rows touched and values match finite differences", "[autodiff][executor]") {
  for (Pool pool : {Pool::Sum, Pool::Mean}) {
    INFO((pool == Pool::Sum ? "sum pooling" : "mean pooling"));
    EmbedModel m(pool, false);
    Executor<double> ex(m.g);
    ex.init_params(5);
    m.feed(ex);
    ex.forward();
    if (pool == Pool::Sum) {
      // Forward by hand for one multi-valued cell: 1.5·table[4].
      for (std::size_t d = 0; d < 3; ++d) CHECK(ex.value(m.e.id)(0, 1, d) == Approx(1.5 * ex.param(m.table.id)(4, d)));
      for (std::size_t d = 0; d < 3; ++d) CHECK(ex.value(m.e.id)(1, 1, d) == 0.0);
    }
    ex.backward(m.l.id);
    REQUIRE(ex.is_sparse(m.table.id));
    CHECK_THROWS_AS(ex.grad(m.table.id), GraphError);
    CHECK(ex.has_grad(m.table.id));
    const auto& sg = ex.sparse_grad(m.table.id);
    CHECK(sg.num_rows == 10);
    CHECK(sg.dim == 3);
    std::set<std::int64_t> touched(sg.rows.begin(), sg.rows.end());
    CHECK(touched.size() == sg.rows.size());  // each row once
    CHECK(touched == std::set<std::int64_t>{1, 2, 4, 7, 9});
    REQUIRE(sg.values.size() == sg.rows.size() * 3);
    std::vector<double> ana(30, 0.0);
    for (std::size_t k = 0; k < sg.rows.size(); ++k)
      for (std::size_t d = 0; d < 3; ++d) ana[static_cast<std::size_t>(sg.rows[k]) * 3 + d] = sg.row_at(k)[d];
    auto num = numeric_grad(ex, m.table.id, m.l.id);
    for (std::size_t k = 0; k < 30; ++k) {
      INFO("coord " << k);
      CHECK(ana[k] == Approx(num[k]).margin(1e-8));
    }
  }
}

TEST_CASE("sparse gradients are cleared between passes", "[autodiff][executor]") {
  EmbedModel m(Pool::Sum, false);
  Executor<double> ex(m.g);
  ex.init_params(5);
  m.feed(ex);
  ex.forward();
  ex.backward(m.l.id);
  CHECK(ex.sparse_grad(m.table.id).size() == 5);
  IdBatch& b = ex.ids(m.cat.id);
  b.reset(3, 2);
  for (int c = 0; c < 6; ++c) {
    b.push(3);
    b.end_cell();
  }
  ex.forward();
  ex.backward(m.l.id);
  const auto& sg = ex.sparse_grad(m.table.id);
  REQUIRE(sg.rows == std::vector<std::int64_t>{3});
  auto num = numeric_grad(ex, m.table.id, m.l.id);
  for (std::size_t d = 0; d < 3; ++d) CHECK(sg.row_at(0)[d] == Approx(num[9 + d]).margin(1e-8));
}

TEST_CASE("an embedding table with a dense consumer too gets a dense gradient", "[autodiff][executor]") {
  EmbedModel m(Pool::Sum, true);
  Executor<double> ex(m.g);
  ex.init_params(5);
  m.feed(ex);
  ex.forward();
  ex.backward(m.l.id);
  REQUIRE_FALSE(ex.is_sparse(m.table.id));
  CHECK_THROWS_AS(ex.sparse_grad(m.table.id), GraphError);
  auto ana = flat(ex.grad(m.table.id));
  auto num = numeric_grad(ex, m.table.id, m.l.id);
  for (std::size_t k = 0; k < ana.size(); ++k) CHECK(ana[k] == Approx(num[k]).epsilon(1e-6).margin(1e-7));
}

// ---------------------------------------------------------------------------------------------------------------
// Predicting with a zoo model: only the ids are filled.

TEST_CASE("predicting with a zoo model needs only the ids", "[autodiff][executor]") {
  Graph g;
  ModelHandle h = build_model(g, test::small("esmm"));
  Executor<float> ex(g);
  ex.init_params(1);
  ex.set_batch(4);
  IdBatch& b = ex.ids(h.ids);
  b.reset(4, 3);
  for (int c = 0; c < 12; ++c) {
    b.push((c * 7) % 30);
    b.end_cell();
  }
  for (NodeId lab : h.labels)
    for (auto& v : ex.input(lab)) v = std::numeric_limits<float>::quiet_NaN();  // must not be read
  REQUIRE_NOTHROW(ex.forward({h.column("pctr"), h.column("pcvr"), h.column("pctcvr")}));
  for (std::size_t r = 0; r < 4; ++r) {
    const float ctr = ex.value(h.column("pctr"))(r, 0), cvr = ex.value(h.column("pcvr"))(r, 0);
    const float ctcvr = ex.value(h.column("pctcvr"))(r, 0);
    CHECK((ctr > 0 && ctr < 1));
    CHECK((cvr > 0 && cvr < 1));
    CHECK(ctcvr == ctr * cvr);
  }
  // The losses do read the labels.
  CHECK_THROWS_AS(ex.forward(), NonFiniteError);
}
