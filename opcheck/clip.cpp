// Gradient-check examples of op `clip` (ops/clip.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op clip`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

// x ~ U(−2, 2) clipped to [−1, 0.5]: about half the elements clipped on either side, half inside.
const OpExampleRegistrar example{{"clip", "4×5, x in [-2, 2], clip to [-1, 0.5]", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{4, 5}, Init::uniform(-2.0, 2.0));
                                    Attrs at;
                                    at.num["lo"] = -1.0;
                                    at.num["hi"] = 0.5;
                                    return probe_loss(g, g.add_op("clip", {x}, at));
                                  }, nullptr}};
const OpExampleRegistrar example_relu{{"clip", "3×4, clip to [0, +inf) (max(x, 0))", 3, [](Graph& g) {
                                         NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                         Attrs at;
                                         at.num["lo"] = 0.0;
                                         return probe_loss(g, g.add_op("clip", {x}, at));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
