// Gradient-check examples of op `mean` (ops/mean.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op mean`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::squared_scalar_example("mean", "2×3×4 -> scalar, squared", Shape{2, 3, 4})};

}  // namespace
}  // namespace funnel
