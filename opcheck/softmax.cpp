// Gradient-check examples of op `softmax` (ops/softmax.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op softmax`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"softmax", "B=3, B×4 gate logits ~ N(0, 2²)", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(2.0));
                                    return probe_loss(g, g.add_op("softmax", {x}));
                                  }, nullptr}};
const OpExampleRegistrar example3{{"softmax", "rank 3, 2×3×5 over the last axis", 2, [](Graph& g) {
                                     NodeId x = g.add_param("x", Shape{2, 3, 5}, Init::normal(1.0));
                                     return probe_loss(g, g.add_op("softmax", {x}));
                                   }, nullptr}};

}  // namespace
}  // namespace funnel
