// Op::keeps_finite(): the ops that declare it give finite outputs for every finite input (extremes included), the
// ops that can overflow do not declare it, and the executor, which skips the NaN/Inf check of such an op fed only
// by ops, still names the node where a NaN or Inf first appears.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "ops/op.hpp"

using namespace funnel;

namespace {

// The ops that keep finite values finite, each applied to a B×4 value: the list the test checks by property.
const std::vector<std::pair<std::string, std::function<Var(Var)>>>& keeps_finite_cases() {
  static const std::vector<std::pair<std::string, std::function<Var(Var)>>> ops{
      {"relu", [](Var x) { return relu(x); }},
      {"reshape", [](Var x) { return reshape(x, {kBatch, 2, 2}); }},
      {"sigmoid", [](Var x) { return sigmoid(x); }},
      {"log_sigmoid", [](Var x) { return log_sigmoid(x); }},
      {"tanh", [](Var x) { return funnel::tanh(x); }},
      {"clip", [](Var x) { return clip(x, -3.0, 2.0); }},
      {"concat", [](Var x) { return concat({x, x}); }},
      {"stop_gradient", [](Var x) { return stop_gradient(x); }},
  };
  return ops;
}

}  // namespace

TEST_CASE("ops that declare keeps_finite give finite outputs for extreme finite inputs", "[ops][finite]") {
  const float big = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  const std::vector<float> extremes{big, -big, tiny, -tiny, 0.0f, -0.0f, 1e30f, -1e30f, 88.8f, -88.8f, 1.0f, -1.0f};
  std::vector<std::string> declared;
  for (const std::string& name : op_names())
    if (get_op(name).keeps_finite()) declared.push_back(name);
  std::vector<std::string> listed;
  for (const auto& [name, make] : keeps_finite_cases()) listed.push_back(name);
  std::sort(listed.begin(), listed.end());
  // A new op declaring keeps_finite() must join the property check below.
  CHECK(declared == listed);
  for (const auto& [name, make] : keeps_finite_cases()) {
    INFO(name);
    for (bool dbl : {false, true}) {
      Graph g;
      Var x = input(g, "x", {kBatch, 4});
      Var y = make(x);
      REQUIRE(g.node(y.id).op == name);
      auto run = [&](auto& ex) {
        ex.set_batch(3);
        auto& in = ex.input(x.id);
        using V = typename std::decay_t<decltype(in)>::value_type;
        for (std::size_t i = 0; i < in.size(); ++i) in.data()[i] = static_cast<V>(extremes[i]);
        ex.set_check_finite(false);
        ex.forward();
        const auto& out = ex.value(y.id);
        for (std::size_t i = 0; i < out.size(); ++i) CHECK(std::isfinite(out.data()[i]));
      };
      if (dbl) {
        Executor<double> ex(g);
        run(ex);
      } else {
        Executor<float> ex(g);
        run(ex);
      }
    }
  }
  // Ops that can overflow a finite input to Inf (or make NaN) keep their check.
  for (const char* name : {"matmul", "bias_add", "add", "mul", "scale", "shift", "sum", "mean", "embedding", "bce",
                           "bce_logits", "divide", "dot", "weighted_sum", "softmax"})
    if (find_op(name)) CHECK_FALSE(get_op(name).keeps_finite());
}

TEST_CASE("with the check skipped on keeps_finite ops, a NaN or Inf is still named where it first appears",
          "[ops][finite]") {
  Graph g;
  Var x = input(g, "x", {kBatch, 2});
  Var z = input(g, "z", {kBatch, 2});
  Var w = param(g, "w", {2, 2}, Init::zeros());
  Var direct = relu(z, "relu_of_input");              // fed by an input: checked
  Var mm = matmul(x, w, "mm");                           // can overflow: checked
  Var act = relu(mm, "act");                             // fed by an op: not checked
  Var flat = reshape(act, {kBatch, 2, 1}, "flat");       // not checked
  Var s = sigmoid(reshape(flat, {kBatch, 2}), "sig");    // not checked
  Var l = sum(add(s, direct, "both"), "loss");
  g.mark_loss(l.id);
  Executor<float> ex(g);
  ex.set_batch(2);
  auto node_of = [&]() -> std::string {
    try {
      ex.forward();
    } catch (const NonFiniteError& e) {
      return e.node;
    }
    return "<none>";
  };
  auto set = [](Tensor<float>& t, std::vector<float> v) { std::copy(v.begin(), v.end(), t.data()); };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  set(ex.param(w.id), {1, 1, 1, 1});
  set(ex.input(x.id), {1, 2, 3, 4});
  set(ex.input(z.id), {1, 2, 3, 4});
  CHECK(node_of() == "<none>");
  set(ex.input(z.id), {1, nan, 3, 4});
  CHECK(node_of() == "relu_of_input");  // relu's own input is data, so relu is checked (relu keeps NaN)
  set(ex.input(z.id), {1, 2, 3, 4});
  ex.param(w.id)(0, 1) = std::numeric_limits<float>::max();
  CHECK(node_of() == "mm");  // 2·max overflows to Inf in the gemm, before relu, reshape and sigmoid
  ex.param(w.id)(0, 1) = nan;
  CHECK(node_of() == "mm");
}
