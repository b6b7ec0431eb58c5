// Graph core: names and scopes, unique auto-names, duplicate names, topological order, consumers,
// ancestors/descendants, the Graph as a Boost.Graph over its inputs, loss marking and lookups. Uses only the foundation ops (matmul, relu, mul, sum).
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/graph.hpp"
#include "core/graph_boost.hpp"

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>

using namespace funnel;
using Catch::Matchers::Contains;

namespace {
std::vector<NodeId> ids_of(const std::vector<char>& mask) {
  std::vector<NodeId> out;
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (mask[i]) out.push_back(i);
  return out;
}
std::size_t pos_in(const std::vector<NodeId>& order, NodeId v) {
  return static_cast<std::size_t>(std::find(order.begin(), order.end(), v) - order.begin());
}
}  // namespace

TEST_CASE("leaf nodes carry kind, op, name, shape and init", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 4});
  NodeId i = g.add_ids("ids", 3);
  NodeId w = g.add_param("w", Shape{4, 2}, Init::normal(0.5));
  REQUIRE(g.size() == 3);

  CHECK(g.node(x).kind == NodeKind::Input);
  CHECK(g.node(x).op == "input");
  CHECK(g.node(x).shape == Shape{kBatch, 4});
  CHECK(g.node(x).id == x);

  CHECK(g.node(i).kind == NodeKind::Ids);
  CHECK(g.node(i).op == "ids");
  CHECK(g.node(i).num_fields == 3);
  CHECK(g.node(i).shape == Shape{kBatch, 3});

  CHECK(g.node(w).kind == NodeKind::Param);
  CHECK(g.node(w).op == "param");
  CHECK(g.node(w).init.kind == Init::Kind::Normal);
  CHECK(g.node(w).init.a == 0.5);
  CHECK(g.params() == std::vector<NodeId>{w});

  CHECK(std::string(to_string(NodeKind::Input)) == "input");
  CHECK(std::string(to_string(NodeKind::Ids)) == "ids");
  CHECK(std::string(to_string(NodeKind::Param)) == "param");
  CHECK(std::string(to_string(NodeKind::Op)) == "op");
}

TEST_CASE("leaf validation: ids need a field, params need fixed positive dims", "[core][graph]") {
  Graph g;
  CHECK_THROWS_AS(g.add_ids("ids", 0), GraphError);
  CHECK_THROWS_WITH(g.add_param("w", Shape{kBatch, 3}, Init::zeros()), Contains("'w'") && Contains("B×3"));
  CHECK_THROWS_AS(g.add_param("w", Shape{0, 3}, Init::zeros()), ShapeError);
  CHECK(g.size() == 0);  // nothing half-added
}

TEST_CASE("names are qualified by nested scopes and restored when the guards end", "[core][graph]") {
  Graph g;
  CHECK(g.current_scope().empty());
  NodeId top = g.add_input("x", Shape{kBatch, 4});
  NodeId a, b, c;
  {
    auto s1 = g.scope("ctr_tower");
    CHECK(g.current_scope() == "ctr_tower");
    a = g.add_param("w", Shape{4, 4}, Init::zeros());
    {
      auto s2 = g.scope("dense_0");
      CHECK(g.current_scope() == "ctr_tower/dense_0");
      b = g.add_param("w", Shape{4, 4}, Init::zeros());
    }
    CHECK(g.current_scope() == "ctr_tower");
    c = g.add_op("matmul", {top, a});
  }
  CHECK(g.current_scope().empty());
  NodeId d = g.add_op("relu", {c}, {}, "act");

  CHECK(g.node(top).name == "x");
  CHECK(g.node(top).scope.empty());
  CHECK(g.node(a).name == "ctr_tower/w");
  CHECK(g.node(a).scope == "ctr_tower");
  CHECK(g.node(b).name == "ctr_tower/dense_0/w");
  CHECK(g.node(b).scope == "ctr_tower/dense_0");
  CHECK(g.node(c).name == "ctr_tower/matmul");
  CHECK(g.node(d).name == "act");

  CHECK(g.at("ctr_tower/dense_0/w") == b);
  CHECK(g.find("ctr_tower/w") == std::optional<NodeId>(a));
  CHECK_FALSE(g.find("w").has_value());
  CHECK_THROWS_WITH(g.at("dense_0/w"), Contains("dense_0/w"));
  CHECK_THROWS_AS(g.at("nope"), GraphError);
}

TEST_CASE("a moved scope guard pops the scope exactly once", "[core][graph]") {
  Graph g;
  {
    auto outer = g.scope("a");
    {
      ScopeGuard moved = g.scope("b");  // returned by value: the temporary's destructor must not pop
      CHECK(g.current_scope() == "a/b");
    }
    CHECK(g.current_scope() == "a");
  }
  CHECK(g.current_scope().empty());
}

TEST_CASE("scope names must be non-empty and contain no slash", "[core][graph]") {
  Graph g;
  CHECK_THROWS_AS(g.scope(""), GraphError);
  CHECK_THROWS_WITH(g.scope("a/b"), Contains("a/b"));
  CHECK(g.current_scope().empty());
}

TEST_CASE("auto-names are unique per scope and skip explicit names", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 2});
  NodeId r0 = g.add_op("relu", {x});
  NodeId r1 = g.add_op("relu", {x});
  NodeId explicit2 = g.add_op("relu", {x}, {}, "relu_2");
  NodeId r3 = g.add_op("relu", {x});
  NodeId s0;
  {
    auto s = g.scope("t");
    s0 = g.add_op("relu", {x});
  }
  CHECK(g.node(r0).name == "relu");
  CHECK(g.node(r1).name == "relu_1");
  CHECK(g.node(explicit2).name == "relu_2");
  CHECK(g.node(r3).name == "relu_3");
  CHECK(g.node(s0).name == "t/relu");

  // An explicit name taken before the first auto-name of that op.
  Graph h;
  NodeId y = h.add_input("y", Shape{kBatch, 2});
  h.add_op("relu", {y}, {}, "relu");
  NodeId auto1 = h.add_op("relu", {y});
  CHECK(h.node(auto1).name == "relu_1");

  // All names distinct.
  std::vector<std::string> names;
  for (const Node& n : g.nodes()) names.push_back(n.name);
  std::sort(names.begin(), names.end());
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
}

TEST_CASE("duplicate names are a GraphError naming the node", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 2});
  CHECK_THROWS_WITH(g.add_input("x", Shape{kBatch, 2}), Contains("duplicate") && Contains("'x'"));
  CHECK_THROWS_AS(g.add_param("x", Shape{2, 2}, Init::zeros()), GraphError);
  CHECK_THROWS_AS(g.add_ids("x", 2), GraphError);
  g.add_op("relu", {x}, {}, "act");
  CHECK_THROWS_WITH(g.add_op("relu", {x}, {}, "act"), Contains("duplicate") && Contains("'act'"));
  {
    auto s = g.scope("s");
    g.add_input("x", Shape{kBatch, 2});  // "s/x" is a different name
    CHECK_THROWS_WITH(g.add_input("x", Shape{kBatch, 2}), Contains("s/x"));
  }
  CHECK(g.size() == 3);  // failed additions leave no node behind
  CHECK(num_vertices(g) == g.size());
}

TEST_CASE("add_op rejects unknown ops, bad arity and foreign input ids", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 2});
  CHECK_THROWS_WITH(g.add_op("no_such_op", {x}), Contains("no_such_op") && Contains("matmul"));
  CHECK_THROWS_WITH(g.add_op("relu", {x, x}, {}, "r"), Contains("'r'") && Contains("relu") && Contains("1"));
  CHECK_THROWS_AS(g.add_op("matmul", {x}), ShapeError);
  CHECK_THROWS_AS(g.add_op("relu", {NodeId{42}}), GraphError);
  CHECK(g.size() == 1);
  CHECK(num_vertices(g) == 1);
  // The graph is still usable. (A failed auto-named add_op may have used up its counter value: not checked.)
  NodeId r = g.add_op("relu", {x});
  CHECK_THAT(g.node(r).name, Catch::Matchers::StartsWith("relu"));
  CHECK(g.node(r).inputs == std::vector<NodeId>{x});
}

TEST_CASE("edges carry input slots and consumers are unique and sorted", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId w = g.add_param("w", Shape{3, 3}, Init::zeros());
  NodeId m = g.add_op("matmul", {x, w});
  NodeId sq = g.add_op("mul", {m, m});  // one node in both slots
  NodeId r = g.add_op("relu", {m});
  NodeId s = g.add_op("sum", {sq});

  CHECK(g.node(m).inputs == std::vector<NodeId>{x, w});
  CHECK(g.node(sq).inputs == std::vector<NodeId>{m, m});
  CHECK(g.consumers(x) == std::vector<NodeId>{m});
  CHECK(g.consumers(m) == std::vector<NodeId>{sq, r});
  CHECK(g.consumers(s).empty());

  // As a Boost.Graph: one edge per input slot, the slot in the descriptor, in-edges and out-edges agree.
  std::vector<std::size_t> slots_into_sq;
  for (auto [b, e] = in_edges(sq, g); b != e; ++b) {
    CHECK(source(*b, g) == m);
    CHECK(target(*b, g) == sq);
    slots_into_sq.push_back(b->slot);
  }
  CHECK(slots_into_sq == std::vector<std::size_t>{0, 1});
  std::size_t edges = 0;
  for (NodeId v = 0; v < g.size(); ++v) {
    CHECK(in_degree(v, g) == g.node(v).inputs.size());
    for (auto [b, e] = out_edges(v, g); b != e; ++b) {
      CHECK(source(*b, g) == v);
      CHECK(g.node(target(*b, g)).inputs.at(b->slot) == v);
      ++edges;
    }
  }
  CHECK(edges == 2 + 2 + 1 + 1);
  CHECK(out_degree(m, g) == 3);  // sq twice, r once
  CHECK(degree(m, g) == 5);
  const auto u = g.uses(m);
  REQUIRE(u.size() == 3);
  CHECK((u[0] == GraphEdge{sq, 0}));
  CHECK((u[1] == GraphEdge{sq, 1}));
  CHECK((u[2] == GraphEdge{r, 0}));
}

TEST_CASE("Boost.Graph algorithms run on the Graph itself, and see a new node at once", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId w = g.add_param("w", Shape{3, 3}, Init::zeros());
  NodeId m = g.add_op("matmul", {x, w});
  NodeId r = g.add_op("relu", {m});
  NodeId z = g.add_input("z", Shape{2});

  // Breadth-first from x, with Boost's own queue and colour map: distances along the reads.
  std::vector<std::size_t> dist(g.size(), 99);
  dist[x] = 0;
  auto dmap = boost::make_iterator_property_map(dist.begin(), boost::identity_property_map());
  boost::breadth_first_search(g, x, boost::visitor(boost::make_bfs_visitor(
                                        boost::record_distances(dmap, boost::on_tree_edge()))));
  CHECK(dist == std::vector<std::size_t>{0, 99, 1, 2, 99});

  // No edge list to keep in step: a node added later is an out-edge of its input at once.
  NodeId s = g.add_op("sum", {r});
  CHECK(g.consumers(r) == std::vector<NodeId>{s});
  std::vector<NodeId> rev;
  boost::topological_sort(g, std::back_inserter(rev));  // default colour map through the vertex index
  REQUIRE(rev.size() == g.size());
  CHECK(pos_in(rev, s) < pos_in(rev, r));  // finishing order: consumers first
  CHECK(pos_in(rev, m) < pos_in(rev, x));
  (void)z;
}

TEST_CASE("topological order contains every node once and respects every edge", "[core][graph]") {
  Graph g;
  // Parameters and an unrelated input added between ops: the order must still put every input before its reader.
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId w1 = g.add_param("w1", Shape{3, 3}, Init::zeros());
  NodeId h = g.add_op("matmul", {x, w1});
  NodeId w2 = g.add_param("w2", Shape{3, 3}, Init::zeros());
  NodeId a = g.add_op("relu", {h});
  NodeId b = g.add_op("matmul", {a, w2});
  NodeId c = g.add_op("mul", {b, h});
  NodeId l = g.add_op("sum", {c});
  NodeId unrelated = g.add_input("z", Shape{2});
  (void)l;
  (void)unrelated;

  const auto& order = g.topo_order();
  REQUIRE(order.size() == g.size());
  std::vector<NodeId> sorted(order.begin(), order.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) CHECK(sorted[i] == i);
  for (const Node& n : g.nodes())
    for (NodeId in : n.inputs) {
      INFO(g.node(in).name << " -> " << n.name);
      CHECK(pos_in(order, in) < pos_in(order, n.id));
    }
  CHECK(pos_in(order, w2) < pos_in(order, b));
  CHECK(pos_in(order, a) < pos_in(order, b));
  CHECK(pos_in(order, h) < pos_in(order, c));

  // The cache is invalidated by new nodes.
  NodeId late = g.add_op("relu", {c});
  const auto& order2 = g.topo_order();
  REQUIRE(order2.size() == g.size());
  CHECK(pos_in(order2, c) < pos_in(order2, late));
}

TEST_CASE("creation order is the topological order: no node can read a later one", "[core][graph]") {
  // A node's inputs must exist when it is added (its own future id included), so ids never point forward and the
  // graph needs no sort: topo_order() is 0, 1, 2, ... and the executor runs ops in the order the model built them.
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId w = g.add_param("w", Shape{3, 3}, Init::zeros());
  NodeId h = g.add_op("matmul", {x, w});
  NodeId u = g.add_input("u", Shape{kBatch, 3});  // a second root, added after an op
  NodeId s = g.add_op("mul", {h, u});
  CHECK_THROWS_AS(g.add_op("relu", {NodeId{g.size()}}), GraphError);      // itself
  CHECK_THROWS_AS(g.add_op("relu", {NodeId{g.size() + 1}}), GraphError);  // a node not made yet
  NodeId r = g.add_op("relu", {s});
  for (const Node& n : g.nodes())
    for (NodeId in : n.inputs) CHECK(in < n.id);
  std::vector<NodeId> ids(g.size());
  std::iota(ids.begin(), ids.end(), NodeId{0});
  CHECK(g.topo_order() == ids);
  NodeId late = g.add_op("relu", {r});
  ids.push_back(late);
  CHECK(g.topo_order() == ids);
  (void)u;
}

TEST_CASE("ancestors and descendants are reachability masks including the seeds", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId w1 = g.add_param("w1", Shape{3, 3}, Init::zeros());
  NodeId w2 = g.add_param("w2", Shape{3, 3}, Init::zeros());
  NodeId h1 = g.add_op("matmul", {x, w1});
  NodeId h2 = g.add_op("matmul", {x, w2});
  NodeId l1 = g.add_op("sum", {h1});
  NodeId p = g.add_op("mul", {h1, h2});
  NodeId l2 = g.add_op("sum", {p});

  CHECK(ids_of(g.ancestors({l1})) == std::vector<NodeId>{x, w1, h1, l1});
  CHECK(ids_of(g.ancestors({l2})) == std::vector<NodeId>{x, w1, w2, h1, h2, p, l2});
  CHECK(ids_of(g.ancestors({l1, l2})).size() == g.size());
  CHECK(ids_of(g.ancestors({x})) == std::vector<NodeId>{x});
  CHECK(ids_of(g.ancestors({})).empty());

  CHECK(ids_of(g.descendants({w2})) == std::vector<NodeId>{w2, h2, p, l2});
  CHECK(ids_of(g.descendants({w1})) == std::vector<NodeId>{w1, h1, l1, p, l2});
  CHECK(ids_of(g.descendants({l1})) == std::vector<NodeId>{l1});
  CHECK(ids_of(g.descendants({x})).size() == g.size() - 2);  // all but the params
}

TEST_CASE("mark_loss accepts only scalars, outputs and losses are listed", "[core][graph]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 3});
  NodeId r = g.add_op("relu", {x}, {}, "act");
  NodeId s = g.add_op("sum", {r}, {}, "total");
  CHECK(g.node(s).shape == Shape{});
  CHECK_THROWS_WITH(g.mark_loss(r), Contains("'act'") && Contains("scalar") && Contains("B×3"));
  CHECK_THROWS_AS(g.mark_loss(r), ShapeError);
  CHECK_FALSE(g.node(r).is_loss);
  CHECK(g.losses().empty());
  g.mark_loss(s);
  g.mark_output(r);
  CHECK(g.losses() == std::vector<NodeId>{s});
  CHECK(g.outputs() == std::vector<NodeId>{r});
  CHECK(g.node(s).is_loss);
  CHECK_THROWS(g.mark_loss(NodeId{99}));
  CHECK_THROWS(g.mark_output(NodeId{99}));
}

TEST_CASE("Init and Attrs describe themselves deterministically", "[core][graph]") {
  CHECK(Init::zeros().str() == "zeros");
  CHECK(Init::constant(0.5).str() == "constant(0.5)");
  CHECK(Init::normal(0.05).str() == "normal(0, 0.05)");
  CHECK(Init::uniform(-1, 2).str() == "uniform(-1, 2)");
  CHECK(Init::glorot_uniform().str() == "glorot_uniform");
  CHECK(Init::he_normal().str() == "he_normal");

  Attrs a;
  a.num["lo"] = 0;
  a.num["hi"] = 1;
  a.str["pool"] = "sum";
  a.ints["shape"] = {-1, 54};
  CHECK(a.summary() == "hi=1, lo=0, pool=sum, shape=[-1,54]");
  CHECK(a.get_num("lo", 7) == 0);
  CHECK(a.get_num("missing", 7) == 7);
  CHECK(a.get_str("pool", "x") == "sum");
  CHECK(a.get_str("missing", "x") == "x");
  REQUIRE(a.get_ints("shape") != nullptr);
  CHECK(*a.get_ints("shape") == std::vector<std::int64_t>{-1, 54});
  CHECK(a.get_ints("missing") == nullptr);
  CHECK(Attrs{}.summary().empty());
}
