#pragma once
/// @file
/// A generator of raw Ali-CCP release files (sample_skeleton_{split}.csv + common_features_{split}.csv) with the
/// release's proportions, for benchmarks at scale: about 0.73M users per 42M impressions, 10-20 own features per
/// impression (ad/item, combination and context fields, one multi-valued), users with tens to hundreds of
/// multi-valued features (the *_14 behaviour fields), CTR about 4% and conversions about 0.5% of clicks, with
/// labels that depend on user, item and context so a model has something to learn. Deterministic for a seed.
/// Impressions of one user are consecutive (runs of random length), as in the release. The train and test splits
/// of one seed share one world (user u and item i are the same in both, with the same effects on the labels); each
/// split draws its own impressions of it, so a model trained on one split is meant to be evaluated on the other.
#include <cstdint>
#include <string>

namespace funnel {

/// The size, seed and split of a generated Ali-CCP-like release.
struct AliccpSynthConfig {
  std::int64_t rows = 1000000;      ///< skeleton rows of the split
  std::int64_t users = 0;           ///< common-feature rows; 0 = rows * 0.73 / 42 (at least 1)
  std::uint64_t seed = 1;  ///< the world and the draws; the same seed gives the same files
  std::string split = "train";      ///< file names: ..._train.csv or ..._test.csv
};

/// What write_aliccp_synth wrote.
struct AliccpSynthReport {
  /// @{
  /// Skeleton rows, users (common-feature rows), clicked rows and converted rows written.
  std::int64_t rows = 0, users = 0, clicks = 0, conversions = 0;
  /// @}
  /// @{
  /// Sizes of the two files.
  std::int64_t skeleton_bytes = 0, common_bytes = 0;
  /// @}
};

/// Writes DIR/sample_skeleton_{split}.csv and DIR/common_features_{split}.csv. Refuses (funnel::Error) when either
/// exists; each file is written to a temporary name in DIR and renamed when complete; every write error is an error.
AliccpSynthReport write_aliccp_synth(const AliccpSynthConfig& c, const std::string& dir);

}  // namespace funnel
