#pragma once
/// @file
/// The pictures of `funnel compare --plot` and `funnel train --plot` (SVG through viz/plot.*): functions that
/// turn a run's results into a plot::Figure, which the caller writes with viz/plot.hpp.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "train/loop.hpp"
#include "train/metrics.hpp"
#include "train/metrics_report.hpp"
#include "viz/plot.hpp"

namespace funnel::cli {

/// Running training losses, thinned as they come: at most `cap` points are kept (when full, every other point is
/// dropped and only every 2nd, 4th, ... step is recorded from then on), so memory does not grow with the rows.
/// Not synchronised: one thread adds (the training loop's callback).
class LossHistory {
 public:
  /// An empty history keeping at most `cap` points (at least 4).
  explicit LossHistory(std::size_t cap = 512) : cap_(cap < 4 ? 4 : cap) {}
  /// Records the losses (one per model loss, e.g. the running means the loop reports) at `step`, unless `step` is
  /// not a multiple of the current stride. A loss missing from a shorter vector is recorded as NaN.
  void add(std::int64_t step, const std::vector<double>& losses);
  /// The recorded steps (as doubles, the x axis), in increasing order when add was called in step order.
  const std::vector<double>& steps() const { return steps_; }
  /// The recorded losses: losses()[k][point] is loss k at steps()[point].
  const std::vector<std::vector<double>>& losses() const { return losses_; }

 private:
  std::size_t cap_;
  std::int64_t stride_ = 1;
  std::vector<double> steps_;
  std::vector<std::vector<double>> losses_;
};

/// `funnel train --plot`: running training losses by step, evaluation AUCs and log losses by epoch, and the last
/// epoch's pCVR calibration curves (and p(stage | previous stage) curves for a model of more than two stages).
/// `loss_names` labels the losses of `history` and TrainResult::epochs' mean losses, in order; epochs without an
/// evaluation add no AUC point. Only builds the figure: nothing is written.
plot::Figure train_figure(const std::string& title, const std::vector<std::string>& loss_names,
                          const LossHistory& history, const TrainResult& result);

/// One model's runs in `funnel compare`.
struct CompareRuns {
  std::string model;                ///< the model's name, the x tick and legend entry
  std::vector<FunnelMetrics> runs;  ///< the evaluation metrics of each run (one per seed)
};
/// The AUC metrics a compare figure shows: (title, member), in order.
struct AucMetric {
  std::string title;  ///< the panel's title, e.g. "CVR AUC (clicked)"
  std::function<double(const FunnelMetrics&)> value;  ///< reads the metric from one run's results (NaN = absent)
};
/// `funnel compare --plot`: a panel per AUC metric (mean per model, ± the standard deviation over runs as error
/// bars when there are several) and pCVR calibration curves per model (mean predicted against observed rate per
/// equal-count bin, averaged over the runs) on clicked impressions and, with ground truth, over the entire space.
/// Non-finite metric values are left out of the means. Only builds the figure: nothing is written.
plot::Figure compare_figure(const std::string& title, const std::vector<CompareRuns>& models,
                            const std::vector<AucMetric>& aucs);

}  // namespace funnel::cli
