// Gradient-check examples of op `mul` (ops/mul.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op mul`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("mul", "B=3, B×4 ⊙ B×4, both operands trainable", 3,
                                                        {{"a", Shape{3, 4}}, {"b", Shape{3, 4}}})};

}  // namespace
}  // namespace funnel
