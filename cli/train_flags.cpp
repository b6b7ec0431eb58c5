#include "cli/train_flags.hpp"

#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "core/error.hpp"
#include "core/graph.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>

namespace funnel::cli {

RunOptions run_options(const Flags& f) {
  RunOptions r;
  TrainerOptions& o = r.trainer;
  o.model.kind = f.str("model", "esmm");
  if (!find_model(o.model.kind))
    throw UsageError("--model: expected one of " + model_kinds_text() + " (see funnel models), got '" +
                     o.model.kind + "'");
  o.model.options = model_options_flag(f);
  o.model_dims_given = f.has("embedding-dim") || f.has("hidden");
  o.model.dim = f.integer("embedding-dim", 18, 1);
  if (o.model.dim > 4096) throw UsageError("--embedding-dim: at most 4096, got " + std::to_string(o.model.dim));
  o.model.hidden = f.int_list("hidden", {200, 80});
  for (auto h : o.model.hidden)
    if (h > 65536) throw UsageError("--hidden: each layer at most 65536 units, got " + std::to_string(h));
  const std::string pool = f.str("pool", "sum");
  if (pool != "sum" && pool != "mean") throw UsageError("--pool: expected sum or mean, got '" + pool + "'");
  o.model.pool = pool == "sum" ? Pool::Sum : Pool::Mean;
  o.train.epochs = f.integer("epochs", 1, 1);
  o.train.batch_size = f.integer("batch-size", 1024, 1);
  o.train.max_steps = f.integer("max-steps", 0, 0);
  o.train.seed = static_cast<std::uint64_t>(f.integer("seed", 1, 0));
  o.train.shuffle = !f.has("no-shuffle");
  o.train.save_every = f.integer("save-every", 0, 0);
  o.optimizer = f.str("optimizer", "adam");
  const OptimizerDef* opt_def = find_optimizer(o.optimizer);
  if (!opt_def) {
    const auto defs = optimizer_defs();
    std::string known;
    for (std::size_t i = 0; i < defs.size(); ++i)
      known += (i == 0 ? "" : i + 1 == defs.size() ? " or " : ", ") + defs[i]->name;
    throw UsageError("--optimizer: expected " + known + ", got '" + o.optimizer + "'");
  }
  o.opt.lr = f.number("lr", opt_def->default_lr);
  if (!(o.opt.lr > 0) || !std::isfinite(o.opt.lr)) throw UsageError("--lr must be a positive number");
  {
    const std::string sched = f.str("lr-schedule", "constant");
    try {
      o.train.lr_schedule.kind = lr_schedule_kind(sched);
    } catch (const Error&) {
      throw UsageError("--lr-schedule: expected constant, cosine or linear, got '" + sched + "'");
    }
    o.train.lr_schedule.min_lr = f.number("lr-min", 0.0);
    if (!(o.train.lr_schedule.min_lr >= 0) || !std::isfinite(o.train.lr_schedule.min_lr))
      throw UsageError("--lr-min must be a non-negative number");
    if (o.train.lr_schedule.min_lr > o.opt.lr)
      throw UsageError("--lr-min: must not exceed --lr (" + f.str("lr", "") + "), got " + f.str("lr-min", ""));
    if (o.train.lr_schedule.min_lr > 0 && !o.train.lr_schedule.active())
      throw UsageError("--lr-min: applies with --lr-schedule cosine or linear");
  }
  o.opt.weight_decay = f.number("l2", 0.0);
  if (o.opt.weight_decay < 0) throw UsageError("--l2 must be non-negative");
  o.init_dir = f.str("init", "");
  o.reset_optimizer = f.has("reset-optimizer");
  if (o.reset_optimizer && o.init_dir.empty()) throw UsageError("--reset-optimizer needs --init DIR");
  const std::int64_t threads = f.integer("threads", 1, 1);
  if (threads > 256) throw UsageError("--threads: at most 256, got " + std::to_string(threads));
  o.threads = static_cast<int>(threads);
  o.precision = precision_flag(f);
  if (f.has("stages")) o.model.num_stages = f.integer("stages", 2, 2);
  r.data.train = f.str("data", "synthetic");
  r.data.eval = f.str("eval-data", "");
  if (f.has("eval-fraction") && f.has("eval-data"))
    throw UsageError("--eval-fraction: does not apply with --eval-data (the held-out set is given)");
  r.data.eval_fraction = f.number("eval-fraction", 0.2);
  if (!(r.data.eval_fraction > 0 && r.data.eval_fraction < 1)) throw UsageError("--eval-fraction must be in (0, 1)");
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

std::set<std::string> train_valued_flags() {
  std::set<std::string> valued{"data", "eval-data", "model", "epochs", "batch-size", "lr", "optimizer",
                               "embedding-dim", "hidden", "seed", "threads", "max-steps", "init", "save", "lr-schedule", "lr-min",
                               "save-every", "metrics-json", "l2", "stages", "eval-fraction", "pool", "model-options",
                               "check-replicas", "plot", "shuffle-window", "prefetch", "precision"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  return valued;
}

std::set<std::string> train_switches() { return {"no-shuffle", "quiet", "reset-optimizer", "shard-embeddings"}; }

RunOptions train_run_options(const Flags& f) {
  RunOptions ro = run_options(f);
  // A cache: training set is streamed from the file: the shuffle window (rows) and the batches read ahead.
  ro.trainer.train.shuffle_window = f.integer("shuffle-window", 1 << 18, 1);
  if (ro.trainer.train.shuffle_window > (std::int64_t{1} << 32))
    throw UsageError("--shuffle-window: at most 4294967296 rows (8 bytes each), got " + f.str("shuffle-window", ""));
  ro.trainer.train.prefetch = f.integer("prefetch", 4, 1);
  if (ro.trainer.train.prefetch > 1024) throw UsageError("--prefetch: at most 1024 batches, got " + f.str("prefetch", ""));
  return ro;
}

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
