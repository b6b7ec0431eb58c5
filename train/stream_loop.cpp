#include "train/stream_loop.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace funnel {
namespace {

void check_cache(const ModelConfig& cfg, const CacheFile& f, const std::string& what) {
  auto bad = [&](const std::string& why) { throw Error(what + " does not fit the model: " + why); };
  if (f.num_fields() != cfg.num_fields)
    bad("it has " + std::to_string(f.num_fields()) + " fields, the model " + std::to_string(cfg.num_fields));
  if (f.vocab() > cfg.vocab)
    bad("its ids need " + std::to_string(f.vocab()) + " embedding rows, the model has " + std::to_string(cfg.vocab));
  if (f.num_dense() != cfg.num_dense)
    bad("it has " + std::to_string(f.num_dense()) + " dense columns, the model " + std::to_string(cfg.num_dense));
  if (f.num_stages() != cfg.num_stages)
    bad("it has " + std::to_string(f.num_stages()) + " funnel stages, the model " + std::to_string(cfg.num_stages));
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

void bind_stream_batch(Model& m, StreamBatch& b) {
  const auto& h = m.handle();
  auto& ex = m.exec();
  const std::int64_t B = b.size;
  ex.set_batch(B);
  std::swap(ex.ids(h.ids), b.ids);
  const auto S = static_cast<std::int64_t>(b.labels.size()) / std::max<std::int64_t>(B, 1);
  for (std::int64_t s = 0; s < static_cast<std::int64_t>(h.labels.size()); ++s) {
    float* y = ex.input(h.labels[static_cast<std::size_t>(s)]).data();
    for (std::int64_t r = 0; r < B; ++r) y[r] = b.labels[static_cast<std::size_t>(r * S + s)];
  }
  if (!h.dense.empty() && !b.dense.empty())
    std::memcpy(ex.input(h.dense[0]).data(), b.dense.data(), b.dense.size() * sizeof(float));
}

TrainResult train_stream(Model& m, Optimizer<float>& opt, BatchStream& stream, const CachePart& eval_part,
                         const TrainOptions& o, const TrainHooks& hooks, std::int64_t start_step) {
  check_cache(m.config(), stream.file(), "training data");
  const CacheFile* eval = eval_part.file;
  if (eval) check_cache(m.config(), *eval, "evaluation data");
  TrainResult res;
  const std::int64_t n = stream.rows();
  std::int64_t step = start_step;
  const std::size_t L = m.handle().losses.size();
  StepInfo info;
  info.running_losses.assign(L, 0.0);
  for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    EpochReport rep;
    rep.epoch = epoch;
    rep.mean_losses.assign(L, 0.0);
    double seconds = 0.0;
    std::int64_t rows_done = 0;
    if (o.max_steps > 0 && step >= o.max_steps) break;
    stream.start_epoch(epoch);
    for (;;) {
      if (o.max_steps > 0 && step >= o.max_steps) break;
      const auto t0 = std::chrono::steady_clock::now();
      StreamBatch* b = stream.next();  // waiting for the reader counts as training time
      if (!b) break;
      const std::int64_t B = b->size;
      bind_stream_batch(m, *b);
      m.compute_gradients();
      opt.step(m.exec());
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++step;
      ++rep.steps;
      rows_done += B;
      const auto& ls = m.last_losses();
      for (std::size_t i = 0; i < L; ++i) {
        rep.mean_losses[i] += ls[i];
        info.running_losses[i] = step == start_step + 1 ? ls[i] : 0.98 * info.running_losses[i] + 0.02 * ls[i];
      }
      info.step = step;
      info.epoch = epoch;
      info.rows_done = rows_done;
      info.rows_total = n;
      info.rows_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
      if (hooks.on_step) hooks.on_step(info);
      if (o.save_every > 0 && step % o.save_every == 0 && hooks.save) hooks.save(step, epoch);
      if (hooks.stop && hooks.stop->load()) {
        res.stopped = true;
        break;
      }
    }
    for (auto& v : rep.mean_losses) v = rep.steps ? v / static_cast<double>(rep.steps) : 0.0;
    rep.samples_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
    if (eval && !res.stopped && rep.steps > 0) {
      rep.eval = evaluate_stream(m, eval_part, o.eval_batch_size);
      rep.has_eval = true;
    }
    res.steps = step;
    if (rep.steps > 0) {
      res.epochs.push_back(rep);
      if (hooks.on_epoch) hooks.on_epoch(rep);
    }
    if (res.stopped || (o.max_steps > 0 && step >= o.max_steps)) break;
  }
  res.steps = step;
  return res;
}

void predict_stream(Model& m, const CachePart& part, std::int64_t batch_size,
                    const std::function<void(const std::vector<const float*>&, std::int64_t)>& out) {
  const CacheFile& f = *part.file;
  check_cache(m.config(), f, "prediction data");
  StreamOptions so;
  so.chunk_begin = part.chunk_begin;
  so.chunk_end = part.chunk_end;
  so.batch_size = batch_size;
  so.shuffle = false;
  BatchStream stream(f, so);
  stream.start_epoch(0);
  std::vector<NodeId> targets;
  for (const auto& c : m.handle().columns) targets.push_back(c.node);
  std::vector<const float*> cols(targets.size());
  auto& ex = m.exec();
  while (StreamBatch* b = stream.next()) {
    bind_stream_batch(m, *b);
    ex.forward(targets);
    for (std::size_t k = 0; k < targets.size(); ++k) cols[k] = ex.value(targets[k]).data();
    out(cols, b->size);
  }
}

FunnelMetrics evaluate_stream(Model& m, const CachePart& part, std::int64_t batch_size) {
  const CacheFile& f = *part.file;
  check_cache(m.config(), f, "evaluation data");
  StreamingFunnelMetrics acc;
  StreamOptions so;
  so.chunk_begin = part.chunk_begin;
  so.chunk_end = part.chunk_end;
  so.batch_size = batch_size;
  so.shuffle = false;
  BatchStream stream(f, so);
  stream.start_epoch(0);
  const auto& h = m.handle();
  // The funnel's first two stages by role: p(click), p(conversion | click), p(click and conversion).
  const std::vector<NodeId> targets{h.stage_probs.at(0), h.cond_probs.at(1), h.stage_probs.at(1)};
  auto& ex = m.exec();
  std::vector<float> click, ctcvr;
  while (StreamBatch* b = stream.next()) {
    const std::int64_t B = b->size, S = f.num_stages();
    click.resize(static_cast<std::size_t>(B));
    ctcvr.resize(static_cast<std::size_t>(B));
    for (std::int64_t r = 0; r < B; ++r) {
      click[static_cast<std::size_t>(r)] = b->labels[static_cast<std::size_t>(r * S)];
      ctcvr[static_cast<std::size_t>(r)] = S > 1 ? b->labels[static_cast<std::size_t>(r * S + 1)] : 0.0f;
    }
    bind_stream_batch(m, *b);
    ex.forward(targets);
    acc.add(ex.value(targets[0]).data(), ex.value(targets[1]).data(), ex.value(targets[2]).data(), click.data(),
            ctcvr.data(), B);
  }
  return acc.result();
}

// ------------------------------------------------------------------------------------------------ metrics
void StreamingFunnelMetrics::Auc::add(float score, bool positive) {
  if (!(score >= 0.0f) || !std::isfinite(score))
    throw Error("evaluation: a prediction is " + std::to_string(score) + " (expected a probability in [0, 1])");
  std::uint32_t bits;
  const float s = score == 0.0f ? 0.0f : score;  // -0 as +0
  std::memcpy(&bits, &s, 4);
  (positive ? pos : neg).push_back(bits);
}

double StreamingFunnelMetrics::Auc::value() {
  // Groups of equal scores in ascending order, as roc_auc() walks them: positives beat the negatives before the
  // group and tie with the group's negatives.
  std::sort(pos.begin(), pos.end());
  std::sort(neg.begin(), neg.end());
  double u = 0, neg_before = 0, pos_total = 0;
  std::size_t i = 0, j = 0;
  while (i < pos.size() || j < neg.size()) {
    const std::uint32_t v = i < pos.size() && (j >= neg.size() || pos[i] <= neg[j]) ? pos[i] : neg[j];
    double p = 0, q = 0;
    for (; i < pos.size() && pos[i] == v; ++i) p += 1;
    for (; j < neg.size() && neg[j] == v; ++j) q += 1;
    u += p * neg_before + 0.5 * p * q;
    neg_before += q;
    pos_total += p;
  }
  std::vector<std::uint32_t>().swap(pos);
  std::vector<std::uint32_t>().swap(neg);
  if (pos_total == 0 || neg_before == 0) return kNaN;
  return u / (pos_total * neg_before);
}

void StreamingFunnelMetrics::Sum::add(double p, double y) {
  const double eps = 1e-7;
  const double q = std::clamp(p, eps, 1.0 - eps);
  loss -= y * std::log(q) + (1.0 - y) * std::log1p(-q);
  pred += p;
  label += y;
  ++n;
}

void StreamingFunnelMetrics::add(const float* pctr, const float* pcvr, const float* pctcvr, const float* click,
                                 const float* ctcvr, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    const bool c = click[i] == 1.0f, y = ctcvr[i] == 1.0f;
    if (y && !c) throw Error("evaluation: a conversion label on a row without a click");
    ctr_.add(pctr[i], c);
    ctcvr_.add(pctcvr[i], y);
    ctr_s_.add(pctr[i], c);
    ctcvr_s_.add(pctcvr[i], y);
    if (c) {
      cvr_.add(pcvr[i], y);
      cvr_s_.add(pcvr[i], y);
    }
    ++rows_;
    clicks_ += c;
    conversions_ += y;
  }
}

FunnelMetrics StreamingFunnelMetrics::result() {
  FunnelMetrics m;
  auto mean = [](double s, std::int64_t n) { return n ? s / static_cast<double>(n) : kNaN; };
  m.rows = rows_;
  m.clicks = clicks_;
  m.conversions = conversions_;
  m.ctr_auc = ctr_.value();
  m.cvr_auc = cvr_.value();
  m.ctcvr_auc = ctcvr_.value();
  m.ctr_logloss = mean(ctr_s_.loss, ctr_s_.n);
  m.cvr_logloss = mean(cvr_s_.loss, cvr_s_.n);
  m.ctcvr_logloss = mean(ctcvr_s_.loss, ctcvr_s_.n);
  m.mean_pctr = mean(ctr_s_.pred, ctr_s_.n);
  m.click_rate = mean(ctr_s_.label, ctr_s_.n);
  m.mean_pcvr_clicked = mean(cvr_s_.pred, cvr_s_.n);
  m.cvr_rate = mean(cvr_s_.label, cvr_s_.n);
  m.mean_pctcvr = mean(ctcvr_s_.pred, ctcvr_s_.n);
  m.ctcvr_rate = mean(ctcvr_s_.label, ctcvr_s_.n);
  return m;
}

}  // namespace funnel
