#include "autodiff/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

#include "autodiff/surrogate.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"

namespace funnel {

bool GradCheckResult::pass() const {
  if (!repeat_identical) return false;
  for (auto& r : rows)
    if (!r.pass) return false;
  return true;
}

namespace {

double total_loss(Executor<double>& ex, const std::vector<LossWeight>& losses, const std::vector<NodeId>& targets) {
  ex.forward(targets);
  double s = 0.0;
  for (auto& lw : losses) s += lw.weight * ex.scalar(lw.loss);
  return s;
}

std::string coord_str(const Shape& s, std::size_t flat) {
  std::vector<std::size_t> idx(s.rank());
  for (std::size_t d = s.rank(); d-- > 0;) {
    auto ext = static_cast<std::size_t>(s[d]);
    idx[d] = flat % ext;
    flat /= ext;
  }
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < idx.size(); ++i) o << (i ? "," : "") << idx[i];
  o << "]";
  return o.str();
}

// Snapshot of all gradients of the last backward, to compare two passes bit for bit.
std::vector<double> snapshot(Executor<double>& ex, const std::vector<NodeId>& params) {
  std::vector<double> out;
  for (NodeId p : params) {
    if (!ex.has_grad(p)) continue;
    if (ex.is_sparse(p)) {
      const auto& sg = ex.sparse_grad(p);
      for (auto r : sg.rows) out.push_back(static_cast<double>(r));
      out.insert(out.end(), sg.values.begin(), sg.values.end());
    } else {
      const auto& g = ex.grad(p);
      out.insert(out.end(), g.begin(), g.end());
    }
  }
  return out;
}

}  // namespace

GradCheckResult gradcheck(Executor<double>& ex, const std::vector<LossWeight>& losses, const GradCheckOptions& opt) {
  const Graph& g = ex.graph();
  std::vector<NodeId> targets;
  std::string loss_desc;
  for (auto& lw : losses) {
    targets.push_back(lw.loss);
    if (!loss_desc.empty()) loss_desc += " + ";
    if (lw.weight != 1.0) {
      std::ostringstream o;
      o << lw.weight << "·";
      loss_desc += o.str();
    }
    loss_desc += g.node(lw.loss).name;
  }
  GradCheckResult res;
  ex.forward(targets);
  ex.backward(losses);
  auto first = snapshot(ex, ex.params());
  ex.forward(targets);
  ex.backward(losses);
  auto second = snapshot(ex, ex.params());
  res.repeat_identical = first.size() == second.size() &&
                         std::memcmp(first.data(), second.data(), first.size() * sizeof(double)) == 0;

  // With gradient stops (stop_gradient), finite differences run on the surrogate that holds their outputs fixed at
  // this point, which is the function the backward pass differentiates (autodiff/surrogate.hpp).
  std::unique_ptr<Surrogate> sur;
  if (!gradient_stops(g).empty()) {
    ex.forward(targets);
    sur = std::make_unique<Surrogate>(ex);
    sur->sync(ex);
  }
  std::mt19937_64 rng(opt.seed);
  for (NodeId p : ex.params()) {
    if (!ex.has_grad(p)) continue;
    const Node& nd = g.node(p);
    GradCheckRow row;
    row.param = nd.name;
    row.loss = loss_desc;
    row.sparse = ex.is_sparse(p);
    Tensor<double>& val = ex.param(p);
    const std::size_t n = val.size();
    // Analytical gradient, densified.
    std::vector<double> ana(n, 0.0);
    if (row.sparse) {
      const auto& sg = ex.sparse_grad(p);
      const std::size_t d = static_cast<std::size_t>(sg.dim);
      for (std::size_t k = 0; k < sg.rows.size(); ++k)
        for (std::size_t j = 0; j < d; ++j) ana[static_cast<std::size_t>(sg.rows[k]) * d + j] += sg.row_at(k)[j];
    } else {
      const auto& gr = ex.grad(p);
      std::copy(gr.begin(), gr.end(), ana.begin());
    }
    std::vector<std::size_t> coords(n);
    std::iota(coords.begin(), coords.end(), std::size_t{0});
    if (opt.max_coords > 0 && n > static_cast<std::size_t>(opt.max_coords)) {
      std::shuffle(coords.begin(), coords.end(), rng);
      coords.resize(static_cast<std::size_t>(opt.max_coords));
      std::sort(coords.begin(), coords.end());
    }
    double worst_score = -1.0;
    for (std::size_t k : coords) {
      double* x = val.data() + k;
      const double x0 = *x;
      double* xs = sur ? sur->executor().param(p).data() + k : nullptr;
      auto loss_at = [&](double v) {
        *x = v;
        if (xs) *xs = v;
        return total_loss(sur ? sur->executor() : ex, losses, targets);
      };
      const double f0 = loss_at(x0);
      const double fp = loss_at(x0 + opt.eps);
      const double fm = loss_at(x0 - opt.eps);
      *x = x0;
      if (xs) *xs = x0;
      const double num = (fp - fm) / (2.0 * opt.eps);
      const double dplus = (fp - f0) / opt.eps, dminus = (f0 - fm) / opt.eps;
      // A kink: the one-sided slopes disagree by far more than smooth curvature allows.
      const double jump = std::abs(dplus - dminus);
      if (jump > 1e3 * opt.eps * (1.0 + std::abs(num)) && jump > opt.atol) {
        ++row.skipped;
        continue;
      }
      ++row.checked;
      const double a = ana[k];
      const double abs_err = std::abs(a - num);
      const double rel_err = abs_err / std::max(std::abs(num), 1e-12);
      row.max_abs = std::max(row.max_abs, abs_err);
      if (std::abs(num) > opt.atol || std::abs(a) > opt.atol) row.max_rel = std::max(row.max_rel, rel_err);
      const bool ok = abs_err <= opt.atol + opt.rtol * std::abs(num);
      if (!ok) row.pass = false;
      const double score = abs_err - (opt.atol + opt.rtol * std::abs(num));
      if (score > worst_score) {
        worst_score = score;
        std::ostringstream o;
        o.precision(6);
        o << coord_str(nd.shape, k) << ": analytic " << a << " numeric " << num;
        row.worst = o.str();
      }
    }
    res.rows.push_back(std::move(row));
  }
  // Leave the executor in the state of a plain forward/backward at the original values.
  ex.forward(targets);
  ex.backward(losses);
  return res;
}

namespace {
std::vector<OpExample>& examples() {
  static std::vector<OpExample> v;
  return v;
}
}  // namespace

void register_op_example(OpExample ex) { examples().push_back(std::move(ex)); }

std::vector<OpExample> op_examples(const std::string& op) {
  std::vector<OpExample> out;
  for (auto& e : examples())
    if (e.op == op) out.push_back(e);
  return out;
}

std::vector<OpExample> all_op_examples() {
  auto v = examples();
  std::stable_sort(v.begin(), v.end(), [](const OpExample& a, const OpExample& b) { return a.op < b.op; });
  return v;
}

NodeId probe_loss(Graph& g, NodeId out) {
  const Node& o = g.node(out);
  std::string base = o.name;
  std::replace(base.begin(), base.end(), '/', '_');
  NodeId r = g.add_input(base + "_probe", o.shape);
  NodeId m = g.add_op("mul", {out, r}, {}, base + "_probed");
  NodeId s = g.add_op("sum", {m}, {}, base + "_probe_loss");
  g.mark_loss(s);
  return s;
}

GradCheckResult check_op_example(const OpExample& ex, const GradCheckOptions& opt) {
  Graph g;
  NodeId loss = ex.build(g);
  Executor<double> e(g);
  e.init_params(opt.seed);
  e.set_batch(ex.batch);
  std::mt19937_64 rng(opt.seed + 1);
  std::normal_distribution<double> nd(0.0, 1.0);
  // Keep parameters a little away from zero so ReLU kinks are rare; the kink detector handles the rest.
  for (NodeId p : e.params()) {
    auto& v = e.param(p);
    if (g.node(p).init.kind == Init::Kind::Zeros)
      for (auto& x : v) x = 0.5 * nd(rng);
  }
  for (const Node& n : g.nodes())
    if (n.kind == NodeKind::Input)
      for (auto& x : e.input(n.id)) x = nd(rng);
  if (ex.feed) ex.feed(e, rng);
  return gradcheck(e, {{loss, 1.0}}, opt);
}

}  // namespace funnel
