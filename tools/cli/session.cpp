#include "tools/cli/session.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.hpp"
#include "train/checkpoint.hpp"

namespace funnel::cli {

SessionOptions session_options(const Flags& f) {
  SessionOptions o;
  o.model.kind = f.str("model", "esmm");
  if (!find_model(o.model.kind))
    throw UsageError("--model: expected one of " + model_kinds_text() + " (see funnel models), got '" +
                     o.model.kind + "'");
  o.model.options = model_options_flag(f);
  o.model_dims_given = f.has("embedding-dim") || f.has("hidden");
  o.model.dim = f.integer("embedding-dim", 18, 1);
  o.model.hidden = f.int_list("hidden", {200, 80});
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
  if (o.optimizer != "adam" && o.optimizer != "adagrad" && o.optimizer != "sgd")
    throw UsageError("--optimizer: expected adam, adagrad or sgd, got '" + o.optimizer + "'");
  o.opt.lr = f.number("lr", o.optimizer == "sgd" ? 0.05 : o.optimizer == "adagrad" ? 0.05 : 0.002);
  if (!(o.opt.lr > 0) || !std::isfinite(o.opt.lr)) throw UsageError("--lr must be a positive number");
  o.opt.weight_decay = f.number("l2", 0.0);
  if (o.opt.weight_decay < 0) throw UsageError("--l2 must be non-negative");
  o.data_spec = f.str("data", "synthetic");
  o.eval_spec = f.str("eval-data", "");
  o.eval_fraction = f.number("eval-fraction", 0.2);
  if (!(o.eval_fraction > 0 && o.eval_fraction < 1)) throw UsageError("--eval-fraction must be in (0, 1)");
  o.init_dir = f.str("init", "");
  o.threads = static_cast<int>(f.integer("threads", 1, 1));
  if (f.has("stages")) {
    o.model.num_stages = f.integer("stages", 2, 2);
  }
  return o;
}

std::shared_ptr<SessionData> load_session_data(const SessionOptions& o, const Flags& f) {
  auto d = std::make_shared<SessionData>();
  std::string spec = o.data_spec;
  if (o.model.num_stages > 2 && spec.rfind("synthetic", 0) == 0 && spec.find("stages=") == std::string::npos)
    spec += (spec == "synthetic" ? ":" : ",") + std::string("stages=") + std::to_string(o.model.num_stages);
  LoadedData all = load_data(spec, f);
  if (o.eval_spec.empty()) {
    d->train.map = std::move(all.map);
    d->train.json = all.json;
    split_tail(all.data, o.eval_fraction, d->train.data, d->eval);
    d->has_eval = true;
    d->train.description = all.description + " (training on the first " +
                           std::to_string(d->train.data.rows()) + ")";
    d->eval_description = "last " + std::to_string(d->eval.rows()) + " rows held out: " + describe(d->eval);
  } else {
    d->train = std::move(all);
    LoadedData ev = load_data(o.eval_spec, f, &d->train.json);
    d->eval = std::move(ev.data);
    d->has_eval = true;
    d->eval_description = ev.description;
  }
  return d;
}

Session::Session(const SessionOptions& o, const Flags& f) : o_(o) {
  set_threads(o_.threads);
  data_ = load_session_data(o_, f);
  init();
}

Session::Session(const SessionOptions& o, std::shared_ptr<SessionData> data) : o_(o), data_(std::move(data)) {
  set_threads(o_.threads);
  init();
}

void Session::init() {
  const Dataset& d = data_->train.data;
  o_.model.num_fields = d.num_fields;
  o_.model.vocab = std::max<std::int64_t>(d.vocab, 1);
  o_.model.num_dense = d.num_dense;
  o_.model.num_stages = d.num_stages;
  if (!o_.init_dir.empty()) {
    CheckpointInfo info = read_checkpoint_info(o_.init_dir);
    ModelConfig saved = model_config_from_json(info.model);
    if (saved.kind != o_.model.kind || saved.num_fields != o_.model.num_fields || saved.vocab != o_.model.vocab ||
        saved.num_dense != o_.model.num_dense || saved.num_stages != o_.model.num_stages ||
        (o_.model_dims_given && (saved.dim != o_.model.dim || saved.hidden != o_.model.hidden)))
      throw Error("--init " + o_.init_dir + ": the checkpoint's model (" + to_json(saved).dump() +
                  ") does not match this run's (" + to_json(o_.model).dump() + ")");
    o_.model = saved;
  }
  model_ = std::make_unique<Model>(o_.model);
  model_->exec().init_params(o_.train.seed);
  opt_ = make_optimizer<float>(o_.optimizer, o_.opt);
  if (!o_.init_dir.empty()) {
    CheckpointInfo info = load_checkpoint(o_.init_dir, model_->exec(), opt_.get());
    start_step_ = info.step;
  }
}

TrainResult Session::train(const TrainHooks& hooks) {
  const TrainHooks& h = hooks;
  return funnel::train(*model_, *opt_, data_->train.data, data_->has_eval ? &data_->eval : nullptr, o_.train, h,
                       start_step_);
}

void Session::save(const std::string& dir, std::int64_t step) {
  save_checkpoint(dir, model_->exec(), opt_.get(), to_json(o_.model), data_->train.json, step);
}

std::string Session::model_description() const {
  std::ostringstream s;
  s << o_.model.kind << ": " << o_.model.num_fields << " fields × vocab " << o_.model.vocab << " × dim "
    << o_.model.dim << ", towers";
  for (auto u : o_.model.hidden) s << " " << u;
  s << " 1, " << o_.optimizer << " lr " << o_.opt.lr << ", batch " << o_.train.batch_size << ", "
    << o_.train.epochs << " epoch(s), seed " << o_.train.seed << ", " << o_.threads << " thread(s)";
  return s.str();
}

std::string Session::loss_name(std::size_t k) const { return model_->handle().loss_names.at(k); }

namespace {
std::string fmt(double v) {
  if (std::isnan(v)) return "   n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}
}  // namespace

std::string format_epochs(const TrainResult& r, const Session& s) {
  std::ostringstream o;
  const bool truth = s.has_eval() && s.data().eval.has_truth();
  o << "\nepoch  ctr_auc  cvr_auc  ctcvr_auc" << (truth ? "  cvr_auc_entire" : "")
    << "  ctr_logloss  ctcvr_logloss  mean_pctr/ctr  mean_pctcvr/ctcvr  samples/s\n";
  for (auto& e : r.epochs) {
    o << "  " << e.epoch + 1 << "    ";
    if (!e.has_eval) {
      o << "(no evaluation)\n";
      continue;
    }
    const auto& m = e.eval;
    char line[512];
    std::snprintf(line, sizeof line, "%s   %s   %s   %s%s       %s         %s    %.4f/%.4f      %.5f/%.5f   %9.0f\n",
                  fmt(m.ctr_auc).c_str(), fmt(m.cvr_auc).c_str(), fmt(m.ctcvr_auc).c_str(),
                  truth ? fmt(m.cvr_auc_entire_space).c_str() : "", truth ? "       " : "", fmt(m.ctr_logloss).c_str(),
                  fmt(m.ctcvr_logloss).c_str(), m.mean_pctr, m.click_rate, m.mean_pctcvr, m.ctcvr_rate,
                  e.samples_per_sec);
    o << line;
  }
  return o.str();
}

nlohmann::json metrics_to_json(const FunnelMetrics& m) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json j{{"rows", m.rows},
                   {"clicks", m.clicks},
                   {"conversions", m.conversions},
                   {"ctr_auc", num(m.ctr_auc)},
                   {"cvr_auc", num(m.cvr_auc)},
                   {"ctcvr_auc", num(m.ctcvr_auc)},
                   {"ctr_logloss", num(m.ctr_logloss)},
                   {"cvr_logloss", num(m.cvr_logloss)},
                   {"ctcvr_logloss", num(m.ctcvr_logloss)},
                   {"mean_pctr", num(m.mean_pctr)},
                   {"click_rate", num(m.click_rate)},
                   {"mean_pcvr_clicked", num(m.mean_pcvr_clicked)},
                   {"cvr_rate", num(m.cvr_rate)},
                   {"mean_pctcvr", num(m.mean_pctcvr)},
                   {"ctcvr_rate", num(m.ctcvr_rate)}};
  if (m.has_entire_space) {
    j["cvr_auc_entire_space"] = num(m.cvr_auc_entire_space);
    j["cvr_logloss_entire_space"] = num(m.cvr_logloss_entire_space);
  }
  return j;
}

nlohmann::json metrics_json(const TrainResult& r, const Session& s) {
  nlohmann::json epochs = nlohmann::json::array();
  double total_rows = 0, total_sec = 0;
  for (auto& e : r.epochs) {
    nlohmann::json j = e.has_eval ? metrics_to_json(e.eval) : nlohmann::json::object();
    j["epoch"] = e.epoch + 1;
    j["steps"] = e.steps;
    j["samples_per_sec"] = e.samples_per_sec;
    for (std::size_t k = 0; k < e.mean_losses.size(); ++k) j["loss_" + s.loss_name(k)] = e.mean_losses[k];
    epochs.push_back(j);
    if (e.samples_per_sec > 0) {
      const double rows = static_cast<double>(e.steps) * static_cast<double>(s.options().train.batch_size);
      total_rows += rows;
      total_sec += rows / e.samples_per_sec;
    }
  }
  return nlohmann::json{{"model", to_json(s.options().model)},
                        {"optimizer", s.options().optimizer},
                        {"lr", s.options().opt.lr},
                        {"batch_size", s.options().train.batch_size},
                        {"seed", s.options().train.seed},
                        {"threads", s.options().threads},
                        {"steps", r.steps},
                        {"stopped", r.stopped},
                        {"samples_per_sec", total_sec > 0 ? total_rows / total_sec : 0.0},
                        {"epochs", epochs}};
}

}  // namespace funnel::cli
