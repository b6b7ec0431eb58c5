// Shape: the symbolic batch dimension, printing, element counts; and the shape-error message format of
// op shape rules (node name, op name, every input shape).
#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "core/graph.hpp"
#include "core/shape.hpp"
#include "ops/op.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

TEST_CASE("Shape::str prints B for the batch dim, × between dims, scalar for rank 0", "[core][shape]") {
  CHECK(Shape{kBatch, 360}.str() == "B×360");
  CHECK(Shape{18, 200}.str() == "18×200");
  CHECK(Shape{}.str() == "scalar");
  CHECK(Shape{kBatch, 3, 4}.str() == "B×3×4");
  CHECK(Shape{7}.str() == "7");
  CHECK(Shape{0}.str() == "0");
  CHECK(Shape{std::vector<Dim>{kBatch}}.str() == "B");
}

TEST_CASE("Shape: rank, has_batch, numel and concrete", "[core][shape]") {
  CHECK(Shape{kBatch, 3}.has_batch());
  CHECK(Shape{3, kBatch}.has_batch());
  CHECK_FALSE(Shape{2, 3}.has_batch());
  CHECK_FALSE(Shape{}.has_batch());
  CHECK(Shape{kBatch, 3, 4}.numel(5) == 60);
  CHECK(Shape{2, 3}.numel(5) == 6);
  CHECK(Shape{}.numel(5) == 1);
  CHECK(Shape{kBatch, 3}.concrete(7) == std::vector<std::size_t>{7, 3});
  CHECK(Shape{}.concrete(7).empty());
  CHECK(Shape{kBatch, 3}.rank() == 2);
  CHECK(Shape{}.rank() == 0);
  CHECK(Shape{kBatch, 3}[0] == kBatch);
  CHECK(Shape{kBatch, 3}[1] == 3);
}

TEST_CASE("Shape equality is exact, dimension by dimension", "[core][shape]") {
  CHECK(Shape{kBatch, 3} == Shape{kBatch, 3});
  CHECK(Shape{kBatch, 3} != Shape{3, kBatch});
  CHECK(Shape{kBatch, 3} != Shape{kBatch, 3, 1});
  CHECK(Shape{} == Shape{});
  CHECK(Shape{std::vector<Dim>{2, 3}} == Shape{2, 3});
}

TEST_CASE("shape_error names the node, the op, the reason and every input shape", "[core][shape]") {
  Node n;
  n.name = "ctr_tower/dense_0/matmul";
  n.op = "matmul";
  try {
    shape_error(n, {Shape{kBatch, 360}, Shape{200, 80}}, "inner dimensions differ");
    FAIL("shape_error returned");
  } catch (const ShapeError& e) {
    std::string m = e.what();
    CHECK_THAT(m, Contains("ctr_tower/dense_0/matmul") && Contains("matmul") && Contains("inner dimensions differ") &&
                      Contains("B×360, 200×80"));
  }
  CHECK_THROWS_WITH(shape_error(n, {}, "why"), Contains("none"));
  CHECK_THROWS_WITH(expect_inputs(n, {Shape{1}}, 2), Contains("expects 2 inputs, got 1"));
  CHECK_NOTHROW(expect_inputs(n, {Shape{1}, Shape{2}}, 2));
}

TEST_CASE("the foundation ops' shape rules", "[core][shape]") {
  Graph g;
  NodeId x = g.add_input("x", Shape{kBatch, 4});
  NodeId w = g.add_param("w", Shape{4, 3}, Init::zeros());
  NodeId t = g.add_input("t", Shape{kBatch, 2, 2});
  CHECK(g.node(g.add_op("matmul", {x, w})).shape == Shape{kBatch, 3});
  CHECK(g.node(g.add_op("relu", {t})).shape == Shape{kBatch, 2, 2});
  CHECK(g.node(g.add_op("mul", {x, x})).shape == Shape{kBatch, 4});
  CHECK(g.node(g.add_op("sum", {t})).shape == Shape{});
  // matmul: rank-3 operand, inner mismatch, batch as the inner dim.
  CHECK_THROWS_WITH(g.add_op("matmul", {t, w}, {}, "mm3"), Contains("'mm3'") && Contains("B×2×2"));
  CHECK_THROWS_WITH(g.add_op("matmul", {w, w}, {}, "mm"), Contains("'mm'") && Contains("4×3, 4×3"));
  NodeId wt = g.add_input("wt", Shape{kBatch, 5});
  NodeId xt = g.add_input("xt", Shape{5, kBatch});
  CHECK_THROWS_AS(g.add_op("matmul", {xt, wt}), ShapeError);  // inner dim B·B is not a fixed contraction
  // mul: mismatch, including batch vs fixed.
  NodeId y = g.add_input("y", Shape{4, 4});
  CHECK_THROWS_WITH(g.add_op("mul", {x, y}, {}, "prod"), Contains("'prod'") && Contains("mul") &&
                                                                  Contains("B×4") && Contains("4×4"));
}
