// StreamingFunnelMetrics (train/metrics.hpp): exact whole-set metrics of every funnel stage, batch by batch.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/error.hpp"
#include "train/metrics.hpp"

namespace funnel {
namespace {
constexpr double kStreamNaN = std::numeric_limits<double>::quiet_NaN();

float float_of_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

std::uint32_t score_bits(float score) {
  if (!(score >= 0.0f) || !std::isfinite(score))
    throw Error("evaluation: a prediction is " + std::to_string(score) + " (expected a probability in [0, 1])");
  std::uint32_t bits;
  const float s = score == 0.0f ? 0.0f : score;  // -0 as +0
  std::memcpy(&bits, &s, 4);
  return bits;
}

// AUC of positive and negative score bits, both sorted ascending: groups of equal scores in ascending order, as
// roc_auc() walks them (positives beat the negatives before the group and tie with the group's negatives).
template <class Pos, class Neg>
double merged_auc(std::size_t np, Pos pos, std::size_t nn, Neg neg) {
  double u = 0, neg_before = 0, pos_total = 0;
  std::size_t i = 0, j = 0;
  while (i < np || j < nn) {
    const std::uint32_t v = i < np && (j >= nn || pos(i) <= neg(j)) ? pos(i) : neg(j);
    double p = 0, q = 0;
    for (; i < np && pos(i) == v; ++i) p += 1;
    for (; j < nn && neg(j) == v; ++j) q += 1;
    u += p * neg_before + 0.5 * p * q;
    neg_before += q;
    pos_total += p;
  }
  if (pos_total == 0 || neg_before == 0) return kStreamNaN;
  return u / (pos_total * neg_before);
}

// Appends the raw bytes of `v` to `bytes`, gathers them across processes, and makes `v` the concatenation.
template <class T>
void gather_vector(std::vector<T>& v, std::vector<unsigned char>& bytes,
                   const std::function<void(std::vector<unsigned char>&)>& gather) {
  bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  gather(bytes);
  v.resize(bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
}
}  // namespace

void StreamingFunnelMetrics::Auc::add(float score, bool positive) { (positive ? pos : neg).push_back(score_bits(score)); }

double StreamingFunnelMetrics::Auc::value() {
  std::sort(pos.begin(), pos.end());
  std::sort(neg.begin(), neg.end());
  return merged_auc(
      pos.size(), [&](std::size_t i) { return pos[i]; }, neg.size(), [&](std::size_t j) { return neg[j]; });
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
    sp += float_of_bits(take_neg ? neg[j++] : pos[i++]);
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

double StreamingFunnelMetrics::Gauc::value() {
  // Rows by (user, label, score): each user's positives then negatives, both ascending, are the sorted lists of
  // merged_auc; the user's AUC is weighted by the user's rows.
  std::sort(rows.begin(), rows.end(), [](const Entry& a, const Entry& b) {
    if (a.user != b.user) return a.user < b.user;
    if (a.positive != b.positive) return a.positive > b.positive;
    return a.bits < b.bits;
  });
  double num = 0, den = 0;
  for (std::size_t i = 0; i < rows.size();) {
    std::size_t j = i, k = i;
    for (; j < rows.size() && rows[j].user == rows[i].user; ++j)
      if (rows[j].positive) ++k;
    const std::size_t np = k - i, nn = j - k;
    if (np > 0 && nn > 0) {
      const double a = merged_auc(
          np, [&](std::size_t x) { return rows[i + x].bits; }, nn, [&](std::size_t x) { return rows[k + x].bits; });
      num += static_cast<double>(j - i) * a;
      den += static_cast<double>(j - i);
    }
    i = j;
  }
  std::vector<Entry>().swap(rows);
  return den > 0 ? num / den : kStreamNaN;
}

void StreamingFunnelMetrics::Sum::add(double p, double y) {
  const double eps = 1e-7;
  const double q = std::clamp(p, eps, 1.0 - eps);
  loss -= y * std::log(q) + (1.0 - y) * std::log1p(-q);
  pred += p;
  label += y;
  ++n;
}

void StreamingFunnelMetrics::start(std::size_t stages, bool entire, bool users) {
  if (rows_ == 0 && st_.empty()) {
    st_.resize(stages);
    has_entire_ = entire;
    has_users_ = users;
    return;
  }
  if (stages != st_.size())
    throw Error("evaluation: batches of " + std::to_string(stages) + " and of " + std::to_string(st_.size()) +
                " funnel stages");
  if (entire != has_entire_) throw Error("evaluation: ground-truth conversions for some batches and not for others");
  if (users != has_users_) throw Error("evaluation: user keys for some batches and not for others");
}

void StreamingFunnelMetrics::add(const Batch& b) {
  const std::size_t S = b.labels.size();
  if (S == 0 || b.reach.size() != S || b.cond.size() != S || (!b.entire.empty() && b.entire.size() != S))
    throw Error("evaluation: a batch needs one prediction, label (and ground truth) per stage");
  const bool entire = !b.entire.empty() && S > 1 && b.entire[1] != nullptr;
  start(S, entire, b.users != nullptr);
  for (std::int64_t i = 0; i < b.n; ++i) {
    bool prev = true;  // reached the previous stage (every row reached the impression)
    for (std::size_t s = 0; s < S; ++s) {
      const float yv = b.labels[s][i];
      if (yv != 0.0f && yv != 1.0f)
        throw Error("evaluation: row " + std::to_string(rows_) + " has label " + std::to_string(yv) + " for " +
                    stage_name(s) + " (expected 0 or 1)");
      const bool y = yv == 1.0f;
      if (y && !prev)
        throw Error("evaluation: row " + std::to_string(rows_) + " reached " + stage_name(s) + " without " +
                    stage_name(s - 1));
      Stage& t = st_[s];
      const float r = b.reach[s][i], c = b.cond[s][i];
      t.reach.add(r, y);
      t.reach_s.add(r, y);
      if (prev && s > 0) {  // stage 0's conditional is its reach (the same node): scored once
        t.cond.add(c, y);
        t.cond_s.add(c, y);
      }
      if (has_users_ && b.users[i] >= 0) {  // a row without a key (-1) counts in no user's AUC
        const std::int64_t u = b.users[i];
        t.reach_g.rows.push_back({u, score_bits(r), y});
        if (prev && s > 0) t.cond_g.rows.push_back({u, score_bits(c), y});
      }
      if (has_entire_ && s > 0) {
        const float e = b.entire[s][i];
        t.entire.add(c, e == 1.0f);
        t.entire_s.add(c, e);
      } else {
        t.entire_s.pred += c;  // the mean conditional prediction over all rows
        ++t.entire_s.n;
      }
      prev = y;
    }
    ++rows_;
  }
}

void StreamingFunnelMetrics::add(const float* pctr, const float* pcvr, const float* pctcvr, const float* click,
                                 const float* ctcvr, const float* entire, std::int64_t n) {
  Batch b;
  b.n = n;
  b.reach = {pctr, pctcvr};
  b.cond = {pctr, pcvr};
  b.labels = {click, ctcvr};
  if (entire) b.entire = {nullptr, entire};
  add(b);
}

void StreamingFunnelMetrics::merge(const std::function<void(std::vector<unsigned char>&)>& gather) {
  // Every process must agree on the number of stages: one that scored no rows learns it here.
  std::vector<unsigned char> bytes;
  std::vector<double> head{static_cast<double>(st_.size()), has_entire_ ? 1.0 : 0.0, has_users_ ? 1.0 : 0.0,
                           static_cast<double>(rows_)};
  gather_vector(head, bytes, gather);
  std::size_t S = 0;
  bool entire = false, users = false;
  std::int64_t rows = 0;
  for (std::size_t p = 0; p + 3 < head.size(); p += 4) {
    S = std::max(S, static_cast<std::size_t>(head[p]));
    entire = entire || head[p + 1] > 0;
    users = users || head[p + 2] > 0;
    rows += static_cast<std::int64_t>(head[p + 3]);
  }
  if (st_.empty()) st_.resize(S);
  has_entire_ = entire;
  has_users_ = users;
  rows_ = rows;
  for (Stage& t : st_) {
    for (Auc* a : {&t.reach, &t.cond, &t.entire}) {
      gather_vector(a->pos, bytes, gather);
      gather_vector(a->neg, bytes, gather);
    }
    for (Gauc* g : {&t.reach_g, &t.cond_g}) gather_vector(g->rows, bytes, gather);
    std::vector<double> mine;
    for (const Sum* x : {&t.reach_s, &t.cond_s, &t.entire_s})
      for (double v : {x->loss, x->pred, x->label, static_cast<double>(x->n)}) mine.push_back(v);
    const std::size_t K = mine.size();
    gather_vector(mine, bytes, gather);
    std::vector<double> sum(K, 0.0);
    for (std::size_t p = 0; p < mine.size() / K; ++p)
      for (std::size_t k = 0; k < K; ++k) sum[k] += mine[p * K + k];
    std::size_t k = 0;
    for (Sum* x : {&t.reach_s, &t.cond_s, &t.entire_s}) {
      x->loss = sum[k++];
      x->pred = sum[k++];
      x->label = sum[k++];
      x->n = static_cast<std::int64_t>(sum[k++]);
    }
  }
}

FunnelMetrics StreamingFunnelMetrics::result() {
  FunnelMetrics m;
  auto mean = [](double s, std::int64_t n) { return n ? s / static_cast<double>(n) : kStreamNaN; };
  if (st_.empty()) st_.resize(2);  // no batch: the two-stage report, undefined throughout
  m.rows = rows_;
  m.has_users = has_users_;
  for (std::size_t s = 0; s < st_.size(); ++s) {
    Stage& t = st_[s];
    if (s == 0) {  // stage 0's conditional is its reach, scored once (add)
      std::swap(t.reach, t.cond);
      t.cond_s = t.reach_s;
    }
    StageMetrics x;
    x.name = stage_name(s);
    x.rows = t.reach_s.n;
    x.positives = static_cast<std::int64_t>(t.reach_s.label);
    x.cond_rows = t.cond_s.n;
    x.cond_auc = t.cond.value();
    x.cond_calibration = t.cond.bins(10);
    x.cond_ece = expected_calibration_error(x.cond_calibration);
    t.cond.clear();
    x.auc = s == 0 ? x.cond_auc : t.reach.value();
    t.reach.clear();
    x.logloss = mean(t.reach_s.loss, t.reach_s.n);
    x.mean_pred = mean(t.reach_s.pred, t.reach_s.n);
    x.rate = mean(t.reach_s.label, t.reach_s.n);
    x.cond_logloss = mean(t.cond_s.loss, t.cond_s.n);
    x.cond_mean_pred = mean(t.cond_s.pred, t.cond_s.n);
    x.cond_rate = mean(t.cond_s.label, t.cond_s.n);
    x.cond_mean_pred_all = mean(t.entire_s.pred, t.entire_s.n);
    x.gauc = x.cond_gauc = kStreamNaN;
    if (has_users_) {
      x.gauc = t.reach_g.value();
      x.cond_gauc = s == 0 ? x.gauc : t.cond_g.value();
    }
    if (has_entire_ && s > 0) {
      x.has_entire_space = true;
      x.entire_auc = t.entire.value();
      x.entire_calibration = t.entire.bins(10);
      x.entire_ece = expected_calibration_error(x.entire_calibration);
      t.entire.clear();
      x.entire_rate = mean(t.entire_s.label, t.entire_s.n);
      x.entire_logloss = mean(t.entire_s.loss, t.entire_s.n);
    }
    m.stages.push_back(std::move(x));
  }
  set_named_metrics(m);
  return m;
}

void set_named_metrics(FunnelMetrics& m) {
  if (m.stages.empty()) return;
  const StageMetrics& c = m.stages[0];
  m.clicks = c.positives;
  m.ctr_auc = c.auc;
  m.ctr_logloss = c.logloss;
  m.mean_pctr = c.mean_pred;
  m.click_rate = c.rate;
  if (m.stages.size() < 2) return;
  const StageMetrics& v = m.stages[1];
  m.conversions = v.positives;
  m.ctcvr_auc = v.auc;
  m.ctcvr_logloss = v.logloss;
  m.mean_pctcvr = v.mean_pred;
  m.ctcvr_rate = v.rate;
  m.cvr_auc = v.cond_auc;
  m.cvr_logloss = v.cond_logloss;
  m.mean_pcvr_clicked = v.cond_mean_pred;
  m.cvr_rate = v.cond_rate;
  m.cvr_calibration = v.cond_calibration;
  m.cvr_ece = v.cond_ece;
  m.mean_pcvr_all = v.cond_mean_pred_all;
  m.has_entire_space = v.has_entire_space;
  if (v.has_entire_space) {
    m.cvr_auc_entire_space = v.entire_auc;
    m.cvr_calibration_entire_space = v.entire_calibration;
    m.cvr_ece_entire_space = v.entire_ece;
    m.cvr_rate_entire_space = v.entire_rate;
    m.cvr_logloss_entire_space = v.entire_logloss;
  }
}

}  // namespace funnel
