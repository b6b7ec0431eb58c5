// Gradient-check examples of op `shift` (ops/shift.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op shift`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

// Squared afterwards, so the gradient depends on the shifted value (a wrong forward shows up in dL/dx).
const OpExampleRegistrar example{{"shift", "B=3, B×4 plus 1.5, squared", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    Attrs at;
                                    at.num["c"] = 1.5;
                                    NodeId y = g.add_op("shift", {x}, at);
                                    return probe_loss(g, g.add_op("mul", {y, y}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
