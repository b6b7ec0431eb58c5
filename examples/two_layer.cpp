// A two-layer classifier declared with the DSL, its gradients computed in double precision and checked against
// finite differences, and its graph written as DOT. Quoted in README.md; run by CTest (examples/two_layer).
#include <cmath>
#include <cstdio>
#include <fstream>

#include "autodiff/executor.hpp"
#include "autodiff/gradcheck.hpp"
#include "viz/dot.hpp"
#include "core/dsl.hpp"

using namespace funnel;

int main() {
  Graph g;
  Var x = input(g, "x", {kBatch, 4});  // B×4 features, batch dimension symbolic
  Var y = input(g, "y", {kBatch, 1});  // B×1 labels
  Var h;
  {
    auto s = g.scope("tower");
    h = dense(x, 8, "hidden", Act::Relu);   // tower/hidden/{w,b}: 4×8, 8
  }
  Var p = sigmoid(dense(h, 1, "out"));      // out/{w,b}: 8×1, 1
  Var loss = bce(p, y, "loss");             // mean binary cross-entropy, clamped
  g.mark_loss(loss.id);

  Executor<double> ex(g);                   // float to train, double to check
  ex.init_params(/*seed=*/1);
  ex.set_batch(3);
  const double xs[12] = {0.5, -1.0, 2.0, 0.1, -0.3, 0.8, -1.5, 1.2, 1.0, 0.0, -0.7, 0.4};
  std::copy(xs, xs + 12, ex.input("x").data());
  const double ys[3] = {1, 0, 1};
  std::copy(ys, ys + 3, ex.input("y").data());

  ex.forward();
  ex.backward(loss.id);
  std::printf("loss = %.6f\n", ex.scalar(loss.id));
  for (NodeId w : ex.params()) {
    double norm = 0;
    for (double v : ex.grad(w)) norm += v * v;
    std::printf("  d loss / d %-14s shape %-6s |grad| = %.6f\n", g.node(w).name.c_str(), g.node(w).shape.str().c_str(),
                std::sqrt(norm));
  }

  GradCheckResult r = gradcheck(ex, {{loss.id, 1.0}}, GradCheckOptions{});
  for (const auto& row : r.rows)
    std::printf("  gradcheck %-14s %3lld coords  max rel err %.1e  %s\n", row.param.c_str(),
                static_cast<long long>(row.checked), row.max_rel, row.pass ? "ok" : "FAIL");

  std::ofstream("two_layer.dot") << to_dot(g);  // render: dot -Tsvg two_layer.dot -o two_layer.svg
  return r.pass() ? 0 : 1;
}
