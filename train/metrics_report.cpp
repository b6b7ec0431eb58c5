#include "train/metrics_report.hpp"

#include <cmath>
#include <cstdio>

namespace funnel {
namespace {

using Kind = NamedMetric::Kind;

const StageMetrics* stage_of(const FunnelMetrics& m, std::size_t s) {
  return s < m.stages.size() ? &m.stages[s] : nullptr;
}

// A member of stage s (NaN when the report has fewer stages).
NamedMetric stage_metric(std::string key, std::string title, Kind kind, std::size_t s, double StageMetrics::*field) {
  NamedMetric n{std::move(key), std::move(title), kind, s, {}, {}};
  n.value = [s, field](const FunnelMetrics& m) {
    const StageMetrics* x = stage_of(m, s);
    return x ? x->*field : std::nan("");
  };
  return n;
}

NamedMetric bins_metric(NamedMetric n, std::vector<CalibrationBin> StageMetrics::*field) {
  const std::size_t s = n.stage;
  n.bins = [s, field](const FunnelMetrics& m) -> const std::vector<CalibrationBin>* {
    const StageMetrics* x = stage_of(m, s);
    return x ? &(x->*field) : nullptr;
  };
  return n;
}

// Paper names of the three quantities of stages 0 and 1; "stage<s>" and "stage<s>_cond" after.
std::string reach_key(std::size_t s) { return s == 0 ? "ctr" : s == 1 ? "ctcvr" : stage_name(s); }
std::string cond_key(std::size_t s) { return s == 0 ? "ctr" : s == 1 ? "cvr" : stage_name(s) + "_cond"; }
std::string reach_title(std::size_t s) { return s == 0 ? "CTR" : s == 1 ? "CTCVR" : stage_name(s); }
std::string cond_title(std::size_t s) {
  return s == 1 ? "CVR" : stage_name(s) + "|" + std::to_string(s - 1);
}

}  // namespace

std::vector<NamedMetric> named_metrics(std::size_t stages, bool truth, bool users) {
  using S = StageMetrics;
  std::vector<NamedMetric> out;
  // The paper's order for the first two stages (CVR, CTCVR, CTR), then each later stage given the previous one and
  // reaching it.
  std::vector<std::pair<std::size_t, bool>> order;  // (stage, conditional)
  if (stages > 1) order.push_back({1, true});
  for (std::size_t s = std::min<std::size_t>(stages, 2); s-- > 0;) order.push_back({s, false});
  for (std::size_t s = 2; s < stages; ++s) {
    order.push_back({s, true});
    order.push_back({s, false});
  }
  auto each = [&](const std::string& suffix, const std::string& what, Kind kind, double S::*cond, double S::*reach) {
    for (auto [s, c] : order)
      out.push_back(stage_metric((c ? cond_key(s) : reach_key(s)) + suffix,
                                 (c ? cond_title(s) : reach_title(s)) + " " + what, kind, s, c ? cond : reach));
  };
  auto entire = [&](const std::string& suffix, const std::string& what, Kind kind, double S::*field) {
    if (truth)
      for (std::size_t s = 1; s < stages; ++s)
        out.push_back(stage_metric(cond_key(s) + suffix, cond_title(s) + " " + what, kind, s, field));
  };
  each("_auc", "AUC", Kind::Auc, &S::cond_auc, &S::auc);
  entire("_auc_entire_space", "AUC entire", Kind::Auc, &S::entire_auc);
  if (users) each("_gauc", "GAUC", Kind::Auc, &S::cond_gauc, &S::gauc);
  each("_logloss", "logloss", Kind::LogLoss, &S::cond_logloss, &S::logloss);
  entire("_logloss_entire_space", "logloss entire", Kind::LogLoss, &S::entire_logloss);
  // Calibration of each conditional (for two stages: pCVR on clicked rows, over all rows and the entire space).
  for (std::size_t s = 1; s < stages; ++s) {
    const std::string k = cond_key(s), t = cond_title(s), prev = s == 1 ? "clicked" : "reached " + std::to_string(s - 1);
    const std::string p = s == 1 ? "pCVR" : "p" + stage_name(s) + "|" + std::to_string(s - 1);
    out.push_back(stage_metric(s == 1 ? "mean_pcvr_clicked" : k + "_mean_pred", "mean " + p + " " + prev,
                               Kind::Calibration, s, &S::cond_mean_pred));
    out.push_back(stage_metric(k + "_rate", "observed " + t + " " + prev, Kind::Calibration, s, &S::cond_rate));
    out.push_back(bins_metric(
        stage_metric(k + "_ece", (s == 1 ? "ECE" : t + " ECE") + std::string(" ") + prev, Kind::Calibration, s,
                     &S::cond_ece),
        &S::cond_calibration));
    out.push_back(stage_metric(s == 1 ? "mean_pcvr_all" : k + "_mean_pred_all", "mean " + p + " all",
                               Kind::Calibration, s, &S::cond_mean_pred_all));
    if (truth) {
      out.push_back(stage_metric(k + "_rate_entire_space", "true " + t + " all", Kind::Calibration, s,
                                 &S::entire_rate));
      out.push_back(bins_metric(stage_metric(k + "_ece_entire_space", (s == 1 ? "ECE" : t + " ECE") + std::string(" entire"),
                                             Kind::Calibration, s, &S::entire_ece),
                                &S::entire_calibration));
    }
  }
  return out;
}

std::vector<NamedMetric> named_metrics(const FunnelMetrics& m) {
  bool truth = false;
  for (const auto& s : m.stages) truth = truth || s.has_entire_space;
  return named_metrics(m.stages.size(), truth, m.has_users);
}

nlohmann::json metrics_to_json(const FunnelMetrics& m) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json j{{"rows", m.rows}, {"clicks", m.clicks}, {"conversions", m.conversions}};
  // The named metrics of today's reports: the paper's two stages; the later stages are in `stages` only.
  for (const auto& n : named_metrics(m))
    if (n.stage < 2 && n.kind != Kind::Calibration) j[n.key] = num(n.value(m));
  for (const auto& [k, v] : {std::pair<const char*, double>{"mean_pctr", m.mean_pctr}, {"click_rate", m.click_rate},
                              {"mean_pcvr_clicked", m.mean_pcvr_clicked}, {"cvr_rate", m.cvr_rate},
                              {"mean_pctcvr", m.mean_pctcvr}, {"ctcvr_rate", m.ctcvr_rate}})
    j[k] = num(v);
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : m.stages) {
    nlohmann::json o{{"name", s.name},
                     {"rows", s.rows},
                     {"positives", s.positives},
                     {"auc", num(s.auc)},
                     {"logloss", num(s.logloss)},
                     {"mean_pred", num(s.mean_pred)},
                     {"rate", num(s.rate)},
                     {"cond_rows", s.cond_rows},
                     {"cond_auc", num(s.cond_auc)},
                     {"cond_logloss", num(s.cond_logloss)},
                     {"cond_mean_pred", num(s.cond_mean_pred)},
                     {"cond_rate", num(s.cond_rate)},
                     {"cond_ece", num(s.cond_ece)}};
    if (m.has_users) {
      o["gauc"] = num(s.gauc);
      o["cond_gauc"] = num(s.cond_gauc);
    }
    if (s.has_entire_space) {
      o["entire_auc"] = num(s.entire_auc);
      o["entire_logloss"] = num(s.entire_logloss);
      o["entire_rate"] = num(s.entire_rate);
      o["entire_ece"] = num(s.entire_ece);
    }
    stages.push_back(std::move(o));
  }
  j["stages"] = std::move(stages);
  return j;
}

std::string metrics_table(const std::vector<EpochReport>& epochs) {
  const FunnelMetrics* last = nullptr;
  for (const auto& e : epochs)
    if (e.has_eval) last = &e.eval;
  auto fmt = [](double v, int w) {
    char b[32];
    if (std::isnan(v)) std::snprintf(b, sizeof b, "%*s", w, "n/a");
    else std::snprintf(b, sizeof b, "%*.4f", w, v);
    return std::string(b);
  };
  // Columns: the AUCs (paper order: CTR, CVR, CTCVR; then later stages), entire-space AUCs, GAUCs, log losses of
  // reaching each stage, mean prediction / observed rate of reaching each stage, rows per second.
  struct Col {
    std::string head;
    std::function<std::string(const FunnelMetrics&)> cell;
  };
  std::vector<Col> cols;
  const std::size_t S = last ? last->stages.size() : 2;
  const bool truth = last && last->has_entire_space;
  const bool users = last && last->has_users;
  auto col = [&](const std::string& head, auto get) {
    const int w = static_cast<int>(std::max<std::size_t>(head.size(), 6));
    cols.push_back({head, [w, get, fmt](const FunnelMetrics& m) { return fmt(get(m), w); }});
  };
  auto st = [](const FunnelMetrics& m, std::size_t s) -> const StageMetrics& { return m.stages.at(s); };
  col("ctr_auc", [=](const FunnelMetrics& m) { return st(m, 0).auc; });
  if (S > 1) {
    col("cvr_auc", [=](const FunnelMetrics& m) { return st(m, 1).cond_auc; });
    col("ctcvr_auc", [=](const FunnelMetrics& m) { return st(m, 1).auc; });
  }
  for (std::size_t s = 2; s < S; ++s) {
    col(stage_name(s) + "_cond_auc", [=](const FunnelMetrics& m) { return st(m, s).cond_auc; });
    col(stage_name(s) + "_auc", [=](const FunnelMetrics& m) { return st(m, s).auc; });
  }
  if (truth) {
    col("cvr_auc_entire", [=](const FunnelMetrics& m) { return st(m, 1).entire_auc; });
    for (std::size_t s = 2; s < S; ++s)
      col(stage_name(s) + "_cond_auc_entire", [=](const FunnelMetrics& m) { return st(m, s).entire_auc; });
  }
  if (users)
    for (std::size_t s = 0; s < S; ++s) {
      if (s > 0) col(cond_key(s) + "_gauc", [=](const FunnelMetrics& m) { return st(m, s).cond_gauc; });
      col(reach_key(s) + "_gauc", [=](const FunnelMetrics& m) { return st(m, s).gauc; });
    }
  for (std::size_t s = 0; s < S; ++s)
    col(reach_key(s) + "_logloss", [=](const FunnelMetrics& m) { return st(m, s).logloss; });
  for (std::size_t s = 0; s < S; ++s) {
    const std::string head = s == 0 ? "mean_pctr/ctr" : s == 1 ? "mean_pctcvr/ctcvr"
                                                               : "mean_p" + stage_name(s) + "/rate";
    cols.push_back({head, [s, head](const FunnelMetrics& m) {
                      char b[64];
                      std::snprintf(b, sizeof b, s == 0 ? "%.4f/%.4f" : "%.5f/%.5f", m.stages.at(s).mean_pred,
                                    m.stages.at(s).rate);
                      std::string c = b;
                      return std::string(head.size() > c.size() ? head.size() - c.size() : 0, ' ') + c;
                    }});
  }
  std::string out = "\nepoch";
  for (const auto& c : cols) out += "  " + c.head;
  out += "  samples/s\n";
  for (const auto& e : epochs) {
    char b[32];
    std::snprintf(b, sizeof b, "%5lld", static_cast<long long>(e.epoch + 1));
    out += b;
    if (!e.has_eval || e.eval.stages.size() != S) {
      out += "  (no evaluation)\n";
      continue;
    }
    for (const auto& c : cols) out += "  " + c.cell(e.eval);
    std::snprintf(b, sizeof b, "  %9.0f\n", e.samples_per_sec);
    out += b;
  }
  return out;
}

}  // namespace funnel
