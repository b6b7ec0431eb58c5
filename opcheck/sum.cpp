// Gradient-check examples of op `sum` (ops/sum.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op sum`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"sum", "2×3×4 -> scalar", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{2, 3, 4}, Init::normal(1.0));
                                    NodeId s = g.add_op("sum", {x});
                                    NodeId two = g.add_op("mul", {s, s});  // make dL/ds depend on s
                                    g.mark_loss(two);
                                    return two;
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
