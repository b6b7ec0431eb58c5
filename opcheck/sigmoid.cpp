// Gradient-check examples of op `sigmoid` (ops/sigmoid.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op sigmoid`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("sigmoid", "B=3, B×5, x ~ N(0, 3²)", 3, {{"x", Shape{3, 5}}},
                                                        Init::normal(3.0))};

}  // namespace
}  // namespace funnel
