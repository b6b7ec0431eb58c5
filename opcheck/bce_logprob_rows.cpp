// Gradient-check examples of op `bce_logprob_rows` (ops/bce_logprob_rows.cpp): small graphs around the op, checked
// in double precision against finite differences by tests/ops/test_all_ops.cpp and
// `funnel gradcheck --op bce_logprob_rows`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

// a = log p in (−4, −0.05), hard labels fed as an input: the loss of each row, weighted by the probe.
const OpExampleRegistrar example{{"bce_logprob_rows", "6×1 log-probabilities, 0/1 labels -> 6×1", 6,
                                  [](Graph& g) {
                                    NodeId a = g.add_param("a", Shape{6, 1}, Init::uniform(-4.0, -0.05));
                                    NodeId y = g.add_input("y", Shape{6, 1});
                                    return probe_loss(g, g.add_op("bce_logprob_rows", {a, y}));
                                  },
                                  detail::feed_labels}};
// Soft labels as a parameter: both slots trainable (ESCM²-DR's imputed label).
const OpExampleRegistrar example_soft{
    {"bce_logprob_rows", "4×2 log-probabilities and trainable soft labels in (0.1, 0.9)", 4,
     [](Graph& g) {
       NodeId a = g.add_param("a", Shape{4, 2}, Init::uniform(-4.0, -0.05));
       NodeId y = g.add_param("y", Shape{4, 2}, Init::uniform(0.1, 0.9));
       return probe_loss(g, g.add_op("bce_logprob_rows", {a, y}));
     },
     nullptr}};
// A CVR logit at ±40 and a stage product below 1e-30, with a trainable soft label: every row's error keeps its
// gradient.
const OpExampleRegistrar example_extremes{
    {"bce_logprob_rows", "log σ(z) and log σ(z1)σ(z2) at logits ±40 / −35, soft labels", 6,
     [](Graph& g) {
       NodeId z1 = g.add_param("z1", Shape{6, 1}, Init::zeros());
       NodeId z2 = g.add_param("z2", Shape{6, 1}, Init::zeros());
       NodeId y = g.add_param("y", Shape{6, 1}, Init::uniform(0.1, 0.9));
       NodeId a = g.add_op("add", {g.add_op("log_sigmoid", {z1}), g.add_op("log_sigmoid", {z2})});
       return probe_loss(g, g.add_op("bce_logprob_rows", {a, y}));
     },
     [](Executor<double>& e, std::mt19937_64&) {
       const double z1[] = {40, -40, -35, 40, 0, 3};
       const double z2[] = {40, 40, -35, -40, 40, -3};
       for (std::size_t i = 0; i < 6; ++i) {
         e.param("z1").data()[i] = z1[i];
         e.param("z2").data()[i] = z2[i];
       }
     }}};

}  // namespace
}  // namespace funnel
