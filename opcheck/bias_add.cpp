// Gradient-check examples of op `bias_add` (ops/bias_add.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bias_add`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("bias_add", "B=3, B×4 + 4, x and b trainable", 3,
                                                        {{"x", Shape{3, 4}}, {"b", Shape{4}}})};

}  // namespace
}  // namespace funnel
