// Gradient-check examples of op `bce_rows` (ops/bce_rows.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bce_rows`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

// p in (0.05, 0.95), hard labels fed as an input: the loss of each row, weighted by the probe.
const OpExampleRegistrar example{{"bce_rows", "6×1 probabilities, 0/1 labels -> 6×1", 6,
                                  [](Graph& g) {
                                    NodeId p = g.add_param("p", Shape{6, 1}, Init::uniform(0.05, 0.95));
                                    NodeId y = g.add_input("y", Shape{6, 1});
                                    return probe_loss(g, g.add_op("bce_rows", {p, y}));
                                  },
                                  detail::feed_labels}};
// Soft labels as a parameter: both slots trainable (ESCM²-DR's imputed label).
const OpExampleRegistrar example_soft{{"bce_rows", "4×2 probabilities and trainable soft labels in (0.1, 0.9)", 4,
                                       [](Graph& g) {
                                         NodeId p = g.add_param("p", Shape{4, 2}, Init::uniform(0.05, 0.95));
                                         NodeId y = g.add_param("y", Shape{4, 2}, Init::uniform(0.1, 0.9));
                                         return probe_loss(g, g.add_op("bce_rows", {p, y}));
                                       }, nullptr}};

}  // namespace
}  // namespace funnel
