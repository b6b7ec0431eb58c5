#include "cli/plots.hpp"

#include <cmath>

namespace funnel::cli {

void LossHistory::add(std::int64_t step, const std::vector<double>& losses) {
  if (step % stride_ != 0) return;
  if (losses_.size() < losses.size()) losses_.resize(losses.size());
  steps_.push_back(static_cast<double>(step));
  for (std::size_t k = 0; k < losses_.size(); ++k) losses_[k].push_back(k < losses.size() ? losses[k] : NAN);
  if (steps_.size() < cap_) return;
  // Full: keep the points on the doubled stride.
  stride_ *= 2;
  std::size_t w = 0;
  for (std::size_t r = 0; r < steps_.size(); ++r) {
    if (static_cast<std::int64_t>(steps_[r]) % stride_ != 0) continue;
    steps_[w] = steps_[r];
    for (auto& l : losses_) l[w] = l[r];
    ++w;
  }
  steps_.resize(w);
  for (auto& l : losses_) l.resize(w);
}

namespace {

double mean(const std::vector<double>& v) {
  double s = 0;
  std::size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / static_cast<double>(n) : NAN;
}

double sd(const std::vector<double>& v) {
  const double m = mean(v);
  double q = 0;
  std::size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) q += (x - m) * (x - m), ++n;
  return n > 1 ? std::sqrt(q / static_cast<double>(n - 1)) : 0.0;
}

// Bin-wise mean over runs of calibration curves (runs with a different bin count are left out).
plot::Series calibration_series(const std::string& name, const std::vector<const std::vector<CalibrationBin>*>& runs) {
  plot::Series s{.name = name};
  std::size_t bins = 0;
  for (auto* r : runs) bins = std::max(bins, r->size());
  for (std::size_t b = 0; b < bins; ++b) {
    std::vector<double> px, py;
    for (auto* r : runs)
      if (r->size() == bins) {
        px.push_back((*r)[b].mean_prob);
        py.push_back((*r)[b].rate);
      }
    s.x.push_back(mean(px));
    s.y.push_back(mean(py));
  }
  return s;
}

plot::Panel calibration_panel(const std::string& title) {
  plot::Panel p;
  p.title = title;
  p.x_label = "mean predicted pCVR (10 equal-count bins)";
  p.y_label = "observed conversion rate";
  p.diagonal = true;
  return p;
}

}  // namespace

plot::Figure train_figure(const std::string& title, const std::vector<std::string>& loss_names,
                          const LossHistory& history, const TrainResult& result) {
  plot::Figure f;
  f.title = title;
  f.panel_legends = true;
  plot::Panel& loss = f.panels.emplace_back();
  loss.title = "training loss (running mean)";
  loss.x_label = "step";
  loss.y_label = "loss";
  for (std::size_t k = 0; k < history.losses().size(); ++k)
    loss.series.push_back({.name = k < loss_names.size() ? loss_names[k] : "loss " + std::to_string(k),
                           .x = history.steps(),
                           .y = history.losses()[k],
                           .points = history.steps().size() < 40});
  // Per epoch: the training losses' epoch means, the evaluation's AUCs and log losses.
  plot::Panel& epoch_loss = f.panels.emplace_back();
  epoch_loss.title = "training loss (epoch mean)";
  epoch_loss.x_label = "epoch";
  epoch_loss.integer_x = true;
  epoch_loss.y_label = "loss";
  for (std::size_t k = 0; k < loss_names.size(); ++k) {
    plot::Series s{.name = loss_names[k]};
    for (const auto& e : result.epochs) {
      s.x.push_back(static_cast<double>(e.epoch + 1));
      s.y.push_back(k < e.mean_losses.size() ? e.mean_losses[k] : NAN);
    }
    epoch_loss.series.push_back(std::move(s));
  }
  // The paper's two stages under their names, then every later stage the last evaluation has.
  const FunnelMetrics* last = nullptr;
  for (const auto& e : result.epochs)
    if (e.has_eval) last = &e.eval;
  const bool truth = last && last->has_entire_space;
  struct M {
    std::string name;
    std::function<double(const FunnelMetrics&)> value;
  };
  auto stage = [](std::size_t s, double StageMetrics::*field) {
    return [s, field](const FunnelMetrics& m) { return s < m.stages.size() ? m.stages[s].*field : NAN; };
  };
  auto series_of = [&](NamedMetric::Kind kind) {
    using S = StageMetrics;
    const bool auc = kind == NamedMetric::Kind::Auc;
    const std::string what = auc ? " AUC" : " log loss";
    std::vector<M> ms{{"CTR" + what, stage(0, auc ? &S::auc : &S::logloss)},
                      {"CVR" + what + " (clicked)", stage(1, auc ? &S::cond_auc : &S::cond_logloss)},
                      {"CTCVR" + what, stage(1, auc ? &S::auc : &S::logloss)}};
    if (truth) ms.push_back({"CVR" + what + " (entire space)", stage(1, auc ? &S::entire_auc : &S::entire_logloss)});
    if (last)
      for (const auto& n : named_metrics(*last))
        if (n.kind == kind && n.stage >= 2 && n.key.find("gauc") == std::string::npos) ms.push_back({n.title, n.value});
    return ms;
  };
  auto per_epoch = [&](const std::string& panel_title, const std::string& y_label, NamedMetric::Kind kind) {
    plot::Panel p;
    p.title = panel_title;
    p.x_label = "epoch";
    p.integer_x = true;
    p.y_label = y_label;
    for (const auto& m : series_of(kind)) {
      plot::Series s{.name = m.name};
      for (const auto& e : result.epochs) {
        if (!e.has_eval) continue;
        s.x.push_back(static_cast<double>(e.epoch + 1));
        s.y.push_back(m.value(e.eval));
      }
      p.series.push_back(std::move(s));
    }
    return p;
  };
  f.panels.push_back(per_epoch("evaluation AUC", "AUC", NamedMetric::Kind::Auc));
  f.panels.push_back(per_epoch("evaluation log loss", "log loss", NamedMetric::Kind::LogLoss));
  if (!result.epochs.empty() && result.epochs.back().has_eval) {
    const FunnelMetrics& m = result.epochs.back().eval;
    plot::Panel p = calibration_panel("pCVR calibration after the last epoch");
    p.series.push_back(calibration_series("clicked impressions", {&m.cvr_calibration}));
    if (m.has_entire_space)
      p.series.push_back(calibration_series("entire space (ground truth)", {&m.cvr_calibration_entire_space}));
    f.panels.push_back(std::move(p));
    // Later stages: p(stage s | stage s-1) the same way.
    for (std::size_t st = 2; st < m.stages.size(); ++st) {
      const StageMetrics& x = m.stages[st];
      plot::Panel q = calibration_panel("p(" + x.name + " | " + m.stages[st - 1].name + ") calibration after the last epoch");
      q.series.push_back(calibration_series("impressions that reached " + m.stages[st - 1].name, {&x.cond_calibration}));
      if (x.has_entire_space)
        q.series.push_back(calibration_series("entire space (ground truth)", {&x.entire_calibration}));
      f.panels.push_back(std::move(q));
    }
  }
  return f;
}

plot::Figure compare_figure(const std::string& title, const std::vector<CompareRuns>& models,
                            const std::vector<AucMetric>& aucs) {
  plot::Figure f;
  f.title = title;
  f.columns = 2;
  std::vector<std::string> names;
  for (const auto& m : models) names.push_back(m.model);
  for (const auto& a : aucs) {
    plot::Panel& p = f.panels.emplace_back();
    p.title = a.title;
    p.y_label = "AUC (mean ± std over runs)";
    p.x_ticks = names;
    for (std::size_t i = 0; i < models.size(); ++i) {
      std::vector<double> v;
      for (const auto& r : models[i].runs) v.push_back(a.value(r));
      p.series.push_back({.name = models[i].model,
                          .x = {static_cast<double>(i)},
                          .y = {mean(v)},
                          .err = {models[i].runs.size() > 1 ? sd(v) : 0.0},
                          .line = false});
    }
  }
  const bool truth = !models.empty() && !models[0].runs.empty() && models[0].runs[0].has_entire_space;
  plot::Panel clicked = calibration_panel("pCVR calibration, clicked impressions");
  plot::Panel entire = calibration_panel("pCVR calibration, entire space (ground truth)");
  for (const auto& m : models) {
    std::vector<const std::vector<CalibrationBin>*> c, e;
    for (const auto& r : m.runs) {
      c.push_back(&r.cvr_calibration);
      e.push_back(&r.cvr_calibration_entire_space);
    }
    clicked.series.push_back(calibration_series(m.model, c));
    if (truth) entire.series.push_back(calibration_series(m.model, e));
  }
  f.panels.push_back(std::move(clicked));
  if (truth) f.panels.push_back(std::move(entire));
  return f;
}

}  // namespace funnel::cli
