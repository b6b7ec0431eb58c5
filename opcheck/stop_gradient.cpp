// Gradient-check examples of op `stop_gradient` (ops/stop_gradient.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op stop_gradient`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

// y = stop_gradient(c) ⊙ x with c fed: dL/dx = c ⊙ R checks that the forward copies c exactly.
const OpExampleRegistrar example{{"stop_gradient", "B=3, stop_gradient(c) ⊙ x, c fed, x trainable", 3,
                                  [](Graph& g) {
                                    NodeId c = g.add_input("c", Shape{3, 4});
                                    NodeId x = g.add_param("x", Shape{3, 4}, Init::normal(1.0));
                                    NodeId s = g.add_op("stop_gradient", {c});
                                    return probe_loss(g, g.add_op("mul", {s, x}));
                                  }, nullptr}};

// y = stop_gradient(a) ⊙ a: the gradient through the stopped slot must be zero (the other slot's alone).
const OpExampleRegistrar example_self{{"stop_gradient", "B=3, stop_gradient(a) ⊙ a, a trainable", 3,
                                       [](Graph& g) {
                                         NodeId a = g.add_param("a", Shape{3, 4}, Init::normal(1.0));
                                         NodeId s = g.add_op("stop_gradient", {a});
                                         return probe_loss(g, g.add_op("mul", {s, a}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
