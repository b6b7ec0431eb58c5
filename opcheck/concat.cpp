// Gradient-check examples of op `concat` (ops/concat.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op concat`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"concat", "axis 1: 3×2, 3×4, 3×1", 3, [](Graph& g) {
                                    NodeId a = g.add_param("a", Shape{3, 2}, Init::normal(1.0));
                                    NodeId b = g.add_param("b", Shape{3, 4}, Init::normal(1.0));
                                    NodeId d = g.add_param("d", Shape{3, 1}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("concat", {a, b, d}));
                                  }, nullptr}};
const OpExampleRegistrar example_mid{{"concat", "rank 3, axis 1, one node in two slots: 2×1×3, 2×2×3, 2×1×3", 3,
                                      [](Graph& g) {
                                        NodeId a = g.add_param("a", Shape{2, 1, 3}, Init::normal(1.0));
                                        NodeId b = g.add_param("b", Shape{2, 2, 3}, Init::normal(1.0));
                                        return probe_loss(g, g.add_op("concat", {a, b, a}));
                                      }, nullptr}};
const OpExampleRegistrar example_last{{"concat", "rank 3, axis -1: 2×3×1, 2×3×2", 3, [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{2, 3, 1}, Init::normal(1.0));
                                         NodeId b = g.add_param("b", Shape{2, 3, 2}, Init::normal(1.0));
                                         Attrs at;
                                         at.num["axis"] = -1;
                                         return probe_loss(g, g.add_op("concat", {a, b}, at));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
