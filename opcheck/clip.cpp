// Gradient-check examples of op `clip` (ops/clip.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op clip`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

// x ~ U(−2, 2) clipped to [−1, 0.5]: about half the elements clipped on either side, half inside.
const OpExampleRegistrar example{detail::probe_example("clip", "4×5, x in [-2, 2], clip to [-1, 0.5]", 3,
                                                        {{"x", Shape{4, 5}}}, Init::uniform(-2.0, 2.0),
                                                        detail::num_attrs({{"lo", -1.0}, {"hi", 0.5}}))};
const OpExampleRegistrar example_relu{detail::probe_example("clip", "3×4, clip to [0, +inf) (max(x, 0))", 3,
                                                             {{"x", Shape{3, 4}}}, Init::normal(1.0),
                                                             detail::num_attrs({{"lo", 0.0}}))};

}  // namespace
}  // namespace funnel
