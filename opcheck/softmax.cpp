// Gradient-check examples of op `softmax` (ops/softmax.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op softmax`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("softmax", "B=3, B×4 gate logits ~ N(0, 2²)", 3,
                                                        {{"x", Shape{3, 4}}}, Init::normal(2.0))};
const OpExampleRegistrar example3{detail::probe_example("softmax", "rank 3, 2×3×5 over the last axis", 2,
                                                         {{"x", Shape{2, 3, 5}}})};

}  // namespace
}  // namespace funnel
