// Gradient-check examples of op `reshape` (ops/reshape.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op reshape`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("reshape", "2×3×4 -> 4×6", 3, {{"x", Shape{2, 3, 4}}},
                                                        Init::normal(1.0), detail::ints_attrs({{"shape", {4, 6}}}))};
// A batch-carrying value: the trainable B×6 in (B×6) · w (6×6), reshaped to B×3×2.
const OpExampleRegistrar example_batch{{"reshape", "B=3, B×6 -> B×3×2 (batch dim kept)", 3, [](Graph& g) {
                                          NodeId in = g.add_input("in", Shape{kBatch, 6});
                                          NodeId w = g.add_param("w", Shape{6, 6}, Init::normal(1.0));
                                          NodeId x = g.add_op("matmul", {in, w});
                                          Attrs at;
                                          at.ints["shape"] = {kBatch, 3, 2};
                                          return probe_loss(g, g.add_op("reshape", {x}, at));
                                        }, nullptr}};

}  // namespace
}  // namespace funnel
