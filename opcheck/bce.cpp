// Gradient-check examples of op `bce` (ops/bce.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bce`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

// p is a parameter in (0.05, 0.95); labels 0/1 and weights in [0, 2] are fed.
const OpExampleRegistrar example{
    detail::squared_loss_example("bce", "6×1 probabilities, 0/1 labels", "p", Init::uniform(0.05, 0.95), false)};
const OpExampleRegistrar example_w{detail::squared_loss_example(
    "bce", "6×1 probabilities, 0/1 labels, weights in [0, 2]", "p", Init::uniform(0.05, 0.95), true)};

}  // namespace
}  // namespace funnel
