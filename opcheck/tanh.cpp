// Gradient-check examples of op `tanh` (ops/tanh.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op tanh`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("tanh", "B=3, B×5, x ~ N(0, 2²)", 3, {{"x", Shape{3, 5}}},
                                                        Init::normal(2.0))};

}  // namespace
}  // namespace funnel
