#pragma once
/// @file
/// Evaluation metrics: exact ROC AUC with ties, GAUC, log loss, means, calibration, and the funnel report per stage
/// (for two stages: CTR / CVR / CTCVR, the paper's comparison of ESMM with its baselines), over a whole set in
/// memory or accumulated batch by batch (StreamingFunnelMetrics). docs/metrics.md describes every metric.
///
/// Conventions for every function below:
///   - `scores` are predicted probabilities (or any real scores for AUC); `labels` are 0/1 (AUC requires exactly 0
///     or 1; log loss accepts any label in [0, 1]).
///   - `mask` selects rows: empty = every row, otherwise the same length as `scores` and row i is used iff
///     mask[i] != 0 (e.g. the click labels, to evaluate CVR on clicked rows only).
///   - Mismatched lengths, non-finite scores and out-of-range labels throw funnel::Error naming the argument and
///     the row.
///   - Computations are in double precision.
#include <cstdint>
#include <limits>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace funnel {

/// Exact ROC AUC = P(score of a random positive > score of a random negative) + ½ P(equal): the Mann-Whitney U
/// statistic with tied scores sharing their average rank. O(n log n). Returns NaN when the selected rows hold
/// no positive or no negative (AUC is undefined); returns NaN for an empty selection too. Labels as floats or as
/// bytes, 0 or 1 either way.
///@{
double roc_auc(std::span<const float> scores, std::span<const float> labels, std::span<const std::uint8_t> mask = {});
double roc_auc(std::span<const float> scores, std::span<const std::uint8_t> labels,
               std::span<const std::uint8_t> mask = {});
///@}

/// Group AUC (as in the DIN paper's code): the AUC of each user's selected rows, averaged with weights = the user's
/// selected rows, over the users whose rows hold both classes. `users[i]` is row i's user key (negative: the row
/// has none and counts in no user's AUC). NaN when no user has both classes.
double group_auc(std::span<const float> scores, std::span<const float> labels, std::span<const std::int64_t> users,
                 std::span<const std::uint8_t> mask = {});

/// Mean binary cross-entropy −[y log p + (1−y) log(1−p)] (natural log) with p clamped to [eps, 1−eps]; scores must
/// lie in [0, 1]. NaN for an empty selection.
double log_loss(std::span<const float> probs, std::span<const float> labels, std::span<const std::uint8_t> mask = {},
                double eps = 1e-7);

/// Mean of the selected values (a mean prediction, or an observed rate when given labels). NaN for an empty
/// selection.
double mean_of(std::span<const float> values, std::span<const std::uint8_t> mask = {});

/// Per-row funnel predictions and labels for one evaluation set (all spans the same length, rows of the set).
struct FunnelInputs {
  /// Model outputs, probabilities.
  ///@{
  std::span<const float> pctr, pcvr, pctcvr;
  ///@}
  std::span<const float> click;               ///< click label 0/1
  std::span<const float> ctcvr;               ///< click·conversion label 0/1 (must be 0 where click is 0)
  std::span<const float> conversion_entire;   ///< optional: conversion drawn for every row (synthetic ground truth)
};

/// One bin of a calibration curve: its rows' mean predicted probability against their observed label rate.
struct CalibrationBin {
  /// The bin's mean prediction and its rows' positive rate (the curve's x and y)
  ///@{
  double mean_prob = 0, rate = 0;
  ///@}
  std::int64_t rows = 0;  ///< rows in the bin
};

/// The metrics of one funnel stage s (0 = click, 1 = conversion, ...).
///   reach: p(reach stage s) = the model's stage_probs[s] against label s, over all rows.
///   given previous ("cond"): p(stage s | stage s-1) = cond_probs[s] against label s, over the rows that reached
///     stage s-1 (all rows for s = 0, where it equals reach).
///   entire space (synthetic ground truth only, s >= 1): cond_probs[s] against stage s drawn for every row as if
///     stage s-1 had happened, over all rows.
/// GAUCs are NaN without user keys (has_users false) or when no user has both classes. AUCs are NaN when their rows
/// hold a single class; means and log losses are NaN over no rows.
struct StageMetrics {
  std::string name;                ///< "click", "conversion", "stage2", ... (stage_name)
  std::int64_t rows = 0;           ///< rows of the reach metrics (all)
  std::int64_t positives = 0;      ///< rows that reached the stage
  std::int64_t cond_rows = 0;      ///< rows that reached the previous stage
  /// Reach, over all rows: AUC, log loss, mean prediction, observed rate of the stage and group AUC.
  ///@{
  double auc = 0, logloss = 0, mean_pred = 0, rate = 0, gauc = 0;
  ///@}
  /// Given the previous stage, over the rows that reached it: AUC, log loss, mean prediction, observed rate, GAUC.
  ///@{
  double cond_auc = 0, cond_logloss = 0, cond_mean_pred = 0, cond_rate = 0, cond_gauc = 0;
  ///@}
  double cond_ece = 0;                          ///< 10 equal-count bins, on the rows that reached the previous stage
  std::vector<CalibrationBin> cond_calibration;  ///< its bins, lowest prediction first
  double cond_mean_pred_all = 0;                ///< mean of cond_probs[s] over all rows
  bool has_entire_space = false;  ///< the data had ground truth for this stage: the entire_* fields are set
  double entire_auc = std::numeric_limits<double>::quiet_NaN();  ///< AUC of cond_probs[s] over all rows (NaN: none)
  double entire_logloss = std::numeric_limits<double>::quiet_NaN();  ///< its log loss over all rows
  double entire_rate = std::numeric_limits<double>::quiet_NaN();  ///< the ground truth's rate over all rows
  double entire_ece = std::numeric_limits<double>::quiet_NaN();  ///< its ECE (10 equal-count bins) over all rows
  std::vector<CalibrationBin> entire_calibration;  ///< its calibration bins, lowest prediction first (empty: none)
};

/// A stage's name in reports: "click", "conversion", then "stage2", "stage3", ...
std::string stage_name(std::size_t s);

/// The funnel report. `stages` holds every stage the model declares; the named fields below are the first two
/// stages under their paper names (CTR = reach of stage 0, CTCVR = reach of stage 1, CVR = stage 1 given a click).
struct FunnelMetrics {
  std::vector<StageMetrics> stages;  ///< every stage's metrics, stage 0 (click) first
  bool has_users = false;  ///< the data had user keys: the GAUCs are computed
  /// Rows evaluated, clicked rows, and conversions (the ctcvr positives).
  ///@{
  std::int64_t rows = 0, clicks = 0, conversions = 0;
  ///@}
  double ctr_auc = 0;       ///< pctr vs click, all rows
  double cvr_auc = 0;       ///< pcvr vs conversion, clicked rows only (conversion = ctcvr label on clicked rows)
  double ctcvr_auc = 0;     ///< pctcvr vs ctcvr, all rows
  double ctr_logloss = 0;   ///< log loss of pctr vs click, all rows
  double cvr_logloss = 0;   ///< log loss of pcvr vs conversion, clicked rows only
  double ctcvr_logloss = 0; ///< log loss of pctcvr vs ctcvr, all rows
  /// All rows: mean pctr vs clicks / rows.
  ///@{
  double mean_pctr = 0, click_rate = 0;
  ///@}
  /// Clicked rows: mean pcvr vs conversions / clicks.
  ///@{
  double mean_pcvr_clicked = 0, cvr_rate = 0;
  ///@}
  /// All rows: mean pctcvr vs conversions / rows.
  ///@{
  double mean_pctcvr = 0, ctcvr_rate = 0;
  ///@}
  bool has_entire_space = false;  ///< the data had synthetic ground truth: the *_entire_space fields are set
  double cvr_auc_entire_space = std::numeric_limits<double>::quiet_NaN();  ///< pcvr vs conversion_entire, all rows
  double cvr_logloss_entire_space = std::numeric_limits<double>::quiet_NaN();  ///< the same as a log loss
  // Calibration of pCVR. On clicked rows against their conversions; over the entire space (synthetic ground truth)
  // the mean pCVR over all rows against the rate of conversion_entire over all rows.
  double cvr_ece = 0;  ///< expected calibration error of pcvr on clicked rows (10 equal-count bins)
  double mean_pcvr_all = 0;  ///< mean pcvr over all rows
  double cvr_rate_entire_space = std::numeric_limits<double>::quiet_NaN();  ///< mean conversion_entire, all rows
  double cvr_ece_entire_space = std::numeric_limits<double>::quiet_NaN();   ///< ECE of pcvr vs conversion_entire
  /// The calibration curves behind the two ECEs (10 equal-count bins, lowest pCVR first); the entire-space one is
  /// empty without ground truth.
  ///@{
  std::vector<CalibrationBin> cvr_calibration, cvr_calibration_entire_space;
  ///@}
};

/// Expected calibration error: rows sorted by score, cut into `bins` groups of (nearly) equal count, and
/// Σ_b (n_b / n) · |mean score_b − mean label_b|. Equal-count bins suit the small probabilities of CVR. NaN for an
/// empty selection.
double expected_calibration_error(std::span<const float> probs, std::span<const float> labels,
                                  std::span<const std::uint8_t> mask = {}, int bins = 10);
/// The bins of that computation: min(bins, selected rows) groups, lowest scores first. Empty for an empty selection.
std::vector<CalibrationBin> calibration_bins(std::span<const float> probs, std::span<const float> labels,
                                             std::span<const std::uint8_t> mask = {}, int bins = 10);
/// The expected calibration error of bins made by calibration_bins (or the streaming metrics). NaN when empty.
double expected_calibration_error(const std::vector<CalibrationBin>& bins);

/// Every metric above, also as the report's two stages; AUCs are NaN when their selection has a single class (see
/// roc_auc). `users` (optional): each row's user key, for the GAUCs.
FunnelMetrics evaluate_funnel(const FunnelInputs& in, std::span<const std::int64_t> users = {});

/// Fills the named two-stage fields of `m` (ctr_*, cvr_*, ctcvr_*, clicks, conversions) from m.stages.
void set_named_metrics(FunnelMetrics& m);

/// Exact whole-set funnel metrics of any number of stages, accumulated batch by batch: 4 bytes per row per AUC
/// (the scores of the positives and of the negatives, sorted at the end) — per stage 4 bytes a row for reach, 4 per
/// row that reached the previous stage (none for stage 0, whose conditional is its reach), 4 more a row with
/// synthetic ground truth: about 0.35 GB for the 43M rows of Ali-CCP's two-stage test split. With user keys every
/// GAUC keeps 16 bytes per row it covers. Equal to evaluate_funnel() on the same rows except for the calibration
/// errors' order of tied scores (here: in the bins, tied negatives before tied positives). Not thread-safe: one
/// thread adds.
class StreamingFunnelMetrics {
 public:
  /// One batch of n rows, per stage s (all vectors of the same length S, the same in every call): reach[s] and
  /// cond[s] predictions, labels[s] (cumulative 0/1 floats: a row that reached s reached s-1), entire[s] the
  /// synthetic ground truth of stage s (entire empty, or entire[s] null for s = 0: none). `users` (row user keys)
  /// may be null, and must be null in every call or in none; likewise the ground truth.
  struct Batch {
    std::int64_t n = 0;  ///< rows in the batch
    /// Per stage, n values each: the reach and conditional predictions (probabilities in [0, 1]), the labels and
    /// the ground truth (see above). Borrowed for the call only.
    ///@{
    std::vector<const float*> reach, cond, labels, entire;
    ///@}
    const std::int64_t* users = nullptr;  ///< n user keys (negative: none for that row), or null
  };
  /// Accumulates a batch. Throws funnel::Error on a prediction that is negative, NaN or infinite, a label other
  /// than 0 or 1, a row that reached a stage without the previous one, or a batch whose stage count, ground truth
  /// or user keys differ from the first batch's.
  void add(const Batch& b);
  /// The two-stage form: predictions and labels (ctcvr must be 0 where click is 0); `entire` (the synthetic
  /// conversion of every row) may be null.
  void add(const float* pctr, const float* pcvr, const float* pctcvr, const float* click, const float* ctcvr,
           const float* entire, std::int64_t n);
  /// The metrics of every row added (and merged). Consumes the accumulated scores (it sorts and frees them): call
  /// it once, after the last add or merge. With no rows: the two-stage report, NaN throughout.
  FunnelMetrics result();
  /// Makes these the metrics of the rows of several processes together. `gather(bytes)` must replace `bytes` by
  /// the concatenation of every process's `bytes` in process order, the same on every process (an all-gather);
  /// it is called the same number of times on every process. The AUCs are exact over the union; the sums are
  /// added in process order.
  void merge(const std::function<void(std::vector<unsigned char>&)>& gather);

 private:
  struct Auc {
    std::vector<std::uint32_t> pos, neg;  // score bits (non-negative floats order like their bits)
    void add(float score, bool positive);
    double value();                       // sorts pos and neg
    std::vector<CalibrationBin> bins(int bins) const;  // equal-count calibration bins, after value()
    void clear();
  };
  struct Gauc {
    /// One scored row of a group AUC (internal).
    struct Entry {
      std::int64_t user;  ///< the row's user key
      /// The score's float bits, and 1 for a positive row.
      ///@{
      std::uint32_t bits, positive;
      ///@}
    };
    std::vector<Entry> rows;
    double value();  // sorts rows
  };
  struct Sum {
    double loss = 0, pred = 0, label = 0;
    std::int64_t n = 0;
    void add(double p, double y);
  };
  struct Stage {
    Auc reach, cond, entire;
    Gauc reach_g, cond_g;
    Sum reach_s, cond_s, entire_s;  // entire_s without ground truth: the mean cond prediction over all rows
  };
  void start(std::size_t stages, bool entire, bool users);
  std::vector<Stage> st_;
  bool has_entire_ = false, has_users_ = false;
  std::int64_t rows_ = 0;
};

}  // namespace funnel
