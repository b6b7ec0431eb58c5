#pragma once
/// @file
/// The funnel metrics as tools show them: the list of named metrics of a report (every stage's, with the paper's
/// names for the first two), their JSON form and the per-epoch table of `funnel train`.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/loop.hpp"
#include "train/metrics.hpp"

namespace funnel {

/// One named metric of a FunnelMetrics. Stages 0 and 1 keep the paper's names (ctr_auc, cvr_auc, ctcvr_auc, ...);
/// a later stage s is `stage<s>_auc` (reaching it), `stage<s>_cond_auc` (given stage s-1), ...
struct NamedMetric {
  /// What the metric measures, which decides where tools show it: Auc (AUCs and GAUCs: higher is better),
  /// LogLoss (lower is better), Calibration (mean predictions, observed rates and ECEs).
  enum class Kind { Auc /**< an AUC or GAUC */, LogLoss /**< a log loss */, Calibration /**< a mean, rate or ECE */ };
  std::string key;    ///< the JSON key ("cvr_auc", "stage2_cond_auc")
  std::string title;  ///< for tables and plots ("CVR AUC", "stage2|1 AUC")
  Kind kind = Kind::Auc;  ///< what it measures
  std::size_t stage = 0;  ///< the funnel stage it belongs to (0 = click, 1 = conversion, ...)
  /// Reads the metric from a report; NaN when the report has fewer stages.
  std::function<double(const FunnelMetrics&)> value;
  /// Calibration curves only (the ECEs): reads the bins behind the value (null when the report lacks the stage);
  /// empty for the other metrics.
  std::function<const std::vector<CalibrationBin>*(const FunnelMetrics&)> bins;
};

/// The metrics of a report of `stages` stages: AUCs, then log losses, then calibration; the entire-space ones
/// with ground truth (`truth`), the GAUCs with user keys (`users`). The second form takes all three from `m`.
///@{
std::vector<NamedMetric> named_metrics(std::size_t stages, bool truth, bool users);
std::vector<NamedMetric> named_metrics(const FunnelMetrics& m);
///@}

/// The metrics as JSON (NaN as null): the named ones (rows, clicks, conversions, ctr_auc, ...) and `stages`, one
/// object per stage (docs/metrics.md).
nlohmann::json metrics_to_json(const FunnelMetrics& m);

/// `funnel train`'s table: one line per epoch, a column per stage's AUC (reach, and given the previous stage), the
/// entire-space AUC with ground truth, GAUCs with user keys, log losses, mean prediction against the observed
/// rate, and the training rate. Columns follow the last epoch that has an evaluation; "n/a" marks a NaN.
std::string metrics_table(const std::vector<EpochReport>& epochs);

}  // namespace funnel
