// Gradient-check examples of op `relu` (ops/relu.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op relu`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("relu", "B=3, B×5 (kinks skipped by the checker)", 3,
                                                        {{"x", Shape{3, 5}}})};

}  // namespace
}  // namespace funnel
