// Gradient-check examples of op `mul` (ops/mul.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op mul`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"mul", "B=3, B×4 ⊙ B×4, both operands trainable", 3, [](Graph& g) {
                                    NodeId a = g.add_param("a", Shape{3, 4}, Init::normal(1.0));
                                    NodeId b = g.add_param("b", Shape{3, 4}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("mul", {a, b}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
