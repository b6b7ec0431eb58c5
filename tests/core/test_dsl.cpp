// The DSL: each function adds the right op with the right attributes under the current scope; shape errors
// name the node, the op and the offending shapes; composites (dense, mlp, flatten) build the documented nodes.
#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "core/dsl.hpp"
#include "core/error.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ShapeError& e) {
    return e.what();
  }
  return "<no ShapeError thrown>";
}
}  // namespace

TEST_CASE("matmul shape error names the node, the op and both shapes", "[core][dsl]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 360});
  Var w = param(g, "w", {200, 80}, Init::zeros());
  std::string m;
  {
    auto s = g.scope("ctr_tower");
    m = message_of([&] { matmul(x, w, "proj"); });
  }
  INFO(m);
  CHECK_THAT(m, Contains("ctr_tower/proj") && Contains("matmul") && Contains("B×360") && Contains("200×80"));
  // Auto-named nodes are named too.
  std::string m2 = message_of([&] { matmul(x, w); });
  INFO(m2);
  CHECK_THAT(m2, Contains("'matmul'") && Contains("B×360") && Contains("200×80"));
  // Nothing was added by the failed calls.
  CHECK(g.size() == 2);
}

TEST_CASE("mul of mismatched shapes names the node, the op and both shapes", "[core][dsl]") {
  Graph g;
  Var a = input(g, "a", {kBatch, 1});
  Var b = input(g, "b", {kBatch, 2});
  std::string m = message_of([&] { mul(a, b, "pctcvr"); });
  INFO(m);
  CHECK_THAT(m, Contains("pctcvr") && Contains("mul") && Contains("B×1") && Contains("B×2"));
  std::string m2 = message_of([&] { (void)(a * b); });
  CHECK_THAT(m2, Contains("mul") && Contains("B×1") && Contains("B×2"));
  CHECK(mul(a, a).shape() == Shape{kBatch, 1});
}

TEST_CASE("dense on a rank-3 input is a ShapeError naming the layer, the input and its shape", "[core][dsl]") {
  Graph g;
  Var x = input(g, "emb", {kBatch, 3, 4});
  std::string m;
  {
    auto s = g.scope("ctr_tower");
    m = message_of([&] { dense(x, 8, "dense_0"); });
    CHECK(g.current_scope() == "ctr_tower");  // the layer's scope is popped on the error path
  }
  INFO(m);
  CHECK_THAT(m, Contains("ctr_tower/dense_0") && Contains("emb") && Contains("B×3×4"));
  CHECK(g.size() == 1);  // no parameters were created
  CHECK(g.current_scope().empty());
}

TEST_CASE("operands of different graphs or unbound operands are GraphErrors", "[core][dsl]") {
  Graph g1, g2;
  Var a = input(g1, "a", {kBatch, 2});
  Var b = input(g2, "b", {kBatch, 2});
  CHECK_THROWS_AS(mul(a, b), GraphError);
  CHECK_THROWS_AS(matmul(a, b), GraphError);
  CHECK_THROWS_AS(relu(Var{}), GraphError);
  CHECK_THROWS_AS(mul(Var{}, Var{}), GraphError);
  CHECK_THROWS_AS(concat({}), GraphError);
  CHECK(g1.size() == 1);
  CHECK(g2.size() == 1);
}

TEST_CASE("leaf helpers and Var accessors", "[core][dsl]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 3});
  Var i = ids(g, "ids", 4);
  Var w = param(g, "w", {3, 2}, Init::he_normal());
  CHECK(x.g == &g);
  CHECK(x.name() == "x");
  CHECK(x.shape() == Shape{kBatch, 3});
  CHECK(x.node().kind == NodeKind::Input);
  CHECK(i.node().kind == NodeKind::Ids);
  CHECK(i.shape() == Shape{kBatch, 4});
  CHECK(w.node().init.kind == Init::Kind::HeNormal);
  Var y = relu(matmul(x, w), "act");
  CHECK(y.name() == "act");
  CHECK(y.shape() == Shape{kBatch, 2});
  CHECK(sum(y).shape() == Shape{});
}

TEST_CASE("dense builds w (K×units, Glorot), b (zeros), matmul, bias_add and the activation in its scope",
          "[core][dsl]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 6});
  Var y;
  {
    auto s = g.scope("tower");
    y = dense(x, 4, "dense_0", Act::Relu);
  }
  CHECK(y.name() == "tower/dense_0/relu");
  CHECK(y.shape() == Shape{kBatch, 4});
  const Node& w = g.node(g.at("tower/dense_0/w"));
  CHECK(w.shape == Shape{6, 4});
  CHECK(w.init.kind == Init::Kind::GlorotUniform);
  const Node& b = g.node(g.at("tower/dense_0/b"));
  CHECK(b.shape == Shape{4});
  CHECK(b.init.kind == Init::Kind::Zeros);
  const Node& mm = g.node(g.at("tower/dense_0/matmul"));
  CHECK(mm.inputs == std::vector<NodeId>{x.id, w.id});
  const Node& ba = g.node(g.at("tower/dense_0/bias_add"));
  CHECK(ba.op == "bias_add");
  CHECK(ba.inputs == std::vector<NodeId>{mm.id, b.id});
  CHECK(g.node(y.id).inputs == std::vector<NodeId>{ba.id});

  Var z = dense(y, 1, "logit", Act::Sigmoid);
  CHECK(z.name() == "logit/sigmoid");
  CHECK(z.node().op == "sigmoid");
  Var lin = dense(y, 2, "linear");
  CHECK(lin.name() == "linear/bias_add");
}

TEST_CASE("mlp stacks dense_0, dense_1, ... with the activation", "[core][dsl]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 5});
  Var h = mlp(x, {7, 3}, Act::Relu);
  CHECK(h.shape() == Shape{kBatch, 3});
  CHECK(h.name() == "dense_1/relu");
  CHECK(g.node(g.at("dense_0/w")).shape == Shape{5, 7});
  CHECK(g.node(g.at("dense_1/w")).shape == Shape{7, 3});
  CHECK(mlp(x, {}).id == x.id);  // no layers: the input itself
}

TEST_CASE("ops with attributes record them", "[core][dsl]") {
  Graph g;
  Var a = input(g, "a", {kBatch, 1});
  Var b = input(g, "b", {kBatch, 1});
  Var d = divide(a, b, 0.0, 1.0, "ratio");
  CHECK(d.node().op == "divide");
  CHECK(d.node().attrs.get_num("lo", -1) == 0.0);
  CHECK(d.node().attrs.get_num("hi", -1) == 1.0);
  CHECK(d.shape() == Shape{kBatch, 1});

  Var s = scale(a, 0.25, "quarter");
  CHECK(s.node().op == "scale");
  CHECK(s.node().attrs.get_num("w", 0) == 0.25);
  CHECK(s.shape() == Shape{kBatch, 1});

  Var c = concat({a, b, a}, 1, "cat");
  CHECK(c.node().op == "concat");
  CHECK(c.node().attrs.get_num("axis", -1) == 1.0);
  CHECK(c.node().inputs == std::vector<NodeId>{a.id, b.id, a.id});
  CHECK(c.shape() == Shape{kBatch, 3});

  CHECK((a + b).node().op == "add");
  CHECK((a + b).shape() == Shape{kBatch, 1});
  CHECK(bias_add(a, param(g, "bias", {1}, Init::zeros())).shape() == Shape{kBatch, 1});
  CHECK(sigmoid(a).shape() == Shape{kBatch, 1});
  CHECK(mean(a).shape() == Shape{});
  CHECK(bce(a, b, "l1").shape() == Shape{});
  CHECK(bce(a, b, b, "l2").node().inputs.size() == 3);
  CHECK(bce_logits(a, b, "l3").shape() == Shape{});
}

TEST_CASE("embedding, reshape and flatten shapes and attributes", "[core][dsl]") {
  Graph g;
  Var table = param(g, "table", {30, 3}, Init::normal(0.1));
  Var i = ids(g, "ids", 4);
  Var e = embedding(table, i, Pool::Mean, "lookup");
  CHECK(e.node().op == "embedding");
  CHECK(e.node().attrs.get_str("pool", "") == "mean");
  CHECK(e.shape() == Shape{kBatch, 4, 3});
  CHECK(embedding(table, i).node().attrs.get_str("pool", "") == "sum");

  Var r = reshape(e, {kBatch, 12}, "r");
  CHECK(r.node().op == "reshape");
  REQUIRE(r.node().attrs.get_ints("shape") != nullptr);
  CHECK(*r.node().attrs.get_ints("shape") == std::vector<std::int64_t>{kBatch, 12});
  CHECK(r.shape() == Shape{kBatch, 12});

  Var f = flatten(e);
  CHECK(f.shape() == Shape{kBatch, 12});
  CHECK(f.node().op == "reshape");
  CHECK_THROWS_WITH(flatten(input(g, "v", {5})), Contains("'v'") && Contains("5"));
}

TEST_CASE("flatten can be used twice in one scope", "[core][dsl]") {
  // flatten() without a name must pick a fresh name like every other op; today it names every node "flatten",
  // so a second call in the same scope is a duplicate-name GraphError.
  Graph g;
  Var a = input(g, "a", {kBatch, 2, 3});
  Var b = input(g, "b", {kBatch, 4, 2});
  Var fa = flatten(a);
  Var fb;
  CHECK_NOTHROW(fb = flatten(b));
  CHECK(fa.shape() == Shape{kBatch, 6});
  if (fb.g) CHECK(fb.shape() == Shape{kBatch, 8});
}
