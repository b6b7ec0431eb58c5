#pragma once
/// @file
/// Synthetic conversion-funnel data with ground truth, shaped like Ali-CCP (about 4% clicks, 0.2% click·conversion).
///
/// Generative model (fully determined by the seed):
///   - Every row has `fields` single-valued categorical fields. Field f's value v is drawn from a Zipf-like law over
///     `vocab_per_field` values (a few values are frequent, most are rare) and stored as the id f·vocab_per_field + v,
///     so every field owns its own block of embedding rows and the vocabulary is fields·vocab_per_field.
///   - Every (field, value) has one Gaussian latent effect per stage. The effects of one value share a common
///     component (correlation `shared` between stages), so values that attract clicks also tend to convert.
///   - Stage s's logit = intercept_s + Σ_f effect_s(f, value_f) + (stages ≥ 1) a few pairwise field interactions
///     + (stages ≥ 1) a term that rises with the stage-0 (click) effect sum. The intercepts are calibrated by
///     bisection over the generated rows so that the EXPECTED cumulative rates hit the targets: P(click) = ctr,
///     P(click·conversion) = ctcvr, and each later stage keeps `later_stage_ratio` of the previous stage's rate.
///   - true_prob[r, s] = sigmoid(logit_s): p(stage s | stage s-1 reached, x); stage 0 is p(click | x).
///   - entire_labels[r, s] ~ Bernoulli(true_prob[r, s]) for every row, whether or not stage s-1 happened (the
///     potential outcome); labels[r, 0] = entire_labels[r, 0] and labels[r, s] = labels[r, s-1] · entire_labels[r, s].
///
/// Because conversion effects correlate with click effects, clicked impressions are a biased sample for conversion:
/// a CVR model trained on clicked rows only sees the feature values that attract clicks, and sees rare values
/// hardly at all, which is what ESMM's entire-space training addresses.
///
/// Determinism: std::mt19937_64 and hand-written uniform/normal/Zipf transforms; identical output for a seed on a
/// given platform (libm's exp/log/cos may differ in the last bit across platforms).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "data/dataset.hpp"

namespace funnel {

/// The knobs of the synthetic generator (see the file's description); parse_synthetic_spec reads them from a spec.
struct SyntheticConfig {
  std::int64_t rows = 200000;  ///< rows to generate
  std::int64_t fields = 20;  ///< categorical fields per row
  std::int64_t vocab_per_field = 1000;  ///< the spec key `vocab`; total vocab = fields · vocab_per_field
  std::int64_t stages = 2;              ///< ≥ 2: click, conversion, then further funnel stages
  std::uint64_t seed = 1;  ///< the only source of randomness
  double ctr = 0.04;                 ///< target P(stage 0)
  double ctcvr = 0.002;              ///< target P(stage 1 reached) = P(click · conversion)
  double later_stage_ratio = 0.3;    ///< target P(stage s) = ratio · P(stage s-1) for s ≥ 2
  double zipf_exponent = 1.1;        ///< value frequency ∝ 1 / (rank + 1)^exponent
  double logit_std = 1.2;            ///< std of the per-stage sum of main effects (before interactions)
  double shared = 0.85;              ///< correlation of one value's effects across stages, in [0, 1]
  double interaction = 0.5;          ///< scale of the pairwise field interactions in stages ≥ 1 (0 = none)
  double click_coupling = 0.2;       ///< stages ≥ 1: + coupling · (stage-0 effect sum)² / logit_std (0 = none)
  /// The selection-bias knob (spec key `bias`), in [-1, 1]; NaN = not set. When set, it alone decides how click
  /// and conversion propensities are related: every value's later-stage effects have correlation exactly
  /// `selection_bias` with its click effect, the click effects are the same for every bias (so is the click
  /// model), and the click coupling is 0. bias = 0: clicked impressions are an unbiased sample for conversion (the stages are
  /// independent given x); bias near 1: the values that attract clicks also convert (strong selection bias);
  /// negative: they convert less. Cannot be combined with the keys shared and coupling.
  double selection_bias = std::numeric_limits<double>::quiet_NaN();
  bool has_selection_bias() const { return !std::isnan(selection_bias); }  ///< selection_bias is set
};

/// Check ranges; throws funnel::Error naming the field and the allowed range.
void validate(const SyntheticConfig& c);

/// Generate the data set described above. Throws funnel::Error for an invalid config.
Dataset make_synthetic(const SyntheticConfig& c);

/// Parse a command-line data spec: `synthetic` (defaults) or `synthetic:key=value,...` with keys
/// rows, fields, vocab (per field), seed, stages, ctr, ctcvr, ratio, zipf, logit_std, shared, interaction, coupling
/// and bias (the selection-bias knob; not together with shared or coupling). Unknown keys, repeated keys, bad numbers and
/// out-of-range values throw funnel::Error naming the key and the expected form.
SyntheticConfig parse_synthetic_spec(const std::string& spec);

/// True when `spec` names the synthetic generator (`synthetic` or `synthetic:...`).
bool is_synthetic_spec(const std::string& spec);

}  // namespace funnel
