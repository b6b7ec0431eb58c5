// Gradient-check examples of op `scale` (ops/scale.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op scale`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("scale", "B=3, B×4 times -2.5", 3, {{"x", Shape{3, 4}}},
                                                        Init::normal(1.0), detail::num_attrs({{"w", -2.5}}))};

}  // namespace
}  // namespace funnel
