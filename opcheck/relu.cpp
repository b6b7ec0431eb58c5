// Gradient-check examples of op `relu` (ops/relu.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op relu`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"relu", "B=3, B×5 (kinks skipped by the checker)", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{3, 5}, Init::normal(1.0));
                                    return probe_loss(g, g.add_op("relu", {x}));
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
