// Whole-set metrics: exact AUC with ties (hand-computed and against an O(n²) pairwise count), masks, the
// one-class case, log loss, means and the funnel report.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "train/metrics.hpp"

using namespace funnel;

namespace {

using F = std::vector<float>;
using M = std::vector<std::uint8_t>;

// P(positive > negative) + ½ P(tie) by enumerating every selected (positive, negative) pair.
double brute_auc(const F& s, const F& y, const M& mask) {
  double wins = 0, pairs = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((!mask.empty() && !mask[i]) || y[i] != 1.0f) continue;
    for (std::size_t j = 0; j < s.size(); ++j) {
      if ((!mask.empty() && !mask[j]) || y[j] != 0.0f) continue;
      pairs += 1;
      wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    }
  }
  return wins / pairs;
}

}  // namespace

TEST_CASE("AUC on hand-computed examples with ties", "[train][metrics]") {
  CHECK(roc_auc(F{0.1f, 0.4f, 0.35f, 0.8f}, F{0, 0, 1, 1}) == Approx(0.75));
  CHECK(roc_auc(F{0.3f, 0.3f, 0.3f, 0.3f}, F{0, 1, 0, 1}) == Approx(0.5));
  CHECK(roc_auc(F{0.1f, 0.2f, 0.8f, 0.9f}, F{0, 0, 1, 1}) == Approx(1.0));
  CHECK(roc_auc(F{0.1f, 0.2f, 0.8f, 0.9f}, F{1, 1, 0, 0}) == Approx(0.0));
  // Positives {0.5, 0.9}, negatives {0.5, 0.2}: pairs 0.5, 1, 1, 1 -> 3.5 / 4.
  CHECK(roc_auc(F{0.5f, 0.5f, 0.2f, 0.9f}, F{1, 0, 0, 1}) == Approx(0.875));
  // Order of rows does not matter.
  CHECK(roc_auc(F{0.9f, 0.2f, 0.5f, 0.5f}, F{1, 0, 0, 1}) == Approx(0.875));
  // Scores need not be probabilities.
  CHECK(roc_auc(F{-3.0f, 7.0f, 2.0f}, F{0, 1, 0}) == Approx(1.0));
}

TEST_CASE("AUC with a mask uses the selected rows only", "[train][metrics]") {
  const F s{0.1f, 0.4f, 0.35f, 0.8f, 0.9f, 0.05f};
  const F y{0, 0, 1, 1, 0, 1};
  // Rows 4 and 5 would flip the ranking; masked out they leave the 0.75 of the first four rows.
  CHECK(roc_auc(s, y, M{1, 1, 1, 1, 0, 0}) == Approx(0.75));
  CHECK(roc_auc(s, y) == Approx(brute_auc(s, y, {})));
  CHECK(roc_auc(s, y) != Approx(0.75));
  CHECK(roc_auc(s, y, M{}) == Approx(roc_auc(s, y)));
}

TEST_CASE("AUC is NaN when only one class is selected", "[train][metrics]") {
  CHECK(std::isnan(roc_auc(F{0.1f, 0.9f}, F{1, 1})));
  CHECK(std::isnan(roc_auc(F{0.1f, 0.9f}, F{0, 0})));
  CHECK(std::isnan(roc_auc(F{}, F{})));
  CHECK(std::isnan(roc_auc(F{0.1f, 0.9f, 0.5f}, F{0, 1, 1}, M{0, 1, 1})));
  CHECK(std::isnan(roc_auc(F{0.1f, 0.9f}, F{0, 1}, M{0, 0})));
}

TEST_CASE("AUC matches the pairwise definition on random data with many ties", "[train][metrics]") {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    const std::size_t n = 50 + static_cast<std::size_t>(rng() % 400);
    const int levels = 1 + static_cast<int>(rng() % 12);  // few distinct scores: many ties
    F s(n), y(n);
    M mask(n), ylab(n);
    for (std::size_t i = 0; i < n; ++i) {
      s[i] = static_cast<float>(rng() % static_cast<std::uint64_t>(levels)) / 7.0f;
      // Labels correlated with the score, so AUCs away from 0.5 are exercised too.
      y[i] = (rng() % 100) < 20 + 5 * static_cast<std::uint64_t>(s[i] * 7.0f) ? 1.0f : 0.0f;
      ylab[i] = static_cast<std::uint8_t>(y[i]);
      mask[i] = rng() % 3 != 0;
    }
    INFO("trial " << trial << " n " << n << " levels " << levels);
    const double full = brute_auc(s, y, {}), masked = brute_auc(s, y, mask);
    if (std::isnan(full)) continue;
    CHECK(roc_auc(s, y) == Approx(full).margin(1e-12));
    CHECK(roc_auc(s, ylab) == Approx(full).margin(1e-12));
    if (!std::isnan(masked)) {
      CHECK(roc_auc(s, y, mask) == Approx(masked).margin(1e-12));
      CHECK(roc_auc(s, ylab, mask) == Approx(masked).margin(1e-12));
    }
  }
}

TEST_CASE("metrics reject malformed input with the argument and row", "[train][metrics]") {
  CHECK_THROWS_WITH(roc_auc(F{0.1f, 0.2f}, F{0}), Catch::Contains("labels") && Catch::Contains("2"));
  CHECK_THROWS_WITH(roc_auc(F{0.1f, 0.2f}, F{0, 1}, M{1}), Catch::Contains("mask"));
  CHECK_THROWS_WITH(roc_auc(F{0.1f, NAN}, F{0, 1}), Catch::Contains("scores[1]"));
  CHECK_THROWS_WITH(roc_auc(F{0.1f, 0.2f}, F{0, 0.5f}), Catch::Contains("labels[1]"));
  CHECK_THROWS_WITH(roc_auc(F{0.1f, 0.2f}, M{0, 2}), Catch::Contains("labels[1]"));
  CHECK_THROWS_WITH(log_loss(F{0.1f, 1.5f}, F{0, 1}), Catch::Contains("probs[1]"));
  CHECK_THROWS_WITH(log_loss(F{0.1f, 0.5f}, F{0, -1}), Catch::Contains("labels[1]"));
  CHECK_THROWS_WITH(mean_of(F{0.1f, 0.5f}, M{1, 1, 1}), Catch::Contains("mask"));
  // A masked-out bad score is not looked at.
  CHECK(roc_auc(F{0.1f, NAN, 0.9f}, F{0, 1, 1}, M{1, 0, 1}) == Approx(1.0));
}

TEST_CASE("log loss, clamping and means", "[train][metrics]") {
  CHECK(log_loss(F{0.8f}, F{1}) == Approx(-std::log(0.8)).epsilon(1e-6));
  CHECK(log_loss(F{0.8f, 0.25f}, F{1, 0}) == Approx(-(std::log(0.8) + std::log(0.75)) / 2).epsilon(1e-6));
  // p = 0 for a positive is clamped, not infinite.
  CHECK(log_loss(F{0.0f}, F{1}) == Approx(-std::log(1e-7)).epsilon(1e-6));
  CHECK(log_loss(F{1.0f}, F{0}) == Approx(-std::log(1e-7)).epsilon(1e-3));
  CHECK(log_loss(F{0.0f}, F{1}, {}, 1e-3) == Approx(-std::log(1e-3)).epsilon(1e-6));
  CHECK(log_loss(F{0.8f, 0.0f}, F{1, 1}, M{1, 0}) == Approx(-std::log(0.8)).epsilon(1e-6));
  CHECK(std::isnan(log_loss(F{}, F{})));
  CHECK_THROWS_WITH(log_loss(F{0.5f}, F{1}, {}, 0.0), Catch::Contains("eps"));

  CHECK(mean_of(F{1, 2, 3, 6}) == Approx(3.0));
  CHECK(mean_of(F{1, 2, 3, 6}, M{0, 1, 0, 1}) == Approx(4.0));
  CHECK(std::isnan(mean_of(F{1, 2}, M{0, 0})));
}

TEST_CASE("evaluate_funnel computes CVR on clicked rows and CTR/CTCVR on all rows", "[train][metrics]") {
  //            row:   0     1     2     3     4     5
  const F click{1, 1, 1, 0, 0, 1};
  const F ctcvr{1, 0, 0, 0, 0, 1};
  const F pctr{0.9f, 0.6f, 0.7f, 0.2f, 0.65f, 0.5f};
  // Among clicked rows {0,1,2,5}: conversions 0 and 5; pcvr ranks 5 > 1 > 0 > 2 -> positives beat
  // (0: {2}) and (5: {1, 2}) -> 3 / 4.
  const F pcvr{0.3f, 0.4f, 0.1f, 0.9f, 0.95f, 0.5f};
  F pctcvr(6);
  for (std::size_t i = 0; i < 6; ++i) pctcvr[i] = pctr[i] * pcvr[i];
  const FunnelMetrics m = evaluate_funnel({pctr, pcvr, pctcvr, click, ctcvr, {}});
  CHECK(m.rows == 6);
  CHECK(m.clicks == 4);
  CHECK(m.conversions == 2);
  CHECK(m.cvr_auc == Approx(0.75));
  // Over all rows, the unclicked rows 3 and 4 (high pcvr, no conversion) would lower it.
  CHECK(roc_auc(pcvr, ctcvr) < 0.75);
  CHECK(m.ctr_auc == Approx(roc_auc(pctr, click)));
  CHECK(m.ctr_auc == Approx(brute_auc(pctr, click, {})));
  CHECK(m.ctcvr_auc == Approx(brute_auc(pctcvr, ctcvr, {})));
  CHECK(m.ctr_logloss == Approx(log_loss(pctr, click)));
  CHECK(m.ctcvr_logloss == Approx(log_loss(pctcvr, ctcvr)));
  CHECK(m.cvr_logloss == Approx(log_loss(pcvr, ctcvr, M{1, 1, 1, 0, 0, 1})));
  CHECK(m.mean_pctr == Approx((0.9 + 0.6 + 0.7 + 0.2 + 0.65 + 0.5) / 6).epsilon(1e-6));
  CHECK(m.click_rate == Approx(4.0 / 6));
  CHECK(m.mean_pcvr_clicked == Approx((0.3 + 0.4 + 0.1 + 0.5) / 4).epsilon(1e-6));
  CHECK(m.cvr_rate == Approx(0.5));
  CHECK(m.ctcvr_rate == Approx(2.0 / 6));
  CHECK(m.mean_pctcvr == Approx(mean_of(pctcvr)));
  CHECK_FALSE(m.has_entire_space);
  CHECK(std::isnan(m.cvr_auc_entire_space));

  SECTION("with entire-space conversion labels") {
    const F conv{1, 0, 0, 1, 0, 1};  // the unclicked row 3 would have converted
    const FunnelMetrics e = evaluate_funnel({pctr, pcvr, pctcvr, click, ctcvr, conv});
    CHECK(e.has_entire_space);
    CHECK(e.cvr_auc_entire_space == Approx(brute_auc(pcvr, conv, {})));
    CHECK(e.cvr_logloss_entire_space == Approx(log_loss(pcvr, conv)));
    CHECK(e.cvr_auc == Approx(m.cvr_auc));
  }
}

TEST_CASE("evaluate_funnel rejects inconsistent inputs", "[train][metrics]") {
  const F p{0.5f, 0.5f};
  CHECK_THROWS_WITH(evaluate_funnel({p, p, p, F{0, 1}, F{1, 0}, {}}),
                    Catch::Contains("ctcvr[0]") && Catch::Contains("click"));
  CHECK_THROWS_WITH(evaluate_funnel({p, F{0.5f}, p, F{0, 1}, F{0, 1}, {}}), Catch::Contains("pcvr"));
  CHECK_THROWS_WITH(evaluate_funnel({p, p, p, F{0, 2}, F{0, 0}, {}}), Catch::Contains("click[1]"));
  CHECK_THROWS_WITH(evaluate_funnel({p, p, p, F{0, 1}, F{0, 1}, F{1}}), Catch::Contains("conversion_entire"));
  // No clicks at all: CVR metrics are undefined, the rest are still reported.
  const FunnelMetrics m = evaluate_funnel({p, p, p, F{0, 0}, F{0, 0}, {}});
  CHECK(std::isnan(m.cvr_auc));
  CHECK(std::isnan(m.cvr_logloss));
  CHECK(std::isnan(m.ctr_auc));
  CHECK(m.ctr_logloss == Approx(std::log(2.0)));
}

TEST_CASE("expected calibration error by hand", "[train][metrics][ece]") {
  // Two equal-count bins: scores {0.1, 0.1} with labels {0, 0} (|0.1 − 0| = 0.1) and {0.5, 0.5} with {1, 0} (0).
  const std::vector<float> p{0.5f, 0.1f, 0.1f, 0.5f}, y{1, 0, 0, 0};
  CHECK(expected_calibration_error(p, y, {}, 2) == Approx(0.05).epsilon(1e-6));
  // One bin: |mean p − mean y| = |0.3 − 0.25|.
  CHECK(expected_calibration_error(p, y, {}, 1) == Approx(0.05).epsilon(1e-6));
  // Calibrated within each bin -> 0; a mask keeps only some rows.
  const std::vector<float> p2{0.0f, 0.0f, 1.0f, 1.0f, 0.9f}, y2{0, 0, 1, 1, 0};
  const std::vector<std::uint8_t> mask{1, 1, 1, 1, 0};
  CHECK(expected_calibration_error(p2, y2, mask, 2) == 0.0);
  CHECK(expected_calibration_error(p2, y2, {}, 1) == Approx(0.18).epsilon(1e-6));
  CHECK(std::isnan(expected_calibration_error({}, {}, {}, 10)));
  CHECK_THROWS(expected_calibration_error(p, y2, {}, 2));
}
