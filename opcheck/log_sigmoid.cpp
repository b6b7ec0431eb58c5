// Gradient-check examples of op `log_sigmoid` (ops/log_sigmoid.cpp): small graphs around the op, checked in double
// precision against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op log_sigmoid`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

const OpExampleRegistrar example{detail::probe_example("log_sigmoid", "3×4 logits ~ N(0, 3²)", 3, {{"z", Shape{3, 4}}},
                                                        Init::normal(3.0))};
// Both tails: log σ(40) ≈ −4e-18 (relative precision kept), log σ(−40) ≈ −40.
const OpExampleRegistrar example_tails{{"log_sigmoid", "6×1 logits at ±40, ±20, ±0.5", 6,
                                        [](Graph& g) {
                                          NodeId z = g.add_param("z", Shape{6, 1}, Init::zeros());
                                          return probe_loss(g, g.add_op("log_sigmoid", {z}));
                                        },
                                        [](Executor<double>& e, std::mt19937_64&) {
                                          const double v[] = {40, -40, 20, -20, 0.5, -0.5};
                                          auto& z = e.param("z");
                                          for (std::size_t i = 0; i < 6; ++i) z.data()[i] = v[i];
                                        }}};

}  // namespace
}  // namespace funnel
