// Every registered model's gradients against finite differences in double precision, through each loss alone and
// through the weighted sum; and the gradient-flow claims of the ESMM paper (what each loss can train).
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "autodiff/gradcheck.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;

namespace {

struct Variant {
  std::string label;
  ModelConfig cfg;
};

using test::small;

std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (const auto& kind : model_kinds()) v.push_back({kind, small(kind)});
  ModelConfig three = small("esmm");
  three.num_stages = 3;
  v.push_back({"esmm, 3 stages", three});
  ModelConfig dense = small("esmm");
  dense.num_dense = 2;
  dense.pool = Pool::Mean;
  v.push_back({"esmm, 2 dense features, mean pooling", dense});
  ModelConfig weighted = small("base");
  weighted.loss_weights = {0.7, 1.9};
  v.push_back({"base, loss weights 0.7/1.9", weighted});
  return v;
}

// Batch of 6 (tests/models/model_test_util.hpp): random ids with a repeated id (cell 4 repeats cell 0, and cell 7
// repeats it in another row and field), cumulative 0/1 labels (row 0 reaches every stage, row 1 clicks only, rows 2-5
// random), dense features.
void feed(Executor<double>& ex, const ModelHandle& h, const ModelConfig& c, std::uint64_t seed) {
  test::feed(ex, h, c, 6, seed);
}

// Biases start at zero; nudge every parameter a little so no ReLU sits exactly on its kink and the check is
// not trivially at a symmetric point.
void perturb(Executor<double>& ex, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 0.1);
  for (NodeId p : ex.params())
    for (auto& v : ex.param(p)) v += nd(rng);
}

bool any_nonzero_grad(const Executor<double>& ex, NodeId p) {
  if (ex.is_sparse(p)) {
    for (double v : ex.sparse_grad(p).values)
      if (v != 0.0) return true;
    return false;
  }
  for (double v : ex.grad(p))
    if (v != 0.0) return true;
  return false;
}

bool all_zero_grad(const Executor<double>& ex, NodeId p) {
  if (ex.is_sparse(p)) return ex.sparse_grad(p).size() == 0;
  for (double v : ex.grad(p))
    if (v != 0.0) return false;
  return true;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_CASE("every registered model passes gradcheck for every parameter, per loss and for the weighted sum",
          "[models][gradcheck]") {
  GradCheckOptions opt;
  opt.eps = 1e-6;
  opt.rtol = 1e-5;
  opt.atol = 1e-8;
  for (const Variant& var : variants()) {
    Graph g;
    ModelHandle h = build_model(g, var.cfg);
    Executor<double> ex(g);
    ex.init_params(21);
    perturb(ex, 22);
    feed(ex, h, var.cfg, 23);

    std::vector<std::vector<LossWeight>> cases;
    for (NodeId l : h.losses) cases.push_back({{l, 1.0}});
    std::vector<LossWeight> sum;
    for (std::size_t i = 0; i < h.losses.size(); ++i) sum.push_back({h.losses[i], h.loss_weights[i]});
    cases.push_back(sum);

    for (const auto& losses : cases) {
      auto res = gradcheck(ex, losses, opt);
      INFO(var.label << ", loss " << (res.rows.empty() ? std::string("?") : res.rows[0].loss));
      CHECK(res.repeat_identical);
      REQUIRE_FALSE(res.rows.empty());
      std::int64_t checked = 0, skipped = 0;
      for (const auto& r : res.rows) {
        INFO("param " << r.param << " worst " << r.worst << " max_rel " << r.max_rel << " checked " << r.checked
                      << " skipped " << r.skipped);
        CHECK(r.pass);
        CHECK(r.checked > 0);
        checked += r.checked;
        skipped += r.skipped;
      }
      INFO("checked " << checked << " skipped " << skipped);
      CHECK(skipped * 20 <= checked);  // kinks are rare: at least ~95% of the coordinates were compared
      // The weighted sum reaches every parameter.
      if (losses.size() > 1) CHECK(res.rows.size() == g.params().size());
    }
  }
}

TEST_CASE("ESMM gradient flow: the CTR loss never reaches the CVR tower, the CTCVR loss reaches everything",
          "[models][gradcheck]") {
  for (std::int64_t stages : {2, 3}) {
    ModelConfig c = small("esmm");
    c.num_stages = stages;
    INFO("stages " << stages);
    Graph g;
    ModelHandle h = build_model(g, c);
    Executor<double> ex(g);
    ex.init_params(5);
    perturb(ex, 6);
    feed(ex, h, c, 7);
    ex.forward();
    const NodeId table = g.at("embedding/table");

    ex.backward(h.losses[0]);  // CTR loss alone
    for (NodeId p : g.params()) {
      const std::string& n = g.node(p).name;
      INFO(n);
      if (starts_with(n, "cvr_tower/") || starts_with(n, "stage2_tower/")) {
        CHECK_FALSE(ex.has_grad(p));
        CHECK(all_zero_grad(ex, p));  // exactly zero, not merely small
      } else {
        CHECK(ex.has_grad(p));
        if (starts_with(n, "ctr_tower/")) CHECK(any_nonzero_grad(ex, p));
      }
    }
    CHECK(any_nonzero_grad(ex, table));

    ex.backward(h.losses[1]);  // CTCVR loss alone: both towers and the shared embedding
    for (NodeId p : g.params()) {
      const std::string& n = g.node(p).name;
      INFO(n);
      if (starts_with(n, "stage2_tower/")) {
        CHECK_FALSE(ex.has_grad(p));
        continue;
      }
      CHECK(ex.has_grad(p));
      CHECK(any_nonzero_grad(ex, p));
    }
  }
}

TEST_CASE("ESMM-NS, BASE and DIVISION: each loss trains only its own half", "[models][gradcheck]") {
  struct Case {
    std::string kind;
    std::string first, second;  // parameter-name prefixes trained by loss 0 and loss 1
  };
  for (const Case& k : {Case{"base", "_ctr", "_cvr"}, Case{"division", "_ctr", "_ctcvr"}}) {
    INFO(k.kind);
    Graph g;
    ModelHandle h = build_model(g, small(k.kind));
    Executor<double> ex(g);
    ex.init_params(5);
    perturb(ex, 6);
    feed(ex, h, small(k.kind), 7);
    ex.forward();
    for (std::size_t l = 0; l < 2; ++l) {
      ex.backward(h.losses[l]);
      const std::string own = l == 0 ? k.first : k.second;
      for (NodeId p : g.params()) {
        const std::string& n = g.node(p).name;
        const bool mine = n.find(own + "/") != std::string::npos || starts_with(n, own.substr(1) + "_tower/");
        INFO("loss " << l << " param " << n);
        CHECK(ex.has_grad(p) == mine);
        if (!mine) CHECK(all_zero_grad(ex, p));
        else CHECK(any_nonzero_grad(ex, p));
      }
    }
  }
  // ESMM-NS: the CTR loss reaches only the CTR tower and its embedding; the CTCVR loss reaches everything.
  Graph g;
  ModelHandle h = build_model(g, small("esmm-ns"));
  Executor<double> ex(g);
  ex.init_params(5);
  perturb(ex, 6);
  feed(ex, h, small("esmm-ns"), 7);
  ex.forward();
  ex.backward(h.losses[0]);
  for (NodeId p : g.params()) {
    const std::string& n = g.node(p).name;
    INFO(n);
    const bool ctr_side = starts_with(n, "ctr_tower/") || starts_with(n, "embedding_ctr_tower/");
    CHECK(ex.has_grad(p) == ctr_side);
    if (!ctr_side) CHECK(all_zero_grad(ex, p));
  }
  ex.backward(h.losses[1]);
  for (NodeId p : g.params()) {
    INFO(g.node(p).name);
    CHECK(any_nonzero_grad(ex, p));
  }
}
