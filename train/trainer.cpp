#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/simd.hpp"
#include "data/stream.hpp"

namespace funnel {

Trainer::Trainer(const TrainerOptions& o, std::shared_ptr<const TrainData> data,
                 std::shared_ptr<ParallelStrategy> strategy)
    : o_(o), data_(std::move(data)), strategy_(std::move(strategy)) {
  if (!data_) throw Error("Trainer: no data");
  if (!strategy_) strategy_ = std::make_shared<LocalStrategy>();
  if (o_.threads < 1) throw Error("Trainer: threads must be at least 1");
  set_num_threads(o_.threads);
  set_gemm_precision(o_.precision);
  const Dataset& d = data_->train.data;
  o_.model.num_fields = d.num_fields;
  o_.model.vocab = std::max<std::int64_t>(d.vocab, 1);
  o_.model.num_dense = d.num_dense;
  o_.model.num_stages = d.num_stages;
  if (!o_.init_dir.empty()) {
    CheckpointInfo info = read_checkpoint_info(o_.init_dir);
    check_checkpoint_for_model(o_.init_dir, info);
    ModelConfig saved = model_config_from_json(info.model);
    if (saved.kind != o_.model.kind || saved.num_fields != o_.model.num_fields || saved.vocab != o_.model.vocab ||
        saved.num_dense != o_.model.num_dense || saved.num_stages != o_.model.num_stages ||
        (o_.model_dims_given && (saved.dim != o_.model.dim || saved.hidden != o_.model.hidden)) ||
        (!o_.model.options.empty() && saved.options != o_.model.options))
      throw Error("--init " + o_.init_dir + ": the checkpoint's model (" + to_json(saved).dump() +
                  ") does not match this run's (" + to_json(o_.model).dump() + ")");
    o_.model = saved;
  }
  model_ = std::make_unique<Model>(o_.model, strategy_->store_options());
  // (A checkpoint to start from gives every value: drawing them first would only cost time, e.g. a row-sharded
  // table's pass over its whole initializer sequence.)
  if (o_.init_dir.empty()) model_->params().init(o_.train.seed);
  opt_ = make_optimizer<float>(o_.optimizer, o_.opt);
  if (!o_.init_dir.empty()) {
    CheckpointInfo info = load_checkpoint(o_.init_dir, model_->params(), o_.reset_optimizer ? nullptr : opt_.get());
    start_step_ = info.step;
    start_epoch_ = info.epoch;
  }
  strategy_->attach(*this);
}

TrainOptions Trainer::loop_options() const {
  TrainOptions t = o_.train;
  if (t.max_steps > 0) t.max_steps += start_step_;  // max_steps counts this run's steps, also after a resume
  if (t.lr_schedule.active() && t.lr_schedule.steps <= 0) {
    // The horizon from the whole training set (every process counts the same, whatever its share).
    const std::int64_t rows = data_->streamed() ? rows_in_chunks(*data_->train_cache, 0, data_->train_chunk_end)
                                                : data_->train.data.rows();
    const std::int64_t batch = std::max<std::int64_t>(t.batch_size, 1);
    t.lr_schedule.steps = (rows + batch - 1) / batch * t.epochs;
    if (o_.train.max_steps > 0) t.lr_schedule.steps = std::min(t.lr_schedule.steps, o_.train.max_steps);
  }
  return t;
}

std::unique_ptr<BatchSource> Trainer::train_source(int shard, int shards) const {
  const TrainOptions& t = o_.train;
  if (!data_->streamed())
    return std::make_unique<DatasetSource>(data_->train.data, t.batch_size, t.shuffle, t.seed, shard, shards);
  StreamOptions so;
  so.batch_size = t.batch_size;
  so.shuffle = t.shuffle;
  so.shuffle_window = t.shuffle_window;
  so.seed = t.seed;
  so.prefetch = t.prefetch;
  const CachePart part{data_->train_cache.get(), 0, data_->train_chunk_end, shards, shard};
  if (shards > 1) so.batch_size = std::max<std::int64_t>(1, t.batch_size / shards);  // a global batch of ~batch_size
  return std::make_unique<CacheSource>(part, so);
}

std::unique_ptr<BatchSource> Trainer::eval_source(int shard, int shards) const {
  if (!data_->has_eval) return nullptr;
  const std::int64_t batch = o_.train.eval_batch_size;
  if (!data_->eval_streamed()) return std::make_unique<DatasetSource>(data_->eval, batch, false, 1, shard, shards);
  StreamOptions so;
  so.batch_size = batch;
  so.shuffle = false;
  so.prefetch = o_.train.prefetch;
  return std::make_unique<CacheSource>(CachePart{data_->eval_cache.get(), data_->eval_chunk_begin, -1, shards, shard},
                                       so);
}

TrainResult Trainer::train(const TrainHooks& hooks) {
  ParallelStrategy& st = *strategy_;
  auto src = st.train_source(*this);
  auto ev = st.eval_source(*this);
  EvalFn eval;
  if (ev) {
    ev->check(model_->config(), "evaluation data");
    const EvalHooks eh{hooks.stop, hooks.on_eval_batch};
    eval = [&ev, &st, eh](Model& m) { return st.evaluate(m, *ev, eh); };
  }
  st.before_training();
  TrainResult r = funnel::train(*model_, *opt_, *src, eval, loop_options(), hooks, start_step_, &st);
  st.after_training();
  start_step_ = r.steps;
  return r;
}

void Trainer::save(const std::string& dir, std::int64_t step, std::int64_t epoch) {
  strategy_->save(*this, dir, step, epoch);
}

void Trainer::write_checkpoint(const std::string& dir, std::int64_t step, std::int64_t epoch) {
  save_checkpoint(dir, model_->params(), opt_.get(), to_json(o_.model), data_->train.json, step,
                  epoch < 0 ? start_epoch_ : epoch,
                  o_.config.is_object() ? o_.config : nlohmann::json());
}

std::string Trainer::model_description() const {
  std::ostringstream s;
  s << o_.model.kind << ": " << o_.model.num_fields << " fields × vocab " << o_.model.vocab << " × dim "
    << o_.model.dim << ", towers";
  for (auto u : o_.model.hidden) s << " " << u;
  s << " 1";
  if (!o_.model.options.empty()) s << ", options " << o_.model.options.dump();
  s << ", " << o_.optimizer << " lr " << o_.opt.lr;
  if (o_.train.lr_schedule.active())
    s << " (" << lr_schedule_name(o_.train.lr_schedule.kind) << " to " << o_.train.lr_schedule.min_lr << ")";
  s << ", batch " << o_.train.batch_size << ", "
    << o_.train.epochs << " epoch(s), seed " << o_.train.seed << ", " << o_.threads << " thread(s)";
  return s.str();
}

const std::string& Trainer::loss_name(std::size_t k) const { return model_->handle().loss_names.at(k); }

namespace {
// Milliseconds per steady step of `seconds` summed over the steady steps (0 without any).
double per_step_ms(const TrainResult& r, double seconds) {
  return r.steady_steps > 0 ? 1e3 * seconds / static_cast<double>(r.steady_steps) : 0.0;
}
}  // namespace

nlohmann::json Trainer::metrics_json(const TrainResult& r) const {
  nlohmann::json epochs = nlohmann::json::array();
  double total_rows = 0, total_sec = 0;
  for (auto& e : r.epochs) {
    nlohmann::json j = e.has_eval ? metrics_to_json(e.eval) : nlohmann::json::object();
    j["epoch"] = e.epoch + 1;
    j["steps"] = e.steps;
    j["samples_per_sec"] = e.samples_per_sec;
    for (std::size_t k = 0; k < e.mean_losses.size(); ++k) j["loss_" + loss_name(k)] = e.mean_losses[k];
    epochs.push_back(j);
    if (e.samples_per_sec > 0) {
      const double rows = static_cast<double>(e.steps) * static_cast<double>(o_.train.batch_size);
      total_rows += rows;
      total_sec += rows / e.samples_per_sec;
    }
  }
  nlohmann::json j{{"model", to_json(o_.model)},
                        {"optimizer", o_.optimizer},
                        {"lr", o_.opt.lr},
                        {"batch_size", o_.train.batch_size},
                        {"seed", o_.train.seed},
                        {"threads", o_.threads},
                        {"steps", r.steps},
                        {"stopped", r.stopped},
                        {"samples_per_sec", total_sec > 0 ? total_rows / total_sec : 0.0},
                        {"steady_samples_per_sec", r.steady_samples_per_sec()},
                        {"warmup_steps", TrainResult::kWarmupSteps},
                        {"steady_step_ms",  // per steady step: where the time went (TrainResult)
                         {{"batch", per_step_ms(r, r.steady_batch_seconds)},
                          {"gradients", per_step_ms(r, r.steady_gradient_seconds)},
                          {"update", per_step_ms(r, r.steady_update_seconds)}}},
                        {"gemm",
                         {{"precision", gemm_precision_name(gemm_precision())},
                          {"implementation", gemm_implementation()},
                          {"cpu_flags", cpu_gemm_flags()}}},
                        {"simd",  // funnel's own kernels (embedding, optimizer updates): core/simd.hpp
                         {{"isa", simd_isa_name(simd_isa())}, {"description", simd_isa_description()}}},
                        {"epochs", epochs}};
  if (!r.profile.empty()) {
    nlohmann::json ops = nlohmann::json::array();
    for (const OpTime& t : r.profile)
      ops.push_back({{"node", t.node},
                     {"op", t.op},
                     {"forward_ms", t.forward_ms},
                     {"backward_ms", t.backward_ms},
                     {"serial_ms", t.serial_ms},
                     {"wait_ms", t.wait_ms}});
    j["profile"] = ops;  // per steady step, the most expensive first
    // Per steady step: inside loops run on several threads, and each thread's time running their chunks.
    j["profile_threads"] = {{"loop_ms", r.profile_loop_ms},
                                {"wait_ms", r.profile_wait_ms},
                                {"busy_ms", r.profile_thread_busy_ms}};
  }
  if (o_.config.is_object()) j["config"] = o_.config;
  return j;
}

LoadedModel load_model(const std::string& dir) {
  LoadedModel l;
  l.info = read_checkpoint_info(dir);
  check_checkpoint_for_model(dir, l.info);
  l.model = std::make_unique<Model>(model_config_from_json(l.info.model));
  load_checkpoint(dir, l.model->params(), nullptr);
  return l;
}

}  // namespace funnel
