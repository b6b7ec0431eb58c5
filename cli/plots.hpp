#pragma once
// The pictures of `funnel compare --plot` and `funnel train --plot` (SVG through viz/plot.*).
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

// Running training losses, thinned as they come: at most `cap` points are kept (when full, every other point is
// dropped and only every 2nd, 4th, ... step is recorded from then on), so memory does not grow with the rows.
class LossHistory {
 public:
  explicit LossHistory(std::size_t cap = 512) : cap_(cap < 4 ? 4 : cap) {}
  void add(std::int64_t step, const std::vector<double>& losses);
  const std::vector<double>& steps() const { return steps_; }
  const std::vector<std::vector<double>>& losses() const { return losses_; }  // losses_[k][point]

 private:
  std::size_t cap_;
  std::int64_t stride_ = 1;
  std::vector<double> steps_;
  std::vector<std::vector<double>> losses_;
};

// `funnel train --plot`: running training losses by step, evaluation AUCs and log losses by epoch, and the last
// epoch's pCVR calibration curves.
plot::Figure train_figure(const std::string& title, const std::vector<std::string>& loss_names,
                          const LossHistory& history, const TrainResult& result);

// One model's runs in `funnel compare`.
struct CompareRuns {
  std::string model;
  std::vector<FunnelMetrics> runs;
};
// The AUC metrics a compare figure shows: (title, member), in order.
struct AucMetric {
  std::string title;
  std::function<double(const FunnelMetrics&)> value;
};
// `funnel compare --plot`: a panel per AUC metric (mean per model, ± the standard deviation over runs as error
// bars when there are several) and pCVR calibration curves per model (mean predicted against observed rate per
// equal-count bin, averaged over the runs) on clicked impressions and, with ground truth, over the entire space.
plot::Figure compare_figure(const std::string& title, const std::vector<CompareRuns>& models,
                            const std::vector<AucMetric>& aucs);

}  // namespace funnel::cli
