// Gradient-check examples of op `sum` (ops/sum.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op sum`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::squared_scalar_example("sum", "2×3×4 -> scalar", Shape{2, 3, 4})};

}  // namespace
}  // namespace funnel
