// Gradient-check examples of op `bce` (ops/bce.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op bce`.
#include "autodiff/gradcheck.hpp"
#include "opcheck/examples.hpp"

namespace funnel {
namespace {

using detail::feed_labels;

// p is a parameter in (0.05, 0.95); labels 0/1 and weights in [0, 2] are fed.
NodeId build_example(Graph& g, bool weighted) {
  NodeId p = g.add_param("p", Shape{6, 1}, Init::uniform(0.05, 0.95));
  NodeId y = g.add_input("y", Shape{6, 1});
  std::vector<NodeId> in{p, y};
  if (weighted) in.push_back(g.add_input("w", Shape{6, 1}));
  NodeId l = g.add_op("bce", in);
  NodeId sq = g.add_op("mul", {l, l});  // make dL/dl depend on l
  g.mark_loss(sq);
  return sq;
}
const OpExampleRegistrar example{{"bce", "6×1 probabilities, 0/1 labels", 6,
                                  [](Graph& g) { return build_example(g, false); }, feed_labels}};
const OpExampleRegistrar example_w{{"bce", "6×1 probabilities, 0/1 labels, weights in [0, 2]", 6,
                                    [](Graph& g) { return build_example(g, true); }, feed_labels}};

}  // namespace
}  // namespace funnel
