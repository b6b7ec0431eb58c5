// Gradient-check examples of op `bce_logits` (ops/bce_logits.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bce_logits`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{{"bce_logits", "6×1 logits ~ N(0, 3²), 0/1 labels", 6,
                                  [](Graph& g) {
                                    NodeId z = g.add_param("z", Shape{6, 1}, Init::normal(3.0));
                                    NodeId y = g.add_input("y", Shape{6, 1});
                                    NodeId l = g.add_op("bce_logits", {z, y});
                                    NodeId sq = g.add_op("mul", {l, l});  // make dL/dl depend on l
                                    g.mark_loss(sq);
                                    return sq;
                                  },
                                  [](Executor<double>& e, std::mt19937_64& rng) {
                                    std::bernoulli_distribution coin(0.5);
                                    for (auto& v : e.input("y")) v = coin(rng) ? 1.0 : 0.0;
                                  }}};

}  // namespace
}  // namespace funnel
