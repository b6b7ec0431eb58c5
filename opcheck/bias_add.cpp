// Gradient-check examples of op `bias_add` (ops/bias_add.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bias_add`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"bias_add", "B=3, B×4 + 4, x and b trainable", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    NodeId b = g.add_param("b", Shape{4}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("bias_add", {x, b}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
