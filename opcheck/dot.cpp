// Gradient-check examples of op `dot` (ops/dot.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op dot`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("dot", "rank 3, 3×2×4 · 3×2×4 -> 3×2", 3,
                                                        {{"a", Shape{3, 2, 4}}, {"b", Shape{3, 2, 4}}})};
const OpExampleRegistrar example_col{detail::probe_example("dot", "rank 2, 3×5 · 3×5 -> 3×1", 3,
                                                            {{"a", Shape{3, 5}}, {"b", Shape{3, 5}}})};
const OpExampleRegistrar example_same{{"dot", "dot(x, x) (one node in both slots), 3×4", 3, [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{3, 4}, Init::normal(1.0));
                                         return probe_loss(g, g.add_op("dot", {a, a}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
