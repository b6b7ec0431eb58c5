#include "cli/train_flags.hpp"

#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "data/formats.hpp"
#include "core/error.hpp"
#include "core/graph.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace funnel::cli {

namespace {

bool positive(double x) { return x > 0; }
bool non_negative(double x) { return x >= 0; }
bool open_unit(double x) { return x > 0 && x < 1; }
constexpr std::int64_t kNoMax = std::numeric_limits<std::int64_t>::max();

// TrainOptions: how long and on what batches the loop trains (train/loop.hpp).
OptionTable<TrainOptions> train_options_table() {
  using T = TrainOptions;
  std::vector<std::pair<std::string, LrScheduleKind>> schedules;
  for (auto k : {LrScheduleKind::Constant, LrScheduleKind::Cosine, LrScheduleKind::Linear})
    schedules.emplace_back(lr_schedule_name(k), k);
  return {
      int_option<T>("epochs", [](auto& o) -> auto& { return o.epochs; }, 1, kNoMax, "passes over the training data"),
      int_option<T>("batch-size", [](auto& o) -> auto& { return o.batch_size; }, 1, kNoMax, "rows per step"),
      int_option<T>("max-steps", [](auto& o) -> auto& { return o.max_steps; }, 0, kNoMax,
                    "stop after this many steps of this run (0 = no limit; counts this run's steps after --init)"),
      int_option<T>("seed", [](auto& o) -> auto& { return o.seed; }, 0, kNoMax,
                    "seed of the initialisation and the shuffling"),
      switch_option<T>("no-shuffle", [](auto& o) -> auto& { return o.shuffle; }, false,
                       "keep the data order (no per-epoch shuffle)"),
      switch_option<T>("profile", [](auto& o) -> auto& { return o.profile; }, true,
                       "time every op of the steady steps: a table on stderr, and \"profile\" in --metrics-json"),
      int_option<T>("save-every", [](auto& o) -> auto& { return o.save_every; }, 0, kNoMax,
                    "also checkpoint every N steps (needs --save; 0 = only at the end)"),
      int_option<T>("shuffle-window", [](auto& o) -> auto& { return o.shuffle_window; }, 1, std::int64_t{1} << 32,
                    "cache: data: rows shuffled together inside the seeded random order of chunks (a bounded "
                    "shuffle, not a full one; 8 bytes a row)",
                    "1..2^32"),
      int_option<T>("prefetch", [](auto& o) -> auto& { return o.prefetch; }, 1, 1024,
                    "cache: data: batches read and decoded ahead of the step by the reader thread"),
      choice_option<T>("lr-schedule", [](auto& o) -> auto& { return o.lr_schedule.kind; }, schedules,
                       "learning rate over the run: constant, or decayed from --lr to --lr-min over the run's steps "
                       "along half a cosine or a line (recommended for long single-epoch runs: the saved model is "
                       "then calibrated, not one sample of Adam's wander)"),
      num_option<T>("lr-min", [](auto& o) -> auto& { return o.lr_schedule.min_lr; }, non_negative, "0 ≤ x ≤ --lr",
                    "with --lr-schedule cosine|linear: the learning rate reached at the last step"),
  };
}

// ModelConfig: the model and its sizes (models/model.hpp); fields, vocabulary and dense columns come from the data.
OptionTable<ModelConfig> make_model_config_table() {
  using M = ModelConfig;
  auto model = text_option<M>("model", [](auto& o) -> auto& { return o.kind; }, "NAME",
                              "model to train (see `funnel models`)", "a registered model", [](const std::string& v) {
                                return find_model(v) ? std::string()
                                                     : "expected one of " + model_kinds_text() +
                                                           " (see funnel models), got '" + printable(v) + "'";
                              });
  OptionRow<M> options{"model-options", "K=V,...",
                       "the model's own knobs, e.g. cvr_weight=0.5 for escm2-ips or experts=8 for esmm-mmoe (see "
                       "`funnel models`)",
                       "", nullptr, nullptr, nullptr};
  options.check = [](const std::string& v) -> std::string {
    try {
      (void)parse_model_options(v);
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  options.text = [](const M& m) { return m.options.empty() ? std::string() : m.options.dump(); };
  options.set = [](const std::string& v, M& m) { m.options = parse_model_options(v); };
  return {
      model,
      options,
      int_option<M>("embedding-dim", [](auto& o) -> auto& { return o.dim; }, 1, 4096,
                    "embedding width per field (the paper: 18)"),
      int_list_option<M>("hidden", [](auto& o) -> auto& { return o.hidden; }, 1, 65536,
                         "hidden layer widths of each tower, comma-separated (the paper: 200,80 after the 360-wide "
                         "input)",
                         "each 1..65536"),
      choice_option<M>("pool", [](auto& o) -> auto& { return o.pool; },
                       std::vector<std::pair<std::string, Pool>>{{"sum", Pool::Sum}, {"mean", Pool::Mean}},
                       "how a multi-valued field's embeddings are pooled"),
      int_option<M>("stages", [](auto& o) -> auto& { return o.num_stages; }, 2, kNoMax,
                    "funnel stages for models that take more than two (impression -> click -> conversion = 2)"),
  };
}

// TrainerOptions' own fields: optimizer, resuming, threads, precision (train/trainer.hpp).
OptionTable<TrainerOptions> trainer_options_table() {
  using O = TrainerOptions;
  std::string names, each, lr_defaults;
  std::vector<std::string> name_list;
  std::vector<std::pair<double, std::string>> by_lr;  // consecutive optimizers with one default share an entry
  for (const OptimizerDef* d : optimizer_defs()) {
    name_list.push_back(d->name);
    names += (names.empty() ? "" : ", ") + d->name;
    if (!d->help.empty()) each += (each.empty() ? ": " : "; ") + d->name + " = " + d->help;
    if (!by_lr.empty() && by_lr.back().first == d->default_lr) by_lr.back().second += ", " + d->name;
    else by_lr.emplace_back(d->default_lr, d->name);
  }
  for (const auto& [v, who] : by_lr)
    lr_defaults += (lr_defaults.empty() ? "" : ", ") + options_detail::format_number(v) + " (" + who + ")";
  auto optimizer = text_option<O>(
      "optimizer", [](auto& o) -> auto& { return o.optimizer; }, "TEXT",
      "optimizer (embedding rows are updated sparsely: only the rows a batch touched)" + each, names,
      [name_list](const std::string& v) {
        return find_optimizer(v) ? std::string() : "expected " + options_detail::one_of(name_list) + ", got '" +
                                                        printable(v) + "'";
      });
  // The default learning rate is the chosen optimizer's (OptimizerDef::default_lr): resolved by run_options.
  auto lr = num_option<O>("lr", [](auto& o) -> auto& { return o.opt.lr; }, positive, "> 0", "learning rate");
  lr.text = [lr_defaults](const O&) { return lr_defaults; };
  lr.recorded = false;
  std::vector<std::pair<std::string, GemmPrecision>> precisions;
  for (auto p : {GemmPrecision::fp32, GemmPrecision::bf16}) precisions.emplace_back(gemm_precision_name(p), p);
  return {
      optimizer,
      lr,
      num_option<O>("l2", [](auto& o) -> auto& { return o.opt.weight_decay; }, non_negative, "≥ 0",
                    "L2 weight decay"),
      text_option<O>("init", [](auto& o) -> auto& { return o.init_dir; }, "DIR",
                     "resume from this checkpoint: its parameters, optimizer state, step and feature map",
                     "a funnel checkpoint"),
      switch_option<O>("reset-optimizer", [](auto& o) -> auto& { return o.reset_optimizer; }, true,
                       "with --init: take the parameters only and start the optimizer afresh (e.g. another "
                       "optimizer)"),
      int_option<O>("threads", [](auto& o) -> auto& { return o.threads; }, 1, 256,
                    "worker threads (gemms and the batch are split over them)"),
      choice_option<O>("precision", [](auto& o) -> auto& { return o.precision; }, precisions,
                       "gemm inputs: fp32, or bf16 (rounded to bfloat16, fp32 sums; everything else stays fp32)"),
  };
}

// DataSources: the training and evaluation data (train/data_spec.hpp).
OptionTable<DataSources> data_sources_table() {
  using D = DataSources;
  return {
      text_option<D>("data", [](auto& o) -> auto& { return o.train; }, "SPEC",
                     "training data: synthetic[:key=value,...], " + data_format_usages()),
      text_option<D>("eval-data", [](auto& o) -> auto& { return o.eval; }, "SPEC",
                     "held-out data to evaluate after every epoch; without it a seeded --eval-fraction of --data is "
                     "held out"),
      num_option<D>("eval-fraction", [](auto& o) -> auto& { return o.eval_fraction; }, open_unit, "0 < x < 1",
                    "share of --data held out for evaluation when --eval-data is not given"),
  };
}

}  // namespace

const OptionTable<StrategyOptions>& strategy_option_table() {
  static const OptionTable<StrategyOptions> t{int_option<StrategyOptions>(
      "check-replicas", [](auto& o) -> auto& { return o.check_every; }, 0, kNoMax,
      "under mpirun: every K steps check that all ranks hold the same parameters (0 = never)")};
  return t;
}

const OptionTable<ModelConfig>& model_config_table() {
  static const OptionTable<ModelConfig> t = make_model_config_table();
  return t;
}

const OptionTable<RunOptions>& run_option_table() {
  static const OptionTable<RunOptions> t = [] {
    OptionTable<RunOptions> all;
    auto add = [&all](OptionTable<RunOptions> part) {
      for (auto& r : part) all.push_back(std::move(r));
    };
    add(lift_options<RunOptions>(data_sources_table(), [](auto& r) -> auto& { return r.data; }));
    add(lift_options<RunOptions>(model_config_table(), [](auto& r) -> auto& { return r.trainer.model; }));
    add(lift_options<RunOptions>(train_options_table(), [](auto& r) -> auto& { return r.trainer.train; }));
    add(lift_options<RunOptions>(trainer_options_table(), [](auto& r) -> auto& { return r.trainer; }));
    return all;
  }();
  return t;
}

std::vector<FlagSpec> training_flag_specs(const std::string& command, const RunOptions& defaults,
                                          const std::vector<std::string>& skip,
                                          const std::set<std::string>& valued, const std::set<std::string>& switches) {
  std::vector<FlagSpec> specs;
  append_specs(specs, run_option_table(), defaults, skip);
  append_specs(specs, read_option_table(), ReadOptions{});
  for (const auto& name : valued) specs.push_back(flag_spec(command, name, false));
  for (const auto& name : switches) specs.push_back(flag_spec(command, name, true));
  return specs;
}

RunOptions run_options(const Flags& f, RunOptions r) {
  apply_options(run_option_table(), f, r);
  TrainerOptions& o = r.trainer;
  o.model_dims_given = f.has("embedding-dim") || f.has("hidden");
  if (!f.has("lr")) o.opt.lr = find_optimizer(o.optimizer)->default_lr;  // the optimizer's own default
  if (o.train.lr_schedule.min_lr > o.opt.lr)
    throw UsageError("--lr-min: must not exceed --lr (" + f.str("lr", "") + "), got " + f.str("lr-min", ""));
  if (o.train.lr_schedule.min_lr > 0 && !o.train.lr_schedule.active())
    throw UsageError("--lr-min: applies with --lr-schedule cosine or linear");
  if (o.reset_optimizer && o.init_dir.empty()) throw UsageError("--reset-optimizer needs --init DIR");
  check_precision(o.precision);
  if (f.has("eval-fraction") && f.has("eval-data"))
    throw UsageError("--eval-fraction: does not apply with --eval-data (the held-out set is given)");
  r.data.stages = o.model.num_stages;
  (void)read_options(f);  // the reader flags (--on-bad-row, ...) are checked now, before any data is read
  // The model's own options (names, types, values) are checked now on a throwaway graph of the same model, not
  // after the data has loaded.
  if (!o.model.options.empty()) {
    ModelConfig probe = o.model;
    probe.num_fields = 2;
    probe.vocab = 2;
    try {
      Graph g;
      build_model(g, probe);
    } catch (const GraphError& e) {
      const std::string what = e.what();
      throw UsageError(what.find("option") != std::string::npos ? "--model-options: " + what : what);
    }
  }
  if (!o.init_dir.empty()) {
    const CheckpointInfo info = read_checkpoint_info(o.init_dir);
    check_checkpoint_for_model(o.init_dir, info);  // before any data is read
    r.data.init_map = info.data;
  }
  // The effective configuration (saved in the checkpoint and the metrics JSON): every flag's value or default,
  // with the defaults that depend on other flags resolved.
  o.config = f.effective();
  o.config["lr"] = o.opt.lr;
  return r;
}

namespace {
// `train`'s flags beyond the options tables: its outputs and --shard-embeddings (help: cli/flag_help.cpp).
const std::set<std::string> kTrainValued{"save", "metrics-json", "plot"};
const std::set<std::string> kTrainSwitches{"quiet", "shard-embeddings"};
}  // namespace

std::vector<FlagSpec> train_flag_specs() {
  std::vector<FlagSpec> specs = training_flag_specs("train", RunOptions{}, {}, kTrainValued, kTrainSwitches);
  append_specs(specs, strategy_option_table(), StrategyOptions{});
  return specs;
}

std::set<std::string> train_valued_flags() {
  std::set<std::string> s;
  for (const auto& spec : train_flag_specs())
    if (!spec.is_switch()) s.insert(spec.name);
  return s;
}

std::set<std::string> train_switches() {
  std::set<std::string> s;
  for (const auto& spec : train_flag_specs())
    if (spec.is_switch()) s.insert(spec.name);
  return s;
}

RunOptions train_run_options(const Flags& f) { return run_options(f); }

nlohmann::json train_metrics_json(const Trainer& t, const TrainResult& r, std::int64_t start_step) {
  nlohmann::json mj = t.metrics_json(r);
  mj["run_steps"] = r.steps - start_step;
  if (!t.options().init_dir.empty()) mj["resumed_from"] = {{"checkpoint", t.options().init_dir}, {"step", start_step}};
  return mj;
}

std::shared_ptr<TrainData> load_run_data(const RunOptions& o, const Flags& f) {
  auto d = load_train_data(o.data, read_options(f));
  for (const auto& n : d->notes) std::fprintf(stderr, "%s\n", n.c_str());
  check_model_fits(o.trainer, d->train.data.vocab);
  return d;
}

void check_model_fits(const TrainerOptions& o, std::int64_t vocab) {
  // The embedding table, its gradient rows and the optimizer's slots (Adam: 2, Adagrad: 1) in float32.
  const OptimizerDef* def = find_optimizer(o.optimizer);
  const double copies = 2.0 + (def ? static_cast<double>(def->make_float(o.opt)->slot_names().size()) : 0.0);
  const double bytes = static_cast<double>(vocab) * static_cast<double>(o.model.dim) * 4.0 * copies;
  const double ram = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (ram > 0 && bytes > ram) {
    char msg[320];
    std::snprintf(msg, sizeof msg,
                  "--embedding-dim / --buckets: %lld embedding rows × dim %lld with %s need %.1f GB, more than this "
                  "machine's %.1f GB of memory (use fewer --buckets, a --min-count vocabulary or a smaller dim)",
                  static_cast<long long>(vocab), static_cast<long long>(o.model.dim), o.optimizer.c_str(), bytes / 1e9,
                  ram / 1e9);
    throw UsageError(msg);
  }
}

std::string format_epochs(const TrainResult& r, const Trainer& /*t*/) { return metrics_table(r.epochs); }

}  // namespace funnel::cli
