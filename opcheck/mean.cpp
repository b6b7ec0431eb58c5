// Gradient-check examples of op `mean` (ops/mean.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op mean`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"mean", "2×3×4 -> scalar, squared", 3, [](Graph& g) {
                                    NodeId x = g.add_param("x", Shape{2, 3, 4}, Init::normal(1.0));
                                    NodeId m = g.add_op("mean", {x});
                                    NodeId sq = g.add_op("mul", {m, m});  // make dL/dm depend on m
                                    g.mark_loss(sq);
                                    return sq;
                                  }, nullptr}};

}  // namespace
}  // namespace funnel
