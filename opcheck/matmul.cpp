// Gradient-check examples of op `matmul` (ops/matmul.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op matmul`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("matmul", "B=3, B×4 · 4×5, X and W trainable", 3,
                                                        {{"x", Shape{3, 4}}, {"w", Shape{4, 5}}})};

}  // namespace
}  // namespace funnel
