// Gradient-check examples of op `matmul` (ops/matmul.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op matmul`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"matmul", "B=3, B×4 · 4×5, X and W trainable", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    NodeId w = g.add_param("w", Shape{4, 5}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("matmul", {x, w}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
