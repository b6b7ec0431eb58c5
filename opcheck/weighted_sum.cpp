// Gradient-check examples of op `weighted_sum` (ops/weighted_sum.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op weighted_sum`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("weighted_sum", "3×4 weights, 3×4×5 experts -> 3×5", 3,
                                                        {{"w", Shape{3, 4}}, {"x", Shape{3, 4, 5}}})};
const OpExampleRegistrar example_gate{{"weighted_sum", "softmax gate 2×3 over 2×3×2 experts", 2, [](Graph& g) {
                                         NodeId z = g.add_param("z", Shape{2, 3}, Init::normal(1.0));
                                         NodeId x = g.add_param("x", Shape{2, 3, 2}, Init::normal(1.0));
                                         NodeId w = g.add_op("softmax", {z});
                                         return probe_loss(g, g.add_op("weighted_sum", {w, x}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
