// Gradient-check examples of op `concat` (ops/concat.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op concat`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("concat", "axis 1: 3×2, 3×4, 3×1", 3,
                                                        {{"a", Shape{3, 2}}, {"b", Shape{3, 4}}, {"d", Shape{3, 1}}})};
const OpExampleRegistrar example_mid{{"concat", "rank 3, axis 1, one node in two slots: 2×1×3, 2×2×3, 2×1×3", 3,
                                      [](Graph& g) {
                                        NodeId a = g.add_param("a", Shape{2, 1, 3}, Init::normal(1.0));
                                        NodeId b = g.add_param("b", Shape{2, 2, 3}, Init::normal(1.0));
                                        return probe_loss(g, g.add_op("concat", {a, b, a}));
                                      }, nullptr}};
const OpExampleRegistrar example_last{detail::probe_example("concat", "rank 3, axis -1: 2×3×1, 2×3×2", 3,
                                                             {{"a", Shape{2, 3, 1}}, {"b", Shape{2, 3, 2}}},
                                                             Init::normal(1.0), detail::num_attrs({{"axis", -1}}))};

}  // namespace
}  // namespace funnel
