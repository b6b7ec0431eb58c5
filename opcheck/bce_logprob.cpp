// Gradient-check examples of op `bce_logprob` (ops/bce_logprob.cpp): small graphs around the op, checked in double
// precision against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bce_logprob`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

// a = log p is a parameter in (−4, −0.05); labels 0/1 and weights in [0, 2] are fed.
const OpExampleRegistrar example{detail::squared_loss_example("bce_logprob", "6×1 log-probabilities, 0/1 labels", "a",
                                                              Init::uniform(-4.0, -0.05), false)};
const OpExampleRegistrar example_w{detail::squared_loss_example(
    "bce_logprob", "6×1 log-probabilities, 0/1 labels, weights in [0, 2]", "a", Init::uniform(-4.0, -0.05), true)};

// The funnel's use at the extremes: a = log σ(z1) + log σ(z2) of two stage logits at ±40 and ±35, so that the
// product p = σ(z1)σ(z2) goes from 1 − 8e-18 down to 4e-31, for both labels.
const OpExampleRegistrar example_extremes{
    {"bce_logprob", "two-stage log-probability from logits at ±40 / ±35 (p from 1 − 8e-18 to 4e-31)", 8,
     [](Graph& g) {
       NodeId z1 = g.add_param("z1", Shape{8, 1}, Init::zeros());
       NodeId z2 = g.add_param("z2", Shape{8, 1}, Init::zeros());
       NodeId a = g.add_op("add", {g.add_op("log_sigmoid", {z1}), g.add_op("log_sigmoid", {z2})});
       // The loss itself (not squared): at values near 40 a square's rounding would drown the small gradients in
       // the finite differences.
       NodeId l = g.add_op("bce_logprob", {a, g.add_input("y", Shape{8, 1})});
       g.mark_loss(l);
       return l;
     },
     [](Executor<double>& e, std::mt19937_64&) {
       const double z1[] = {40, 40, -35, -35, -40, 40, 3, 1};
       const double z2[] = {40, 40, -35, -35, 40, -40, -40, -1};
       const double y[] = {0, 1, 1, 0, 1, 0, 1, 0};
       for (std::size_t i = 0; i < 8; ++i) {
         e.param("z1").data()[i] = z1[i];
         e.param("z2").data()[i] = z2[i];
         e.input("y").data()[i] = y[i];
       }
     }}};

}  // namespace
}  // namespace funnel
