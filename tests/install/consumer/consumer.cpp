// Uses an installed funnel the way a user's project would: registers an op of its own next to the built-in ones,
// builds a graph with both, trains nothing but checks every gradient in double precision. Exit 0 when all is well.
#include <cstdio>
#include <string>

#include "autodiff/gradcheck.hpp"
#include "core/dsl.hpp"
#include "ops/op.hpp"

namespace {

using namespace funnel;

// negate: y = -x.  VJP: dx = -dy.
struct Negate : OpT<Negate> {
  const char* name() const override { return "consumer_negate"; }
  const char* doc() const override { return "y = -x (an op registered by a consumer of the installed library)"; }
  int arity() const override { return 1; }
  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }
  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    for (std::size_t i = 0; i < c.out->size(); ++i) y[i] = -x[i];
  }
  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* gy = c.gout->data();
    for (std::size_t i = 0; i < c.out->size(); ++i) c.put(0, i, -gy[i]);
  }
};
FUNNEL_REGISTER_OP(Negate);

int fail(const std::string& why) {
  std::fprintf(stderr, "consumer: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main() {
  // The built-in ops and their gradient-check examples survived static linking.
  for (const char* op : {"matmul", "embedding", "bce", "consumer_negate"})
    if (!find_op(op)) return fail(std::string("op '") + op + "' is not registered");
  if (op_examples("matmul").empty()) return fail("the built-in op examples are missing");

  Graph g;
  Var x = input(g, "x", Shape{kBatch, 3});
  Var y = input(g, "y", Shape{kBatch, 1});
  Var h = dense(x, 4, "hidden", Act::Relu);
  Var z = Var{&g, g.add_op("consumer_negate", {dense(h, 1, "out").id})};
  Var loss = bce(sigmoid(z), y, "loss");
  g.mark_loss(loss.id);

  Executor<double> ex(g);
  ex.init_params(7);
  ex.set_batch(5);
  const double xs[] = {0.3, -1.2, 0.8, 1.5, 0.1, -0.4, -0.7, 0.9, 2.0, 0.05, -1.1, 0.6, 0.4, 0.2, -0.3};
  const double ys[] = {1, 0, 1, 0, 1};
  std::copy(std::begin(xs), std::end(xs), ex.input("x").data());
  std::copy(std::begin(ys), std::end(ys), ex.input("y").data());
  GradCheckOptions opt;
  opt.atol = 1e-7;
  opt.rtol = 1e-5;
  const GradCheckResult r = gradcheck(ex, {{loss.id, 1.0}}, opt);
  if (r.rows.size() != 4) return fail("expected 4 checked parameters, got " + std::to_string(r.rows.size()));
  for (const auto& row : r.rows) {
    std::printf("%-12s checked %lld max_rel %.2e %s\n", row.param.c_str(), static_cast<long long>(row.checked),
                row.max_rel, row.pass ? "ok" : "FAIL");
    if (!row.pass || row.checked == 0) return fail("gradient check failed for " + row.param + ": " + row.worst);
  }
  std::printf("consumer: %zu ops registered, gradients agree\n", op_names().size());
  return 0;
}
