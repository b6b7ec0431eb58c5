// funnel compare: train several models on the same data and seed and print the paper's comparison table.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "tools/cli/common.hpp"
#include "tools/cli/session.hpp"

namespace funnel::cli {
namespace {

int run_compare(int argc, char** argv) {
  std::set<std::string> valued{"data", "eval-data", "models", "epochs", "batch-size", "lr", "optimizer",
                               "embedding-dim", "hidden", "seed", "threads", "max-steps", "eval-fraction",
                               "metrics-json", "l2", "pool"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  Flags f(argc, argv, valued, {"no-shuffle"});
  auto models = f.str_list("models", model_kinds());
  int width = 9;
  for (const auto& name : models) {
    if (!find_model(name))
      throw UsageError("--models: unknown model '" + name + "' (known: " + model_kinds_text() + ")");
    width = std::max(width, static_cast<int>(name.size()));
  }
  SessionOptions base = session_options(f);
  set_threads(base.threads);
  auto data = load_session_data(base, f);
  std::fprintf(stderr, "train: %s\neval:  %s\n", data->train.description.c_str(), data->eval_description.c_str());
  const bool truth = data->eval.has_truth();
  struct Row {
    std::string model;
    FunnelMetrics m;
    double sps;
  };
  std::vector<Row> rows;
  nlohmann::json all = nlohmann::json::object();
  for (const auto& name : models) {
    SessionOptions o = base;
    o.model.kind = name;
    Session s(o, data);
    std::fprintf(stderr, "training %s ...\n", name.c_str());
    TrainResult r = s.train({});
    if (r.epochs.empty() || !r.epochs.back().has_eval) throw Error("model " + name + " produced no evaluation");
    rows.push_back({name, r.epochs.back().eval, r.epochs.back().samples_per_sec});
    all[name] = metrics_json(r, s);
  }
  std::printf("\n%-*s %8s %9s %8s%s\n", width, "model", "CVR AUC", "CTCVR AUC", "CTR AUC",
              truth ? "  CVR AUC (entire space)" : "");
  for (auto& r : rows) {
    std::printf("%-*s %8.4f %9.4f %8.4f", width, r.model.c_str(), r.m.cvr_auc, r.m.ctcvr_auc, r.m.ctr_auc);
    if (truth) std::printf("  %10.4f", r.m.cvr_auc_entire_space);
    std::printf("\n");
  }
  std::printf("(CVR AUC on clicked impressions, CTCVR and CTR AUC on all impressions%s; same data and seed %llu)\n",
              truth ? ", entire-space CVR AUC on all impressions against their drawn conversion labels" : "",
              static_cast<unsigned long long>(base.train.seed));
  if (f.has("metrics-json")) write_file_atomic(f.str("metrics-json", ""), all.dump(2) + "\n");
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(compare, "compare", "train every model (or --models a,b) on the same data; print the paper's table",
               funnel::cli::run_compare);
