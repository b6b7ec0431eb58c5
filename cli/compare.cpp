// funnel compare: train several models on the same data and print the paper's comparison table. With --seeds K
// every model is trained K times (seed, seed+1, ...: initialisation and shuffling; with --vary-data-seed the
// synthetic data's seed too) and every metric is reported as mean ± sample standard deviation, with each model's
// paired difference against ESMM (same seeds, same data) and its 95% t interval, and pCVR's calibration.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.hpp"
#include "core/files.hpp"
#include "data/synthetic.hpp"
#include "cli/common.hpp"
#include "cli/plots.hpp"
#include "cli/train_flags.hpp"

namespace funnel::cli {
namespace {

// Two-sided 97.5% quantile of Student's t with df degrees of freedom.
double t975(std::int64_t df) {
  static const double t[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                             2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                             2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  return df < 1 ? NAN : df <= 30 ? t[df - 1] : 1.96 + 2.4 / static_cast<double>(df);
}

struct Stat {
  double mean = NAN, sd = NAN;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  s.mean = m;
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - m) * (x - m);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  return s;
}

// The synthetic spec with its seed replaced by `seed`.
std::string with_data_seed(const std::string& spec, std::uint64_t seed) {
  std::string out = "synthetic:seed=" + std::to_string(seed);
  if (spec == "synthetic") return out;
  const std::string body = spec.substr(std::string("synthetic:").size());
  std::size_t pos = 0;
  while (pos <= body.size()) {
    const std::size_t comma = std::min(body.find(',', pos), body.size());
    const std::string item = body.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.rfind("seed=", 0) != 0 && !item.empty()) out += "," + item;
  }
  return out;
}

using Metric = NamedMetric;

// compare's defaults: the training structs' own, but half of the data held out unless told otherwise: at the
// default 200,000 synthetic rows that is 100,000 impressions with about 200 conversions, which resolves ESMM
// against BASE with 5 seeds (README).
RunOptions compare_defaults() {
  RunOptions d;
  d.data.eval_fraction = 0.5;
  return d;
}

int run_compare(int argc, char** argv) {
  const RunOptions defaults = compare_defaults();
  // The training flags but those of one model (--models names several), resuming, checkpoints and streaming.
  Flags f(argc, argv,
          training_flag_specs("compare", defaults,
                              {"model", "model-options", "stages", "init", "reset-optimizer", "save-every",
                               "shuffle-window", "prefetch"},
                              {"models", "seeds", "metrics-json", "plot"}, {"vary-data-seed"}));
  auto models = f.str_list("models", model_kinds());
  int width = 9;
  for (const auto& name : models) {
    if (!find_model(name))
      throw UsageError("--models: unknown model '" + name + "' (known: " + model_kinds_text() + ")");
    width = std::max(width, static_cast<int>(name.size()));
  }
  const std::int64_t K = f.integer("seeds", 1, 1);
  if (K > 1000) throw UsageError("--seeds: at most 1000, got " + std::to_string(K));
  const bool vary_data = f.has("vary-data-seed");
  RunOptions base = run_options(f, defaults);
  if (vary_data && !is_synthetic_spec(base.data.train))
    throw UsageError("--vary-data-seed: needs synthetic data (--data synthetic[:...]), got '" + base.data.train + "'");
  if (vary_data && f.has("eval-data")) throw UsageError("--vary-data-seed: cannot be combined with --eval-data");
  // Output targets are checked before any training.
  std::vector<std::string> inputs = dataset_spec_inputs(base.data.train);
  for (const auto& e : dataset_spec_inputs(base.data.eval)) inputs.push_back(e);
  if (!f.config_file().empty()) inputs.push_back(f.config_file());
  if (f.has("plot") && f.str("plot", "").empty()) throw UsageError("--plot: needs a file name (FILE.svg)");
  check_distinct_outputs(f, {"metrics-json", "plot"});
  if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs, "--metrics-json");
  if (f.has("plot")) check_output_target(f.str("plot", ""), inputs, "--plot");
  set_threads(base.trainer.threads);
  const std::uint64_t seed0 = base.trainer.train.seed;
  std::uint64_t data_seed0 = 1;
  if (is_synthetic_spec(base.data.train)) data_seed0 = parse_synthetic_spec(base.data.train).seed;

  // results[model][k]
  std::map<std::string, std::vector<FunnelMetrics>> results;
  nlohmann::json all = nlohmann::json::object();
  std::shared_ptr<const TrainData> data;
  FunnelMetrics counts;
  for (std::int64_t k = 0; k < K; ++k) {
    RunOptions ok = base;
    ok.trainer.train.seed = seed0 + static_cast<std::uint64_t>(k);
    if (vary_data) ok.data.train = with_data_seed(base.data.train, data_seed0 + static_cast<std::uint64_t>(k));
    if (!data || vary_data) {
      data = load_run_data(ok, f);
      std::fprintf(stderr, "train: %s\neval:  %s\n", data->train.description.c_str(), data->eval_description.c_str());
    }
    for (const auto& name : models) {
      TrainerOptions o = ok.trainer;
      o.model.kind = name;
      Trainer s(o, data);
      std::fprintf(stderr, "training %s (seed %llu, run %lld/%lld) ...\n", name.c_str(),
                   static_cast<unsigned long long>(o.train.seed), static_cast<long long>(k + 1),
                   static_cast<long long>(K));
      TrainResult r = s.train({});
      if (r.epochs.empty() || !r.epochs.back().has_eval) throw Error("model " + name + " produced no evaluation");
      results[name].push_back(r.epochs.back().eval);
      counts = r.epochs.back().eval;
      all[name]["runs"].push_back(s.metrics_json(r));
    }
  }
  const bool truth = counts.has_entire_space;
  // Every stage's metrics (the paper's names for the first two), as the models declare them.
  const std::vector<Metric> all_metrics = named_metrics(counts);
  auto cell = [&](const std::string& model, const Metric& m) {
    std::vector<double> v;
    for (const auto& fm : results[model]) v.push_back(m.value(fm));
    return stat(v);
  };
  auto print_table = [&](const std::vector<const Metric*>& cols, const char* title) {
    std::printf("\n%s\n%-*s", title, width, "model");
    for (auto* m : cols) std::printf("  %18s", m->title.c_str());
    std::printf("\n");
    for (const auto& name : models) {
      std::printf("%-*s", width, name.c_str());
      for (auto* m : cols) {
        const Stat s = cell(name, *m);
        if (K > 1) std::printf("  %9.4f ± %6.4f", s.mean, s.sd);
        else std::printf("  %18.4f", s.mean);
      }
      std::printf("\n");
    }
  };
  std::vector<const Metric*> auc, ll, cal;
  for (const auto& m : all_metrics)
    (m.kind == Metric::Kind::Auc ? auc : m.kind == Metric::Kind::LogLoss ? ll : cal).push_back(&m);
  std::printf("\nheld out: %lld impressions, %lld clicks, %lld conversions%s; %lld run(s) per model, seeds %llu..%llu%s\n",
              static_cast<long long>(counts.rows), static_cast<long long>(counts.clicks),
              static_cast<long long>(counts.conversions), vary_data ? " (last data seed)" : "",
              static_cast<long long>(K), static_cast<unsigned long long>(seed0),
              static_cast<unsigned long long>(seed0 + static_cast<std::uint64_t>(K) - 1),
              vary_data ? ", data seed varied with the seed" : ", same data");
  print_table(auc, K > 1 ? "AUC (mean ± std over runs)" : "AUC");
  print_table(ll, K > 1 ? "log loss (mean ± std over runs)" : "log loss");
  if (!cal.empty()) print_table(cal, "calibration of pCVR and later stages (ECE: 10 equal-count bins)");
  const bool has_esmm = results.count("esmm") > 0;
  if (K > 1 && has_esmm) {
    std::printf("\npaired difference against esmm (same seeds and data): mean [95%% t interval]\n%-*s", width, "model");
    for (auto* m : auc) std::printf("  %26s", m->title.c_str());
    std::printf("\n");
    for (const auto& name : models) {
      if (name == "esmm") continue;
      std::printf("%-*s", width, name.c_str());
      for (auto* m : auc) {
        std::vector<double> d;
        for (std::int64_t k = 0; k < K; ++k)
          d.push_back(m->value(results[name][static_cast<std::size_t>(k)]) -
                      m->value(results["esmm"][static_cast<std::size_t>(k)]));
        const Stat s = stat(d);
        const double h = t975(K - 1) * s.sd / std::sqrt(static_cast<double>(K));
        std::printf("  %+8.4f [%+7.4f, %+7.4f]", s.mean, s.mean - h, s.mean + h);
        all[name]["vs_esmm"][m->key] = {{"mean", s.mean}, {"lo95", s.mean - h}, {"hi95", s.mean + h}};
      }
      std::printf("\n");
    }
  }
  for (const auto& name : models)
    for (const auto& m : all_metrics) {
      const Stat s = cell(name, m);
      all[name]["summary"][m.key] = {{"mean", s.mean}, {"std", K > 1 ? s.sd : 0.0}};
    }
  std::printf("(CVR AUC, log loss and calibration on clicked impressions; CTCVR and CTR on all impressions%s)\n",
              truth ? "; 'entire' columns: pCVR over the entire space (all impressions) against their drawn conversion labels and true rate" : "");
  if (f.has("metrics-json")) write_output_file(f.str("metrics-json", ""), all.dump(2) + "\n", inputs, "--metrics-json");
  if (f.has("plot")) {
    std::vector<CompareRuns> runs;
    for (const auto& name : models) runs.push_back({name, results[name]});
    std::vector<AucMetric> aucs;
    for (auto* m : auc) aucs.push_back({m->title, m->value});
    char title[256];
    std::snprintf(title, sizeof title, "funnel compare: %lld run(s) per model; held out %lld impressions, %lld clicks, %lld conversions",
                  static_cast<long long>(K), static_cast<long long>(counts.rows), static_cast<long long>(counts.clicks),
                  static_cast<long long>(counts.conversions));
    write_output_file(f.str("plot", ""), plot::to_svg(compare_figure(title, runs, aucs)), inputs, "--plot");
    std::fprintf(stderr, "wrote %s\n", f.str("plot", "").c_str());
  }
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(compare, "compare",
               "train every model (or --models a,b) on the same data, --seeds K times; print mean ± std, paired "
               "differences against ESMM and pCVR calibration",
               funnel::cli::run_compare);
