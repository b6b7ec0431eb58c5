// Gradient-check examples of op `add` (ops/add.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op add`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("add", "B=3, B×4 + B×4, both operands trainable", 3,
                                                        {{"a", Shape{3, 4}}, {"b", Shape{3, 4}}})};
const OpExampleRegistrar example_same{{"add", "x + x (one node in both slots)", 3, [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{2, 3}, Init::normal(1.0));
                                         return probe_loss(g, g.add_op("add", {a, a}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
