#include "core/dsl.hpp"

#include "core/error.hpp"

namespace funnel {

namespace {
Graph& same_graph(Var a, Var b) {
  if (!a.g || a.g != b.g) throw GraphError("operands belong to different graphs");
  return *a.g;
}
Var op1(const std::string& op, Var x, const std::string& name, Attrs attrs = {}) {
  if (!x.g) throw GraphError("operand of " + op + " is not bound to a graph");
  return {x.g, x.g->add_op(op, {x.id}, std::move(attrs), name)};
}
Var op2(const std::string& op, Var a, Var b, const std::string& name, Attrs attrs = {}) {
  Graph& g = same_graph(a, b);
  return {&g, g.add_op(op, {a.id, b.id}, std::move(attrs), name)};
}
Var op3(const std::string& op, Var a, Var b, Var c, const std::string& name) {
  Graph& g = same_graph(a, b);
  same_graph(a, c);
  return {&g, g.add_op(op, {a.id, b.id, c.id}, {}, name)};
}
}  // namespace

Var input(Graph& g, const std::string& name, Shape shape) { return {&g, g.add_input(name, std::move(shape))}; }
Var ids(Graph& g, const std::string& name, std::int64_t num_fields) { return {&g, g.add_ids(name, num_fields)}; }
Var param(Graph& g, const std::string& name, Shape shape, Init init) {
  return {&g, g.add_param(name, std::move(shape), init)};
}

Var matmul(Var x, Var w, const std::string& name) { return op2("matmul", x, w, name); }
Var bias_add(Var x, Var b, const std::string& name) { return op2("bias_add", x, b, name); }
Var add(Var a, Var b, const std::string& name) { return op2("add", a, b, name); }
Var mul(Var a, Var b, const std::string& name) { return op2("mul", a, b, name); }
Var divide(Var a, Var b, double lo, double hi, const std::string& name) {
  Attrs at;
  at.num["lo"] = lo;
  at.num["hi"] = hi;
  return op2("divide", a, b, name, std::move(at));
}
Var relu(Var x, const std::string& name) { return op1("relu", x, name); }
Var sigmoid(Var x, const std::string& name) { return op1("sigmoid", x, name); }
Var concat(const std::vector<Var>& xs, std::int64_t axis, const std::string& name) {
  if (xs.empty() || !xs[0].g) throw GraphError("concat needs at least one operand");
  std::vector<NodeId> in;
  for (Var v : xs) {
    same_graph(xs[0], v);
    in.push_back(v.id);
  }
  Attrs at;
  at.num["axis"] = static_cast<double>(axis);
  return {xs[0].g, xs[0].g->add_op("concat", std::move(in), std::move(at), name)};
}
Var reshape(Var x, Shape shape, const std::string& name) {
  Attrs at;
  at.ints["shape"] = shape.dims;
  return op1("reshape", x, name, std::move(at));
}
Var flatten(Var x, const std::string& name) {
  const Shape& s = x.shape();
  if (s.rank() < 2 || s[0] != kBatch)
    throw ShapeError("flatten of '" + x.name() + "': expects B×..., got " + s.str());
  Dim prod = 1;
  for (std::size_t i = 1; i < s.rank(); ++i) prod *= s[i];
  std::string n = name;
  if (n.empty()) {  // "flatten", "flatten_1", ... unique in the current scope
    Graph& g = *x.g;
    const std::string prefix = g.current_scope().empty() ? "" : g.current_scope() + "/";
    n = "flatten";
    for (int k = 1; g.find(prefix + n); ++k) n = "flatten_" + std::to_string(k);
  }
  return reshape(x, Shape{kBatch, prod}, n);
}
Var sum(Var x, const std::string& name) { return op1("sum", x, name); }
Var mean(Var x, const std::string& name) { return op1("mean", x, name); }
Var scale(Var x, double w, const std::string& name) {
  Attrs at;
  at.num["w"] = w;
  return op1("scale", x, name, std::move(at));
}
Var bce(Var p, Var y, const std::string& name) { return op2("bce", p, y, name); }
Var bce(Var p, Var y, Var weight, const std::string& name) { return op3("bce", p, y, weight, name); }
Var bce_logits(Var z, Var y, const std::string& name) { return op2("bce_logits", z, y, name); }
Var log_sigmoid(Var z, const std::string& name) { return op1("log_sigmoid", z, name); }
Var bce_logprob(Var a, Var y, const std::string& name) { return op2("bce_logprob", a, y, name); }
Var bce_logprob(Var a, Var y, Var weight, const std::string& name) {
  return op3("bce_logprob", a, y, weight, name);
}
Var bce_logprob_rows(Var a, Var y, const std::string& name) { return op2("bce_logprob_rows", a, y, name); }
Var embedding(Var table, Var idv, Pool pool, const std::string& name) {
  Attrs at;
  at.str["pool"] = pool == Pool::Sum ? "sum" : "mean";
  return op2("embedding", table, idv, name, std::move(at));
}

Var softmax(Var x, const std::string& name) { return op1("softmax", x, name); }
Var tanh(Var x, const std::string& name) { return op1("tanh", x, name); }
Var stop_gradient(Var x, const std::string& name) { return op1("stop_gradient", x, name); }
Var clip(Var x, double lo, double hi, const std::string& name) {
  Attrs at;
  at.num["lo"] = lo;
  at.num["hi"] = hi;
  return op1("clip", x, name, std::move(at));
}
Var shift(Var x, double c, const std::string& name) {
  Attrs at;
  at.num["c"] = c;
  return op1("shift", x, name, std::move(at));
}
Var dot(Var a, Var b, const std::string& name) { return op2("dot", a, b, name); }
Var weighted_sum(Var w, Var x, const std::string& name) { return op2("weighted_sum", w, x, name); }
Var bce_rows(Var p, Var y, const std::string& name) { return op2("bce_rows", p, y, name); }

Var dense(Var x, std::int64_t units, const std::string& name, Act act) {
  Graph& g = *x.g;
  auto s = g.scope(name);
  const Shape& xs = x.shape();
  if (xs.rank() != 2 || xs[1] == kBatch)
    throw ShapeError("dense layer '" + g.current_scope() + "': expects a B×K input, got " + xs.str() + " from '" +
                     x.name() + "'");
  Var w = param(g, "w", Shape{xs[1], units}, Init::glorot_uniform());
  Var b = param(g, "b", Shape{units}, Init::zeros());
  Var y = bias_add(matmul(x, w, "matmul"), b, "bias_add");
  if (act == Act::Relu) y = relu(y, "relu");
  if (act == Act::Sigmoid) y = sigmoid(y, "sigmoid");
  if (act == Act::Tanh) y = tanh(y, "tanh");
  return y;
}

Var mlp(Var x, const std::vector<std::int64_t>& hidden, Act act) {
  for (std::size_t i = 0; i < hidden.size(); ++i) x = dense(x, hidden[i], "dense_" + std::to_string(i), act);
  return x;
}

}  // namespace funnel
