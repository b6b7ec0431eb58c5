// Gradient-check examples of op `divide` (ops/divide.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op divide`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

// a ~ U(−2, 2), b ~ U(0.5, 1.5) and clip to [−1, 1.5]: some quotients clipped, most inside; kinks are rare.
NodeId build_example(Graph& g, double blo, double bhi) {
  NodeId a = g.add_param("a", Shape{4, 5}, Init::uniform(-2.0, 2.0));
  NodeId b = g.add_param("b", Shape{4, 5}, Init::uniform(blo, bhi));
  Attrs at;
  at.num["lo"] = -1.0;
  at.num["hi"] = 1.5;
  return probe_loss(g, g.add_op("divide", {a, b}, at));
}
const OpExampleRegistrar example{{"divide", "4×5, b in [0.5, 1.5], clip to [-1, 1.5]", 3,
                                  [](Graph& g) { return build_example(g, 0.5, 1.5); }, nullptr}};
const OpExampleRegistrar example_neg{{"divide", "4×5, b in [-1.5, -0.5], clip to [-1, 1.5]", 3,
                                      [](Graph& g) { return build_example(g, -1.5, -0.5); }, nullptr}};

}  // namespace
}  // namespace funnel
