#include "train/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace funnel {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_sizes(const char* fn, std::size_t n, std::size_t labels, std::size_t mask) {
  if (labels != n)
    throw Error(std::string(fn) + ": labels has " + std::to_string(labels) + " rows but scores has " +
                std::to_string(n));
  if (mask != 0 && mask != n)
    throw Error(std::string(fn) + ": mask has " + std::to_string(mask) + " rows but scores has " +
                std::to_string(n) + " (expected the same, or an empty mask for all rows)");
}

[[noreturn]] void bad_value(const char* fn, const char* what, std::size_t row, double v, const char* expected) {
  throw Error(std::string(fn) + ": " + what + "[" + std::to_string(row) + "] = " + std::to_string(v) +
              " (expected " + expected + ")");
}

// Shared AUC over (score, is_positive) pairs of the selected rows. `label_of(i)` returns 0 or 1 or throws.
template <class LabelOf>
double auc_impl(std::span<const float> scores, std::size_t nlabels, std::span<const std::uint8_t> mask,
                LabelOf label_of) {
  check_sizes("roc_auc", scores.size(), nlabels, mask.size());
  std::vector<std::pair<float, std::uint8_t>> v;
  v.reserve(scores.size());
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!mask.empty() && !mask[i]) continue;
    if (!std::isfinite(scores[i])) bad_value("roc_auc", "scores", i, scores[i], "a finite score");
    v.emplace_back(scores[i], label_of(i));
  }
  std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // Walk groups of equal scores in ascending order: every positive of a group beats the negatives seen before the
  // group and ties with the group's negatives (½ each). This equals the Mann-Whitney U with average ranks.
  double u = 0, neg_before = 0, pos_total = 0;
  for (std::size_t i = 0; i < v.size();) {
    std::size_t j = i;
    double pos = 0, neg = 0;
    for (; j < v.size() && v[j].first == v[i].first; ++j) (v[j].second ? pos : neg) += 1;
    u += pos * neg_before + 0.5 * pos * neg;
    neg_before += neg;
    pos_total += pos;
    i = j;
  }
  if (pos_total == 0 || neg_before == 0) return kNaN;
  return u / (pos_total * neg_before);
}

}  // namespace

double roc_auc(std::span<const float> scores, std::span<const float> labels, std::span<const std::uint8_t> mask) {
  return auc_impl(scores, labels.size(), mask, [&](std::size_t i) -> std::uint8_t {
    if (labels[i] == 0.0f) return 0;
    if (labels[i] == 1.0f) return 1;
    bad_value("roc_auc", "labels", i, labels[i], "0 or 1");
  });
}

double roc_auc(std::span<const float> scores, std::span<const std::uint8_t> labels,
               std::span<const std::uint8_t> mask) {
  return auc_impl(scores, labels.size(), mask, [&](std::size_t i) -> std::uint8_t {
    if (labels[i] > 1) bad_value("roc_auc", "labels", i, labels[i], "0 or 1");
    return labels[i];
  });
}

double group_auc(std::span<const float> scores, std::span<const float> labels, std::span<const std::int64_t> users,
                 std::span<const std::uint8_t> mask) {
  check_sizes("group_auc", scores.size(), labels.size(), mask.size());
  if (users.size() != scores.size())
    throw Error("group_auc: users has " + std::to_string(users.size()) + " rows but scores has " +
                std::to_string(scores.size()));
  // Row indexes grouped by user; each group's AUC by roc_auc over a mask of the group's rows.
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < scores.size(); ++i)
    if ((mask.empty() || mask[i]) && users[i] >= 0) idx.push_back(i);
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return users[a] < users[b]; });
  std::vector<float> s, y;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    s.clear();
    y.clear();
    for (; j < idx.size() && users[idx[j]] == users[idx[i]]; ++j) {
      s.push_back(scores[idx[j]]);
      y.push_back(labels[idx[j]]);
    }
    const double a = roc_auc(s, y);
    if (!std::isnan(a)) {
      num += static_cast<double>(j - i) * a;
      den += static_cast<double>(j - i);
    }
    i = j;
  }
  return den > 0 ? num / den : kNaN;
}

double log_loss(std::span<const float> probs, std::span<const float> labels, std::span<const std::uint8_t> mask,
                double eps) {
  check_sizes("log_loss", probs.size(), labels.size(), mask.size());
  if (!(eps > 0 && eps < 0.5)) throw Error("log_loss: eps = " + std::to_string(eps) + " (expected in (0, 0.5))");
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    if (!mask.empty() && !mask[i]) continue;
    const double p = probs[i], y = labels[i];
    if (!(p >= 0 && p <= 1)) bad_value("log_loss", "probs", i, p, "a probability in [0, 1]");
    if (!(y >= 0 && y <= 1)) bad_value("log_loss", "labels", i, y, "a label in [0, 1]");
    const double q = std::clamp(p, eps, 1.0 - eps);
    sum -= y * std::log(q) + (1.0 - y) * std::log1p(-q);
    ++n;
  }
  return n ? sum / static_cast<double>(n) : kNaN;
}

double mean_of(std::span<const float> values, std::span<const std::uint8_t> mask) {
  check_sizes("mean_of", values.size(), values.size(), mask.size());
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!mask.empty() && !mask[i]) continue;
    sum += values[i];
    ++n;
  }
  return n ? sum / static_cast<double>(n) : kNaN;
}

std::vector<CalibrationBin> calibration_bins(std::span<const float> probs, std::span<const float> labels,
                                             std::span<const std::uint8_t> mask, int bins) {
  if (labels.size() != probs.size())
    throw Error("expected_calibration_error: labels have " + std::to_string(labels.size()) + " rows, probs " +
                std::to_string(probs.size()));
  if (!mask.empty() && mask.size() != probs.size())
    throw Error("expected_calibration_error: mask has " + std::to_string(mask.size()) + " rows, probs " +
                std::to_string(probs.size()));
  if (bins < 1) throw Error("expected_calibration_error: bins must be >= 1");
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < probs.size(); ++i)
    if (mask.empty() || mask[i]) rows.push_back(i);
  std::vector<CalibrationBin> out;
  if (rows.empty()) return out;
  std::stable_sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return probs[a] < probs[b]; });
  const std::size_t n = rows.size(), B = std::min<std::size_t>(static_cast<std::size_t>(bins), n);
  for (std::size_t b = 0; b < B; ++b) {
    const std::size_t lo = b * n / B, hi = (b + 1) * n / B;
    double sp = 0, sy = 0;
    for (std::size_t k = lo; k < hi; ++k) {
      sp += probs[rows[k]];
      sy += labels[rows[k]];
    }
    const double cnt = static_cast<double>(hi - lo);
    out.push_back({sp / cnt, sy / cnt, static_cast<std::int64_t>(hi - lo)});
  }
  return out;
}

double expected_calibration_error(const std::vector<CalibrationBin>& bins) {
  if (bins.empty()) return std::numeric_limits<double>::quiet_NaN();
  double n = 0, ece = 0;
  for (const auto& b : bins) n += static_cast<double>(b.rows);
  for (const auto& b : bins) ece += static_cast<double>(b.rows) / n * std::abs(b.mean_prob - b.rate);
  return ece;
}

double expected_calibration_error(std::span<const float> probs, std::span<const float> labels,
                                  std::span<const std::uint8_t> mask, int bins) {
  return expected_calibration_error(calibration_bins(probs, labels, mask, bins));
}

std::string stage_name(std::size_t s) {
  if (s == 0) return "click";
  if (s == 1) return "conversion";
  return "stage" + std::to_string(s);
}

FunnelMetrics evaluate_funnel(const FunnelInputs& in, std::span<const std::int64_t> users) {
  const std::size_t n = in.click.size();
  auto need = [&](std::span<const float> s, const char* name) {
    if (s.size() != n)
      throw Error(std::string("evaluate_funnel: ") + name + " has " + std::to_string(s.size()) +
                  " rows but click has " + std::to_string(n));
  };
  need(in.pctr, "pctr");
  need(in.pcvr, "pcvr");
  need(in.pctcvr, "pctcvr");
  need(in.ctcvr, "ctcvr");
  const bool entire = !in.conversion_entire.empty();
  if (entire) need(in.conversion_entire, "conversion_entire");

  FunnelMetrics m;
  m.rows = static_cast<std::int64_t>(n);
  std::vector<std::uint8_t> clicked(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float c = in.click[i], y = in.ctcvr[i];
    if (c != 0.0f && c != 1.0f) bad_value("evaluate_funnel", "click", i, c, "0 or 1");
    if (y != 0.0f && y != 1.0f) bad_value("evaluate_funnel", "ctcvr", i, y, "0 or 1");
    if (y > c) bad_value("evaluate_funnel", "ctcvr", i, y, "0 on a row whose click label is 0");
    clicked[i] = c == 1.0f;
    m.clicks += clicked[i];
    m.conversions += y == 1.0f;
  }
  m.ctr_auc = roc_auc(in.pctr, in.click);
  m.cvr_auc = roc_auc(in.pcvr, in.ctcvr, clicked);
  m.ctcvr_auc = roc_auc(in.pctcvr, in.ctcvr);
  m.ctr_logloss = log_loss(in.pctr, in.click);
  m.cvr_logloss = log_loss(in.pcvr, in.ctcvr, clicked);
  m.ctcvr_logloss = log_loss(in.pctcvr, in.ctcvr);
  m.mean_pctr = mean_of(in.pctr);
  m.click_rate = mean_of(in.click);
  m.mean_pcvr_clicked = mean_of(in.pcvr, clicked);
  m.cvr_rate = mean_of(in.ctcvr, clicked);
  m.mean_pctcvr = mean_of(in.pctcvr);
  m.ctcvr_rate = mean_of(in.ctcvr);
  m.cvr_calibration = calibration_bins(in.pcvr, in.ctcvr, clicked);
  m.cvr_ece = expected_calibration_error(m.cvr_calibration);
  m.mean_pcvr_all = mean_of(in.pcvr);
  if (entire) {
    m.has_entire_space = true;
    m.cvr_auc_entire_space = roc_auc(in.pcvr, in.conversion_entire);
    m.cvr_rate_entire_space = mean_of(in.conversion_entire);
    m.cvr_calibration_entire_space = calibration_bins(in.pcvr, in.conversion_entire);
    m.cvr_ece_entire_space = expected_calibration_error(m.cvr_calibration_entire_space);
    m.cvr_logloss_entire_space = log_loss(in.pcvr, in.conversion_entire);
  }
  // The same numbers as the two stages of the per-stage report (without user keys: no GAUC).
  m.stages.resize(2);
  StageMetrics& c = m.stages[0];
  StageMetrics& v = m.stages[1];
  c.name = stage_name(0);
  v.name = stage_name(1);
  c.rows = v.rows = c.cond_rows = m.rows;
  c.positives = v.cond_rows = m.clicks;
  v.positives = m.conversions;
  c.auc = c.cond_auc = m.ctr_auc;
  c.logloss = c.cond_logloss = m.ctr_logloss;
  c.mean_pred = c.cond_mean_pred = c.cond_mean_pred_all = m.mean_pctr;
  c.rate = c.cond_rate = m.click_rate;
  c.cond_calibration = calibration_bins(in.pctr, in.click);
  c.cond_ece = expected_calibration_error(c.cond_calibration);
  v.auc = m.ctcvr_auc;
  v.logloss = m.ctcvr_logloss;
  v.mean_pred = m.mean_pctcvr;
  v.rate = m.ctcvr_rate;
  v.cond_auc = m.cvr_auc;
  v.cond_logloss = m.cvr_logloss;
  v.cond_mean_pred = m.mean_pcvr_clicked;
  v.cond_rate = m.cvr_rate;
  v.cond_ece = m.cvr_ece;
  v.cond_calibration = m.cvr_calibration;
  v.cond_mean_pred_all = m.mean_pcvr_all;
  for (StageMetrics* x : {&c, &v}) x->gauc = x->cond_gauc = kNaN;
  if (!users.empty()) {
    if (users.size() != n)
      throw Error("evaluate_funnel: users has " + std::to_string(users.size()) + " rows but click has " +
                  std::to_string(n));
    m.has_users = true;
    c.gauc = c.cond_gauc = group_auc(in.pctr, in.click, users);
    v.gauc = group_auc(in.pctcvr, in.ctcvr, users);
    v.cond_gauc = group_auc(in.pcvr, in.ctcvr, users, clicked);
  }
  v.has_entire_space = m.has_entire_space;
  v.entire_auc = m.cvr_auc_entire_space;
  v.entire_logloss = m.cvr_logloss_entire_space;
  v.entire_rate = m.cvr_rate_entire_space;
  v.entire_ece = m.cvr_ece_entire_space;
  v.entire_calibration = m.cvr_calibration_entire_space;
  return m;
}

}  // namespace funnel
