#pragma once
// The funnel metrics as tools show them: the list of named metrics of a report (every stage's, with the paper's
// names for the first two), their JSON form and the per-epoch table of `funnel train`.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/loop.hpp"
#include "train/metrics.hpp"

namespace funnel {

// One named metric of a FunnelMetrics. Stages 0 and 1 keep the paper's names (ctr_auc, cvr_auc, ctcvr_auc, ...);
// a later stage s is "stage<s>_auc" (reaching it), "stage<s>_cond_auc" (given stage s-1), ...
struct NamedMetric {
  enum class Kind { Auc, LogLoss, Calibration };
  std::string key;    // the JSON key ("cvr_auc", "stage2_cond_auc")
  std::string title;  // for tables and plots ("CVR AUC", "stage2|1 AUC")
  Kind kind = Kind::Auc;
  std::size_t stage = 0;
  std::function<double(const FunnelMetrics&)> value;
  std::function<const std::vector<CalibrationBin>*(const FunnelMetrics&)> bins;  // calibration curves only
};

// The metrics of a report of `stages` stages: AUCs, then log losses, then calibration; the entire-space ones
// with ground truth, the GAUCs with user keys.
std::vector<NamedMetric> named_metrics(std::size_t stages, bool truth, bool users);
std::vector<NamedMetric> named_metrics(const FunnelMetrics& m);

// The metrics as JSON (NaN as null): the named ones (rows, clicks, conversions, ctr_auc, ...) and `stages`, one
// object per stage (docs/metrics.md).
nlohmann::json metrics_to_json(const FunnelMetrics& m);

// `funnel train`'s table: one line per epoch, a column per stage's AUC (reach, and given the previous stage), the
// entire-space AUC with ground truth, GAUCs with user keys, log losses, mean prediction against the observed
// rate, and the training rate.
std::string metrics_table(const std::vector<EpochReport>& epochs);

}  // namespace funnel
