#include "train/loop.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.hpp"

namespace funnel {

TrainResult train(Model& m, Optimizer<float>& opt, BatchSource& src, const EvalFn& eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step) {
  src.check(m.config(), "training data");
  TrainResult res;
  const std::int64_t n = src.rows();
  if (n == 0) throw Error("training data has no rows");
  std::int64_t step = start_step;
  const std::size_t L = m.handle().losses.size();
  StepInfo info;
  info.running_losses.assign(L, 0.0);
  std::vector<float> losses(L);
  for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    if (o.max_steps > 0 && step >= o.max_steps) break;
    EpochReport rep;
    rep.epoch = epoch;
    rep.mean_losses.assign(L, 0.0);
    double seconds = 0.0;
    std::int64_t rows_done = 0;
    src.start_epoch(epoch);
    for (;;) {
      if (o.max_steps > 0 && step >= o.max_steps) break;
      const auto t0 = std::chrono::steady_clock::now();
      GradientStep g;
      g.step = step + 1;
      g.stop = hooks.stop && hooks.stop->load();
      try {
        g.batch = src.next(m);  // waiting for a streaming source's reader counts as training time
        if (g.batch.local > 0) m.compute_gradients();
      } catch (...) {
        if (!hooks.after_gradients) throw;
        g.error = std::current_exception();
      }
      if (!g.error && g.batch.local > 0) std::copy(m.last_losses().begin(), m.last_losses().end(), losses.begin());
      else std::fill(losses.begin(), losses.end(), 0.0f);
      if (!g.error && g.batch.rows == 0) break;  // the end of the epoch (for every process)
      g.losses = losses;
      if (hooks.after_gradients) hooks.after_gradients(m, g);
      if (g.error) std::rethrow_exception(g.error);
      if (!g.optimizer_applied) opt.step(m.params());
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      seconds += took;
      if (step - start_step >= TrainResult::kWarmupSteps) {
        res.steady_seconds += took;
        res.steady_rows += g.batch.rows;
      }
      ++step;
      ++rep.steps;
      rows_done += g.batch.rows;
      for (std::size_t i = 0; i < L; ++i) {
        rep.mean_losses[i] += g.losses[i];
        info.running_losses[i] =
            step == start_step + 1 ? g.losses[i] : 0.98 * info.running_losses[i] + 0.02 * g.losses[i];
      }
      info.step = step;
      info.epoch = epoch;
      info.rows_done = rows_done;
      info.rows_total = n;
      info.rows_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
      if (hooks.on_step) hooks.on_step(info);
      if (o.save_every > 0 && step % o.save_every == 0 && hooks.save) hooks.save(step, epoch);
      if (g.stop || (!g.stop_agreed && hooks.stop && hooks.stop->load())) {
        res.stopped = true;
        break;
      }
    }
    for (auto& v : rep.mean_losses) v = rep.steps ? v / static_cast<double>(rep.steps) : 0.0;
    rep.samples_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
    if (eval && !res.stopped && rep.steps > 0) {
      try {
        rep.eval = eval(m);
        rep.has_eval = true;
      } catch (const EvalInterrupted&) {
        res.stopped = true;
        res.stopped_in_eval = true;
      }
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

TrainResult train(Model& m, Optimizer<float>& opt, const Dataset& data, const Dataset* eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step) {
  if (eval) check_compatible(m.config(), *eval, "evaluation data");
  DatasetSource src(data, o.batch_size, o.shuffle, o.seed);
  EvalFn ev;
  const EvalHooks eh{hooks.stop, hooks.on_eval_batch};
  if (eval)
    ev = [&](Model& mm) {
      DatasetSource es(*eval, o.eval_batch_size);
      return evaluate(mm, es, {}, eh);
    };
  return train(m, opt, src, ev, o, hooks, start_step);
}

void forward_each_batch(Model& m, BatchSource& src, const std::vector<NodeId>& targets,
                        const std::function<void(const std::vector<const float*>&, std::int64_t)>& out) {
  auto& ex = m.exec();
  std::vector<const float*> cols(targets.size());
  src.start_epoch(0);
  for (;;) {
    const BatchRows b = src.next(m);
    if (b.rows == 0) break;
    if (b.local == 0) continue;
    ex.forward(targets);
    for (std::size_t k = 0; k < targets.size(); ++k) cols[k] = ex.value(targets[k]).data();
    out(cols, b.local);
  }
}

FunnelMetrics evaluate(Model& m, BatchSource& src, const std::function<void(StreamingFunnelMetrics&)>& combine,
                       const EvalHooks& hooks) {
  src.check(m.config(), "evaluation data");
  const ModelHandle& h = m.handle();
  // The funnel's first two stages by role: p(click), p(conversion | click), p(click and conversion).
  const std::vector<NodeId> targets{h.stage_probs.at(0), h.cond_probs.at(1), h.stage_probs.at(1)};
  auto& ex = m.exec();
  StreamingFunnelMetrics acc;
  EvalProgress prog;
  prog.rows_total = src.rows();
  const auto t0 = std::chrono::steady_clock::now();
  forward_each_batch(m, src, targets, [&](const std::vector<const float*>& p, std::int64_t n) {
    // The labels the source bound: click and click·conversion.
    acc.add(p[0], p[1], p[2], ex.input(h.labels.at(0)).data(), ex.input(h.labels.at(1)).data(),
            src.conversion_entire(), n);
    ++prog.batches;
    prog.rows_done += n;
    if (hooks.on_batch) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      prog.rows_per_sec = s > 0 ? static_cast<double>(prog.rows_done) / s : 0.0;
      hooks.on_batch(prog);
    }
    if (hooks.stop && hooks.stop->load()) throw EvalInterrupted();
  });
  if (combine) combine(acc);
  return acc.result();
}

FunnelMetrics evaluate(Model& m, const Dataset& d, std::int64_t batch_size) {
  DatasetSource src(d, batch_size);
  return evaluate(m, src);
}

std::vector<std::vector<float>> predict_nodes(Model& m, const Dataset& d, std::int64_t batch_size,
                                              const std::vector<NodeId>& nodes) {
  DatasetSource src(d, batch_size);
  src.check(m.config(), "prediction data");
  std::vector<std::vector<float>> out(nodes.size());
  for (auto& c : out) c.reserve(static_cast<std::size_t>(d.rows()));
  forward_each_batch(m, src, nodes, [&](const std::vector<const float*>& v, std::int64_t n) {
    for (std::size_t k = 0; k < nodes.size(); ++k) out[k].insert(out[k].end(), v[k], v[k] + n);
  });
  return out;
}

Predictions predict(Model& m, const Dataset& d, std::int64_t batch_size) {
  Predictions p;
  std::vector<NodeId> nodes;
  for (const auto& c : m.handle().columns) {
    p.names.push_back(c.name);
    nodes.push_back(c.node);
  }
  p.columns = predict_nodes(m, d, batch_size, nodes);
  return p;
}

// ------------------------------------------------------------------------------------------------ metrics
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
float from_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
}  // namespace

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
  if (pos_total == 0 || neg_before == 0) return kNaN;
  return u / (pos_total * neg_before);
}

std::vector<CalibrationBin> StreamingFunnelMetrics::Auc::bins(int bins) const {
  // The rows in ascending score order (tied negatives first), cut into `bins` groups of nearly equal count.
  std::vector<CalibrationBin> out;
  const std::size_t n = pos.size() + neg.size();
  if (n == 0) return out;
  const std::size_t B = std::min<std::size_t>(static_cast<std::size_t>(bins), n);
  double sp = 0, sy = 0;
  std::size_t i = 0, j = 0, b = 0, lo = 0, hi = n / B;
  for (std::size_t k = 0; k < n; ++k) {
    const bool take_neg = j < neg.size() && (i >= pos.size() || neg[j] <= pos[i]);
    sp += from_bits(take_neg ? neg[j++] : pos[i++]);
    sy += take_neg ? 0.0 : 1.0;
    if (k + 1 == hi) {
      const double cnt = static_cast<double>(hi - lo);
      out.push_back({sp / cnt, sy / cnt, static_cast<std::int64_t>(hi - lo)});
      sp = sy = 0;
      ++b;
      lo = hi;
      hi = (b + 1) * n / B;
    }
  }
  return out;
}

void StreamingFunnelMetrics::Auc::clear() {
  std::vector<std::uint32_t>().swap(pos);
  std::vector<std::uint32_t>().swap(neg);
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
                                 const float* ctcvr, const float* entire, std::int64_t n) {
  if (rows_ > 0 && has_entire_ != (entire != nullptr))
    throw Error("evaluation: ground-truth conversions for some batches and not for others");
  has_entire_ = entire != nullptr;
  for (std::int64_t i = 0; i < n; ++i) {
    if ((click[i] != 0.0f && click[i] != 1.0f) || (ctcvr[i] != 0.0f && ctcvr[i] != 1.0f))
      throw Error("evaluation: row " + std::to_string(rows_) + " has labels " + std::to_string(click[i]) + ", " +
                  std::to_string(ctcvr[i]) + " (expected 0 or 1)");
    const bool c = click[i] == 1.0f, y = ctcvr[i] == 1.0f;
    if (y && !c) throw Error("evaluation: row " + std::to_string(rows_) + " has a conversion label without a click");
    ctr_.add(pctr[i], c);
    ctcvr_.add(pctcvr[i], y);
    ctr_s_.add(pctr[i], c);
    ctcvr_s_.add(pctcvr[i], y);
    if (c) {
      cvr_.add(pcvr[i], y);
      cvr_s_.add(pcvr[i], y);
    }
    if (entire) {
      entire_.add(pcvr[i], entire[i] == 1.0f);
      entire_s_.add(pcvr[i], entire[i]);
    } else {
      entire_s_.pred += pcvr[i];  // the mean pCVR over all rows
      ++entire_s_.n;
    }
    ++rows_;
    clicks_ += c;
    conversions_ += y;
  }
}

void StreamingFunnelMetrics::merge(const std::function<void(std::vector<unsigned char>&)>& gather) {
  std::vector<unsigned char> bytes;
  for (Auc* a : {&ctr_, &cvr_, &ctcvr_, &entire_})
    for (std::vector<std::uint32_t>* v : {&a->pos, &a->neg}) {
      bytes.resize(v->size() * 4);
      if (!v->empty()) std::memcpy(bytes.data(), v->data(), bytes.size());
      gather(bytes);
      v->resize(bytes.size() / 4);
      if (!v->empty()) std::memcpy(v->data(), bytes.data(), bytes.size());
    }
  std::vector<double> mine{has_entire_ ? 1.0 : 0.0, static_cast<double>(rows_), static_cast<double>(clicks_),
                           static_cast<double>(conversions_)};
  for (const Sum* x : {&ctr_s_, &cvr_s_, &ctcvr_s_, &entire_s_})
    for (double v : {x->loss, x->pred, x->label, static_cast<double>(x->n)}) mine.push_back(v);
  bytes.resize(mine.size() * sizeof(double));
  std::memcpy(bytes.data(), mine.data(), bytes.size());
  gather(bytes);
  const std::size_t K = mine.size(), P = bytes.size() / (K * sizeof(double));
  std::vector<double> all(K * P);
  std::memcpy(all.data(), bytes.data(), all.size() * sizeof(double));
  std::vector<double> sum(K, 0.0);
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t k = 0; k < K; ++k) sum[k] += all[p * K + k];
  has_entire_ = sum[0] > 0;
  rows_ = static_cast<std::int64_t>(sum[1]);
  clicks_ = static_cast<std::int64_t>(sum[2]);
  conversions_ = static_cast<std::int64_t>(sum[3]);
  std::size_t k = 4;
  for (Sum* x : {&ctr_s_, &cvr_s_, &ctcvr_s_, &entire_s_}) {
    x->loss = sum[k++];
    x->pred = sum[k++];
    x->label = sum[k++];
    x->n = static_cast<std::int64_t>(sum[k++]);
  }
}

FunnelMetrics StreamingFunnelMetrics::result() {
  FunnelMetrics m;
  auto mean = [](double s, std::int64_t n) { return n ? s / static_cast<double>(n) : kNaN; };
  m.rows = rows_;
  m.clicks = clicks_;
  m.conversions = conversions_;
  m.ctr_auc = ctr_.value();
  ctr_.clear();
  m.ctcvr_auc = ctcvr_.value();
  ctcvr_.clear();
  m.cvr_auc = cvr_.value();
  m.cvr_calibration = cvr_.bins(10);
  m.cvr_ece = expected_calibration_error(m.cvr_calibration);
  cvr_.clear();
  m.ctr_logloss = mean(ctr_s_.loss, ctr_s_.n);
  m.cvr_logloss = mean(cvr_s_.loss, cvr_s_.n);
  m.ctcvr_logloss = mean(ctcvr_s_.loss, ctcvr_s_.n);
  m.mean_pctr = mean(ctr_s_.pred, ctr_s_.n);
  m.click_rate = mean(ctr_s_.label, ctr_s_.n);
  m.mean_pcvr_clicked = mean(cvr_s_.pred, cvr_s_.n);
  m.cvr_rate = mean(cvr_s_.label, cvr_s_.n);
  m.mean_pctcvr = mean(ctcvr_s_.pred, ctcvr_s_.n);
  m.ctcvr_rate = mean(ctcvr_s_.label, ctcvr_s_.n);
  m.mean_pcvr_all = mean(entire_s_.pred, entire_s_.n);
  if (has_entire_) {
    m.has_entire_space = true;
    m.cvr_auc_entire_space = entire_.value();
    m.cvr_calibration_entire_space = entire_.bins(10);
    m.cvr_ece_entire_space = expected_calibration_error(m.cvr_calibration_entire_space);
    entire_.clear();
    m.cvr_rate_entire_space = mean(entire_s_.label, entire_s_.n);
    m.cvr_logloss_entire_space = mean(entire_s_.loss, entire_s_.n);
  }
  return m;
}

void split_tail(const Dataset& all, double fraction, Dataset& head, Dataset& tail) {
  const std::int64_t n = all.rows();
  const std::int64_t k = std::clamp<std::int64_t>(static_cast<std::int64_t>(static_cast<double>(n) * fraction), 1, n - 1);
  const std::int64_t cut = n - k;
  auto part = [&](Dataset& out, std::int64_t lo, std::int64_t hi) {
    out = Dataset{};
    out.num_fields = all.num_fields;
    out.num_stages = all.num_stages;
    out.num_dense = all.num_dense;
    out.vocab = all.vocab;
    out.field_names = all.field_names;
    out.dense_names = all.dense_names;
    const std::int64_t F = all.num_fields, S = all.num_stages, D = all.num_dense;
    const auto b = all.offsets[static_cast<std::size_t>(lo * F)], e = all.offsets[static_cast<std::size_t>(hi * F)];
    out.offsets.clear();
    for (std::int64_t i = lo * F; i <= hi * F; ++i) out.offsets.push_back(all.offsets[static_cast<std::size_t>(i)] - b);
    out.ids.assign(all.ids.begin() + b, all.ids.begin() + e);
    out.weights.assign(all.weights.begin() + b, all.weights.begin() + e);
    out.dense.assign(all.dense.begin() + lo * D, all.dense.begin() + hi * D);
    out.labels.assign(all.labels.begin() + lo * S, all.labels.begin() + hi * S);
    if (!all.true_prob.empty()) out.true_prob.assign(all.true_prob.begin() + lo * S, all.true_prob.begin() + hi * S);
    if (!all.entire_labels.empty())
      out.entire_labels.assign(all.entire_labels.begin() + lo * S, all.entire_labels.begin() + hi * S);
    if (all.has_blocks()) {
      // Only the shared blocks the part's rows use, renumbered in order of first use.
      std::vector<std::int32_t> remap(static_cast<std::size_t>(all.num_blocks()), -1);
      out.block_offsets.assign(1, 0);
      out.row_block.reserve(static_cast<std::size_t>(hi - lo));
      for (std::int64_t r = lo; r < hi; ++r) {
        const std::int32_t blk = all.row_block[static_cast<std::size_t>(r)];
        if (blk >= 0 && remap[static_cast<std::size_t>(blk)] < 0) {
          remap[static_cast<std::size_t>(blk)] = static_cast<std::int32_t>(out.num_blocks());
          const auto bo = static_cast<std::size_t>(blk * F);
          const auto bb = all.block_offsets[bo], be = all.block_offsets[bo + static_cast<std::size_t>(F)];
          const auto base = static_cast<std::int64_t>(out.block_ids.size());
          for (std::int64_t f = 1; f <= F; ++f)
            out.block_offsets.push_back(all.block_offsets[bo + static_cast<std::size_t>(f)] - bb + base);
          out.block_ids.insert(out.block_ids.end(), all.block_ids.begin() + bb, all.block_ids.begin() + be);
          out.block_weights.insert(out.block_weights.end(), all.block_weights.begin() + bb,
                                   all.block_weights.begin() + be);
        }
        out.row_block.push_back(blk >= 0 ? remap[static_cast<std::size_t>(blk)] : -1);
      }
    }
  };
  part(head, 0, cut);
  part(tail, cut, n);
}

}  // namespace funnel
