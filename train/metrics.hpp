#pragma once
// Evaluation metrics over a whole evaluation set (not streaming): exact ROC AUC with ties, log loss, means, and
// the funnel report (CTR / CVR / CTCVR) used to compare ESMM with its baselines.
//
// Conventions for every function below:
//   - `scores` are predicted probabilities (or any real scores for AUC); `labels` are 0/1 (AUC requires exactly 0
//     or 1; log loss accepts any label in [0, 1]).
//   - `mask` selects rows: empty = every row, otherwise the same length as `scores` and row i is used iff
//     mask[i] != 0 (e.g. the click labels, to evaluate CVR on clicked rows only).
//   - Mismatched lengths, non-finite scores and out-of-range labels throw funnel::Error naming the argument and
//     the row.
//   - Computations are in double precision.
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace funnel {

// Exact ROC AUC = P(score of a random positive > score of a random negative) + ½ P(equal): the Mann-Whitney U
// statistic with tied scores sharing their average rank. O(n log n). Returns NaN when the selected rows hold
// no positive or no negative (AUC is undefined); returns NaN for an empty selection too.
double roc_auc(std::span<const float> scores, std::span<const float> labels, std::span<const std::uint8_t> mask = {});
double roc_auc(std::span<const float> scores, std::span<const std::uint8_t> labels,
               std::span<const std::uint8_t> mask = {});

// Mean binary cross-entropy −[y log p + (1−y) log(1−p)] with p clamped to [eps, 1−eps]; scores must lie in [0, 1].
// NaN for an empty selection.
double log_loss(std::span<const float> probs, std::span<const float> labels, std::span<const std::uint8_t> mask = {},
                double eps = 1e-7);

// Mean of the selected values (a mean prediction, or an observed rate when given labels). NaN for an empty
// selection.
double mean_of(std::span<const float> values, std::span<const std::uint8_t> mask = {});

// Per-row funnel predictions and labels for one evaluation set (all spans the same length, rows of the set).
struct FunnelInputs {
  std::span<const float> pctr, pcvr, pctcvr;  // model outputs, probabilities
  std::span<const float> click;               // click label 0/1
  std::span<const float> ctcvr;               // click·conversion label 0/1 (must be 0 where click is 0)
  std::span<const float> conversion_entire;   // optional: conversion drawn for every row (synthetic ground truth)
};

// One bin of a calibration curve: its rows' mean predicted probability against their observed label rate.
struct CalibrationBin {
  double mean_prob = 0, rate = 0;
  std::int64_t rows = 0;
};

struct FunnelMetrics {
  std::int64_t rows = 0, clicks = 0, conversions = 0;  // conversions = ctcvr positives
  double ctr_auc = 0;       // pctr vs click, all rows
  double cvr_auc = 0;       // pcvr vs conversion, clicked rows only (conversion = ctcvr label on clicked rows)
  double ctcvr_auc = 0;     // pctcvr vs ctcvr, all rows
  double ctr_logloss = 0;   // all rows
  double cvr_logloss = 0;   // clicked rows only
  double ctcvr_logloss = 0; // all rows
  double mean_pctr = 0, click_rate = 0;          // all rows
  double mean_pcvr_clicked = 0, cvr_rate = 0;    // clicked rows: mean pcvr vs conversions / clicks
  double mean_pctcvr = 0, ctcvr_rate = 0;        // all rows
  bool has_entire_space = false;
  double cvr_auc_entire_space = std::numeric_limits<double>::quiet_NaN();  // pcvr vs conversion_entire, all rows
  double cvr_logloss_entire_space = std::numeric_limits<double>::quiet_NaN();
  // Calibration of pCVR. On clicked rows against their conversions; over the entire space (synthetic ground truth)
  // the mean pCVR over all rows against the rate of conversion_entire over all rows.
  double cvr_ece = 0;  // expected calibration error of pcvr on clicked rows (10 equal-count bins)
  double mean_pcvr_all = 0;  // all rows
  double cvr_rate_entire_space = std::numeric_limits<double>::quiet_NaN();  // mean conversion_entire, all rows
  double cvr_ece_entire_space = std::numeric_limits<double>::quiet_NaN();   // pcvr vs conversion_entire, all rows
  // The calibration curves behind the two ECEs (10 equal-count bins, lowest pCVR first); the entire-space one is
  // empty without ground truth.
  std::vector<CalibrationBin> cvr_calibration, cvr_calibration_entire_space;
};

// Expected calibration error: rows sorted by score, cut into `bins` groups of (nearly) equal count, and
// Σ_b (n_b / n) · |mean score_b − mean label_b|. Equal-count bins suit the small probabilities of CVR. NaN for an
// empty selection.
double expected_calibration_error(std::span<const float> probs, std::span<const float> labels,
                                  std::span<const std::uint8_t> mask = {}, int bins = 10);
// The bins of that computation: min(bins, selected rows) groups, lowest scores first. Empty for an empty selection.
std::vector<CalibrationBin> calibration_bins(std::span<const float> probs, std::span<const float> labels,
                                             std::span<const std::uint8_t> mask = {}, int bins = 10);
// The expected calibration error of bins made by calibration_bins (or the streaming metrics). NaN when empty.
double expected_calibration_error(const std::vector<CalibrationBin>& bins);

// Every metric above; AUCs are NaN when their selection has a single class (see roc_auc).
FunnelMetrics evaluate_funnel(const FunnelInputs& in);

}  // namespace funnel
