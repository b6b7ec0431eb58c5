// Gradient-check examples of op `embedding` (ops/embedding.cpp): small graphs around the op, checked in double precision
// against finite differences by tests/ops/test_all_ops.cpp and `funnel gradcheck --op embedding`.
#include "autodiff/gradcheck.hpp"

namespace funnel {
namespace {

// B=3 rows, F=3 fields over a 7×4 table:
//   row 0: {1}            {2 (w 0.5), 5 (w 2)}   {}            <- an empty cell
//   row 1: {1}            {3, 3 (w 1.5)}         {6 (w -0.5)}  <- an id repeated inside a cell
//   row 2: {4}            {1 (w 0.25), 0}        {2, 5, 6}     <- row 1 of the table again, a third time
// Ids 1 and 2 recur across rows, so rows accumulate. Mean pooling divides each cell by its weight sum
// (never 0 here).
void feed_ids(Executor<double>& e, std::mt19937_64&) {
  IdBatch& b = e.ids("ids");
  b.reset(3, 3);
  b.push(1); b.end_cell();
  b.push(2, 0.5f); b.push(5, 2.0f); b.end_cell();
  b.end_cell();
  b.push(1); b.end_cell();
  b.push(3); b.push(3, 1.5f); b.end_cell();
  b.push(6, -0.5f); b.end_cell();
  b.push(4); b.end_cell();
  b.push(1, 0.25f); b.push(0); b.end_cell();
  b.push(2); b.push(5); b.push(6); b.end_cell();
}
NodeId build_example(Graph& g, const char* pool, bool dense_too) {
  NodeId t = g.add_param("table", Shape{7, 4}, Init::normal(1.0));
  NodeId ids = g.add_ids("ids", 3);
  Attrs at;
  at.str["pool"] = pool;
  NodeId l = probe_loss(g, g.add_op("embedding", {t, ids}, at));
  if (!dense_too) return l;
  // The table also read densely: its gradient becomes dense and embedding accumulates into it.
  NodeId s = g.add_op("sum", {g.add_op("mul", {t, t})});
  NodeId total = g.add_op("add", {l, s});
  g.mark_loss(total);
  return total;
}
const OpExampleRegistrar example_sum{{"embedding", "B=3, F=3, sum pool: weights, empty cell, repeated ids", 3,
                                      [](Graph& g) { return build_example(g, "sum", false); }, feed_ids}};
const OpExampleRegistrar example_mean{{"embedding", "B=3, F=3, mean pool: weights, empty cell, repeated ids", 3,
                                       [](Graph& g) { return build_example(g, "mean", false); }, feed_ids}};
const OpExampleRegistrar example_dense{{"embedding", "B=3, F=3, mean pool, table also read densely", 3,
                                        [](Graph& g) { return build_example(g, "mean", true); }, feed_ids}};

}  // namespace
}  // namespace funnel
