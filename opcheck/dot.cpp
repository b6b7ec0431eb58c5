// Gradient-check examples of op `dot` (ops/dot.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op dot`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"dot", "rank 3, 3×2×4 · 3×2×4 -> 3×2", 3, [](Graph& g) {
                                    NodeId a = g.add_param("a", Shape{3, 2, 4}, Init::normal(1.0));
                                    NodeId b = g.add_param("b", Shape{3, 2, 4}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("dot", {a, b}));
                                  }, nullptr}};
const OpExampleRegistrar example_col{{"dot", "rank 2, 3×5 · 3×5 -> 3×1", 3, [](Graph& g) {
                                        NodeId a = g.add_param("a", Shape{3, 5}, Init::normal(1.0));
                                        NodeId b = g.add_param("b", Shape{3, 5}, Init::normal(1.0));
                                        return probe_loss(g, g.add_op("dot", {a, b}));
                                      }, nullptr}};
const OpExampleRegistrar example_same{{"dot", "dot(x, x) (one node in both slots), 3×4", 3, [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{3, 4}, Init::normal(1.0));
                                         return probe_loss(g, g.add_op("dot", {a, a}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
