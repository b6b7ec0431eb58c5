// DOT export: valid, escaped, deterministic; scopes become nested clusters; node kinds are styled apart; the
// grad-flow colours and the backward drawing follow the gradient-flow analysis.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "autodiff/gradflow.hpp"
#include "viz/dot.hpp"
#include "core/error.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"
#include "support/skip.hpp"

using namespace funnel;

namespace {

struct Two {
  Graph g;
  NodeId x, wa, wb, ws, la, lb, out;
};

// Two losses: loss_a = sum(relu(x·ws)·wa), head_b/loss_b = sum((relu(x·ws)·wb)²). Scopes: shared, head_a/inner, head_b.
void build(Two& t) {
  Graph& g = t.g;
  t.x = g.add_input("x", Shape{kBatch, 4});
  NodeId h;
  {
    auto s = g.scope("shared");
    t.ws = g.add_param("w", Shape{4, 3}, Init::normal(1.0));
    h = g.add_op("relu", {g.add_op("matmul", {t.x, t.ws})});
  }
  {
    auto s = g.scope("head_a");
    auto s2 = g.scope("inner");
    t.wa = g.add_param("w", Shape{3, 2}, Init::normal(1.0));
    t.out = g.add_op("matmul", {h, t.wa}, {}, "logits");
    g.mark_output(t.out);
  }
  t.la = g.add_op("sum", {t.out}, {}, "loss_a");
  {
    auto s = g.scope("head_b");
    t.wb = g.add_param("w", Shape{3, 2}, Init::normal(1.0));
    NodeId y = g.add_op("matmul", {h, t.wb});
    NodeId m = g.add_op("mul", {y, y});
    NodeId l = g.add_op("sum", {m}, {}, "loss_b");
    t.lb = l;
  }
  g.mark_loss(t.la);
  g.mark_loss(t.lb);
}

// The text of the statement that declares node `id` ("  n3 [label=...];").
std::string node_line(const std::string& dot, const std::string& id) {
  auto p = dot.find("\n" + id + " [");
  if (p == std::string::npos) {
    p = dot.find(" " + id + " [label");
    if (p == std::string::npos) return "";
  }
  auto e = dot.find('\n', p + 1);
  return dot.substr(p, e - p);
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// Quotes balance (ignoring escaped ones) and braces balance outside quotes.
bool lexically_balanced(const std::string& s) {
  bool in_q = false;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_q) {
      if (c == '\\') ++i;
      else if (c == '"') in_q = false;
    } else if (c == '"') {
      in_q = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (--depth < 0) return false;
    }
  }
  return !in_q && depth == 0;
}

bool graphviz_accepts(const std::string& dot, bool* ran) {
  *ran = std::system("command -v dot >/dev/null 2>&1") == 0;
  if (!*ran) return true;
  auto p = std::filesystem::temp_directory_path() / ("funnel_test_dot_" + std::to_string(::getpid()) + ".dot");
  {
    std::ofstream f(p);
    f << dot;
  }
  int rc = std::system(("dot -Tsvg '" + p.string() + "' -o /dev/null 2>/dev/null").c_str());
  std::filesystem::remove(p);
  return rc == 0;
}

}  // namespace

// Graphviz reads the DOT text `d` without an error; without `dot` on PATH the test case is skipped (it returns).
#define CHECK_GRAPHVIZ_ACCEPTS(d)                                                                  \
  do {                                                                                             \
    bool ran = false;                                                                              \
    CHECK(graphviz_accepts(d, &ran));                                                              \
    if (!ran) FUNNEL_SKIP("graphviz `dot` not on PATH: the DOT text was not checked by Graphviz"); \
  } while (false)

TEST_CASE("to_dot: nested scope clusters, kinds styled apart, shaped edges, legend", "[core][dot]") {
  Two t;
  build(t);
  const std::string d = to_dot(t.g);
  CHECK(d.rfind("digraph funnel {", 0) == 0);
  CHECK(lexically_balanced(d));
  // One cluster per scope (shared, head_a, head_a/inner, head_b) plus the legend.
  CHECK(count(d, "subgraph cluster_") == 5);
  CHECK(d.find("subgraph cluster_legend") != std::string::npos);
  // head_a/inner is nested inside head_a: its cluster opens before head_a's closes.
  auto a = d.find("_head_a {");
  auto inner = d.find("_inner {");
  auto b = d.find("_head_b {");
  REQUIRE(a != std::string::npos);
  REQUIRE(inner != std::string::npos);
  CHECK(a < inner);
  CHECK(inner < b);
  // Kinds: input parallelogram, param box, loss octagon, output double border.
  CHECK(node_line(d, "n" + std::to_string(t.x)).find("parallelogram") != std::string::npos);
  CHECK(node_line(d, "n" + std::to_string(t.ws)).find("shape=box, style=\"filled\"") != std::string::npos);
  CHECK(node_line(d, "n" + std::to_string(t.la)).find("octagon") != std::string::npos);
  CHECK(node_line(d, "n" + std::to_string(t.out)).find("peripheries=2") != std::string::npos);
  // Label: name, op, shape. Edge label: the source's shape.
  CHECK(node_line(d, "n" + std::to_string(t.out)).find("logits\\nmatmul\\nB×2") != std::string::npos);
  CHECK(d.find("n" + std::to_string(t.x) + " -> n") != std::string::npos);
  CHECK(d.find("label=\"B×4\"") != std::string::npos);
  // No gradient drawing unless asked.
  CHECK(d.find("∂L/∂") == std::string::npos);
  CHECK_GRAPHVIZ_ACCEPTS(d);
}

TEST_CASE("to_dot is deterministic: same graph, same bytes", "[core][dot]") {
  Two t1, t2;
  build(t1);
  build(t2);
  DotOptions o;
  o.backward = true;
  GradFlow gf1 = structural_grad_flow(t1.g), gf2 = structural_grad_flow(t2.g);
  o.grad_flow = &gf1;
  const std::string d1 = to_dot(t1.g, o);
  CHECK(d1 == to_dot(t1.g, o));
  o.grad_flow = &gf2;
  CHECK(d1 == to_dot(t2.g, o));
  CHECK(d1.find("0x") == std::string::npos);  // no pointers
}

TEST_CASE("to_dot escapes quotes, backslashes and newlines in labels", "[core][dot]") {
  Graph g;
  NodeId x = g.add_input("we\"ird\\name", Shape{kBatch, 2});
  NodeId w = g.add_param("w", Shape{2, 2}, Init::zeros());
  g.add_op("matmul", {x, w}, {}, "line\nbreak");
  DotOptions o;
  o.title = "title with \"quotes\"";
  const std::string d = to_dot(g, o);
  CHECK(d.find("we\\\"ird\\\\name") != std::string::npos);
  CHECK(d.find("line\\nbreak") != std::string::npos);
  CHECK(d.find("title with \\\"quotes\\\"") != std::string::npos);
  CHECK(lexically_balanced(d));
  CHECK(dot_escape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK_GRAPHVIZ_ACCEPTS(d);
}

TEST_CASE("to_dot --grad-flow colours parameters and edges by the losses that reach them", "[core][dot]") {
  Two t;
  build(t);
  GradFlow gf = structural_grad_flow(t.g);
  DotOptions o;
  o.grad_flow = &gf;
  const std::string d = to_dot(t.g, o);
  // loss_a is loss 0 (blue), loss_b loss 1 (red), both: purple.
  const std::string la = node_line(d, "n" + std::to_string(t.wa));
  const std::string lb = node_line(d, "n" + std::to_string(t.wb));
  const std::string ls = node_line(d, "n" + std::to_string(t.ws));
  CHECK(la.find("color=\"#1f6fb4\"") != std::string::npos);
  CHECK(la.find("∇ loss_a") != std::string::npos);
  CHECK(lb.find("color=\"#d62728\"") != std::string::npos);
  CHECK(ls.find("color=\"#7b3fa0\"") != std::string::npos);
  CHECK(ls.find("∇ loss_a + loss_b") != std::string::npos);
  // The edge from wb into its matmul carries only loss_b's gradient; the input x passes none (grey).
  CHECK(d.find("n" + std::to_string(t.wb) + " -> n" + std::to_string(t.wb + 1) + " [color=\"#d62728\"") !=
        std::string::npos);
  CHECK(d.find("n" + std::to_string(t.x) + " -> n" + std::to_string(t.ws + 1) + " [color=\"#a0a0a0\"") !=
        std::string::npos);
  // The legend names the losses.
  CHECK(d.find("gradient from loss_a only") != std::string::npos);
  CHECK(d.find("gradient from head_b/loss_b only") != std::string::npos);
  CHECK(d.find("gradient from every loss") != std::string::npos);
  CHECK_GRAPHVIZ_ACCEPTS(d);
}

TEST_CASE("to_dot backward draws a gradient node per node that gets a gradient, edges reversed", "[core][dot]") {
  Two t;
  build(t);
  DotOptions o;
  o.backward = true;
  const std::string d = to_dot(t.g, o);
  // Parameters and ops get ∂L nodes; the input x does not (no parameter upstream).
  CHECK(node_line(d, "g" + std::to_string(t.wa)).find("∂L/∂w") != std::string::npos);
  CHECK(node_line(d, "g" + std::to_string(t.ws)).find("dashed") != std::string::npos);
  CHECK(node_line(d, "g" + std::to_string(t.x)).empty());
  // Gradient of loss_a's input flows from ∂L/∂loss_a to ∂L/∂logits: drawn logits -> loss with dir=back.
  CHECK(d.find("g" + std::to_string(t.out) + " -> g" + std::to_string(t.la) + " [dir=back, style=dashed") !=
        std::string::npos);
  CHECK(d.find("n" + std::to_string(t.la) + " -> g" + std::to_string(t.la) + " [style=dashed") != std::string::npos);
  CHECK_GRAPHVIZ_ACCEPTS(d);
}

TEST_CASE("to_dot rejects a bad rankdir and a grad-flow made for another graph", "[core][dot]") {
  Two t;
  build(t);
  DotOptions o;
  o.rankdir = "sideways";
  CHECK_THROWS_AS(to_dot(t.g, o), GraphError);
  Graph other;
  NodeId w = other.add_param("w", Shape{2}, Init::zeros());
  other.mark_loss(other.add_op("sum", {w}));
  GradFlow gf = structural_grad_flow(other);
  DotOptions o2;
  o2.grad_flow = &gf;
  CHECK_THROWS_AS(to_dot(t.g, o2), GraphError);
}

TEST_CASE("to_dot --grad-flow marks a parameter read through stop_gradient as stopped, not as an alarm", "[core][dot]") {
  Graph g;
  build_model(g, test::small("escm2-ips"));
  GradFlowOptions go;
  GradFlow gf = analyze_grad_flow(g, go);
  DotOptions o;
  o.grad_flow = &gf;
  const std::string d = to_dot(g, o);
  const std::string ctr = node_line(d, "n" + std::to_string(g.at("ctr_tower/logit/b")));
  CHECK(ctr.find("∇ stopped: cvr_ips") != std::string::npos);
  CHECK(ctr.find("⚠") == std::string::npos);
  const std::string cvr = node_line(d, "n" + std::to_string(g.at("cvr_tower/logit/b")));
  CHECK(cvr.find("∇ stopped") == std::string::npos);
  CHECK(d.find("DISAGREES") == std::string::npos);
  CHECK(d.find("numeric check (float64 backward per loss): agrees") != std::string::npos);
}
