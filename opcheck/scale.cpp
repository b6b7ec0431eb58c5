// Gradient-check examples of op `scale` (ops/scale.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op scale`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"scale", "B=3, B×4 times -2.5", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    Attrs at;
                                    at.num["w"] = -2.5;
                                    return probe_loss(g, g.add_op("scale", {x}, at));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
