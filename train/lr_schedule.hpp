#pragma once
/// @file
/// Learning-rate schedules over one training run. The optimizer keeps one learning rate (Optimizer::set_lr); the
/// training loop sets it from the schedule before every step and puts the base rate back when the run ends, so a
/// checkpoint records the configured rate, not the last scheduled one.
///
/// Why decay at all: with Adam and rare positives (conversions at ~2e-4 of impressions), every weight moves by about
/// the learning rate per step whatever the size of its gradient, so the towers' predictions wander around the
/// calibrated point between conversions; the run's final parameters are one sample of that wander. Decaying the
/// rate towards the end of the run shrinks the wander, so the saved model is calibrated, not just its average.
#include <cstdint>
#include <string>

namespace funnel {

/// Shape of the learning rate over a run.
enum class LrScheduleKind {
  Constant,  ///< the base rate at every step
  Cosine,    ///< from the base rate down to `min_lr` along half a cosine
  Linear,    ///< from the base rate down to `min_lr` in a straight line
};

/// A learning-rate schedule: the rate of step k (0-based, counted in this run) out of `steps`.
struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::Constant;  ///< the shape: constant (the default), cosine or linear decay
  double min_lr = 0.0;     ///< the rate reached at the last step (Cosine, Linear)
  std::int64_t steps = 0;  ///< the run's length in steps; 0 lets the Trainer count it from the data

  /// True when the rate changes over the run.
  bool active() const { return kind != LrScheduleKind::Constant; }
  /// The rate of step `k` (0-based) given the base rate `base`; past the last step it stays at the last value.
  double at(double base, std::int64_t k) const;
};

/// Parses "constant", "cosine" or "linear"; throws funnel::Error naming the allowed values otherwise.
LrScheduleKind lr_schedule_kind(const std::string& name);
/// The name of a schedule kind (as parsed by lr_schedule_kind).
const char* lr_schedule_name(LrScheduleKind k);

}  // namespace funnel
