// funnel gradcheck: compare analytical gradients (float64 backward) with central finite differences.
//   funnel gradcheck [--model NAME | --op NAME | --all] [--eps X] [--rtol X] [--atol X] [--seed N] [--max-coords N]
// --op checks the op's registered examples; --model builds a small registered model and checks every parameter through
// each loss alone and through the weighted sum of the losses; --all does every op and every model.
// Exit status: 0 when every row passes and repeated backward passes are bit-identical, 1 otherwise, 2 on usage errors.
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "autodiff/gradcheck.hpp"
#include "autodiff/gradflow.hpp"
#include "models/model.hpp"
#include "ops/op.hpp"
#include "tools/cli/command.hpp"
#include "tools/cli/common.hpp"

namespace {

using funnel::cli::UsageError;

struct Case {
  std::string name;   // "op matmul #1", "model esmm"
  std::string about;  // what the case covers
  funnel::GradCheckResult res;
};

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

std::vector<Case> check_op(const std::string& op, const funnel::GradCheckOptions& opt) {
  auto exs = funnel::op_examples(op);
  if (exs.empty()) {
    std::string names;
    for (const auto& e : funnel::all_op_examples())
      if (names.find(" " + e.op + ",") == std::string::npos) names += " " + e.op + ",";
    if (!names.empty()) names.pop_back();
    throw UsageError("--op: no gradient-check examples for op '" + op + "' (ops with examples:" + names + ")");
  }
  std::vector<Case> out;
  for (std::size_t i = 0; i < exs.size(); ++i)
    out.push_back({"op " + op + " #" + std::to_string(i + 1), exs[i].label, funnel::check_op_example(exs[i], opt)});
  return out;
}

std::vector<Case> check_model(const std::string& kind, const nlohmann::json& options,
                              const funnel::GradCheckOptions& opt) {
  funnel::ModelConfig cfg;
  cfg.kind = kind;
  cfg.options = options;
  cfg.num_fields = 3;
  cfg.vocab = 50;
  cfg.dim = 4;
  cfg.hidden = {6, 5};
  const std::int64_t batch = 8;
  funnel::Graph g;
  funnel::ModelHandle h = funnel::build_model(g, cfg);
  funnel::Executor<double> ex(g);
  ex.init_params(opt.seed);
  std::mt19937_64 rng(opt.seed + 17);
  funnel::feed_random_batch(ex, batch, rng);

  const std::string about = "3 fields, vocab 50, dim 4, hidden 6,5, batch 8";
  std::vector<Case> out;
  for (funnel::NodeId l : h.losses)
    out.push_back({"model " + kind, about, funnel::gradcheck(ex, {{l, 1.0}}, opt)});
  std::vector<funnel::LossWeight> all;
  for (std::size_t i = 0; i < h.losses.size(); ++i) all.push_back({h.losses[i], h.loss_weights[i]});
  out.push_back({"model " + kind, about, funnel::gradcheck(ex, all, opt)});
  return out;
}

int run_gradcheck(int argc, char** argv) {
  funnel::cli::Flags f(argc, argv, {"model", "op", "eps", "rtol", "atol", "seed", "max-coords", "model-options"},
                       {"all"});
  const int modes = int(f.has("model")) + int(f.has("op")) + int(f.has("all"));
  if (modes != 1) throw UsageError("give exactly one of --model NAME, --op NAME or --all");
  funnel::GradCheckOptions opt;
  opt.eps = f.number("eps", 1e-6);
  opt.atol = f.number("atol", 1e-5);
  opt.rtol = f.number("rtol", 1e-3);
  opt.seed = static_cast<std::uint64_t>(f.integer("seed", 0, 0));
  if (!(opt.eps > 0)) throw UsageError("--eps must be positive");
  if (!(opt.atol >= 0) || !(opt.rtol >= 0)) throw UsageError("--atol and --rtol must be non-negative");
  const bool has_mc = f.has("max-coords");
  const std::int64_t mc = f.integer("max-coords", 0, 0);
  funnel::GradCheckOptions op_opt = opt, model_opt = opt;
  op_opt.max_coords = has_mc ? mc : 0;
  model_opt.max_coords = has_mc ? mc : 20;

  auto check_kind = [](const std::string& k) {
    if (!funnel::find_model(k))
      throw UsageError("--model: unknown model '" + k + "' (known: " + funnel::model_kinds_text() + ")");
  };
  if (f.has("model-options") && !f.has("model")) throw UsageError("--model-options needs --model NAME");

  std::vector<Case> cases;
  auto append = [&](std::vector<Case> v) {
    for (auto& c : v) cases.push_back(std::move(c));
  };
  if (f.has("op")) append(check_op(f.str("op", ""), op_opt));
  if (f.has("model")) {
    check_kind(f.str("model", ""));
    append(check_model(f.str("model", ""), funnel::cli::model_options_flag(f), model_opt));
  }
  if (f.has("all")) {
    std::vector<std::string> ops;
    for (const auto& e : funnel::all_op_examples())
      if (ops.empty() || ops.back() != e.op) ops.push_back(e.op);
    for (const auto& op : ops) append(check_op(op, op_opt));
    for (const auto& k : funnel::model_kinds()) append(check_model(k, nlohmann::json::object(), model_opt));
  }

  // The table.
  const std::vector<std::string> head{"case", "parameter", "loss", "sparse", "checked", "skipped", "max abs err",
                                      "max rel err", "result"};
  std::vector<std::vector<std::string>> rows;
  std::int64_t failed = 0, skipped = 0, checked = 0, repeat_bad = 0;
  for (const auto& c : cases) {
    if (!c.res.repeat_identical) ++repeat_bad;
    for (const auto& r : c.res.rows) {
      rows.push_back({c.name, r.param, r.loss, r.sparse ? "yes" : "no", std::to_string(r.checked),
                      std::to_string(r.skipped), fmt(r.max_abs), fmt(r.max_rel), r.pass ? "PASS" : "FAIL"});
      failed += r.pass ? 0 : 1;
      skipped += r.skipped;
      checked += r.checked;
    }
    rows.push_back({c.name, "(repeat backward)", "-", "-", "-", "-", "-", "-",
                    c.res.repeat_identical ? "PASS (bit-identical)" : "FAIL (differs)"});
  }
  std::vector<std::size_t> w(head.size());
  for (std::size_t j = 0; j < head.size(); ++j) w[j] = head[j].size();
  for (const auto& r : rows)
    for (std::size_t j = 0; j < r.size(); ++j) w[j] = std::max(w[j], r[j].size());
  auto print_row = [&](const std::vector<std::string>& r) {
    std::string line;
    for (std::size_t j = 0; j < r.size(); ++j) {
      line += r[j];
      if (j + 1 < r.size()) line += std::string(w[j] - r[j].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  };
  std::printf("gradcheck: eps %g, atol %g, rtol %g, seed %llu, max coords per parameter: ops %lld, models %lld\n",
              opt.eps, opt.atol, opt.rtol, static_cast<unsigned long long>(opt.seed),
              static_cast<long long>(op_opt.max_coords), static_cast<long long>(model_opt.max_coords));
  std::string last;
  for (const auto& c : cases)
    if (c.name != last) {
      std::printf("  %-22s %s\n", c.name.c_str(), c.about.c_str());
      last = c.name;
    }
  std::printf("\n");
  print_row(head);
  for (const auto& r : rows) print_row(r);
  for (const auto& c : cases)
    for (const auto& r : c.res.rows)
      if (!r.pass) std::printf("FAIL %s %s (%s): worst %s\n", c.name.c_str(), r.param.c_str(), r.loss.c_str(),
                               r.worst.c_str());
  const std::size_t nrows = rows.size() - cases.size();
  std::printf("\n%zu gradient rows, %lld failed; %lld coordinates checked, %lld skipped at kinks; "
              "repeat backward bit-identical in %zu of %zu cases\n",
              nrows, static_cast<long long>(failed), static_cast<long long>(checked),
              static_cast<long long>(skipped), cases.size() - static_cast<std::size_t>(repeat_bad), cases.size());
  const bool ok = failed == 0 && repeat_bad == 0 && nrows > 0;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

}  // namespace

FUNNEL_COMMAND(gradcheck, "gradcheck", "check op and model gradients against finite differences", run_gradcheck);
