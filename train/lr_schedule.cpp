#include "train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace funnel {

double LrSchedule::at(double base, std::int64_t k) const {
  if (!active()) return base;
  // Fraction of the run done at step k: 0 at the first step, 1 at the last (steps - 1).
  const double span = static_cast<double>(std::max<std::int64_t>(steps - 1, 1));
  const double f = std::clamp(static_cast<double>(k) / span, 0.0, 1.0);
  const double keep = kind == LrScheduleKind::Cosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * f)) : 1.0 - f;
  return min_lr + (base - min_lr) * keep;
}

LrScheduleKind lr_schedule_kind(const std::string& name) {
  if (name == "constant") return LrScheduleKind::Constant;
  if (name == "cosine") return LrScheduleKind::Cosine;
  if (name == "linear") return LrScheduleKind::Linear;
  throw Error("learning-rate schedule: expected constant, cosine or linear, got '" + name + "'");
}

const char* lr_schedule_name(LrScheduleKind k) {
  switch (k) {
    case LrScheduleKind::Cosine: return "cosine";
    case LrScheduleKind::Linear: return "linear";
    case LrScheduleKind::Constant: break;
  }
  return "constant";
}

}  // namespace funnel
