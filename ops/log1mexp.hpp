#pragma once
/// @file
/// log(1 − eᵃ) for a log-probability a ≤ 0, accurate over the whole range (the two-branch form): near a = 0,
/// where 1 − eᵃ cancels, log(−expm1(a)); below −log 2, where eᵃ is small, log1p(−exp(a)). a = 0 gives −∞ (the
/// probability is 1) and a > 0 NaN (not a probability). Shared by the losses on log-probabilities.
#include <cmath>

namespace funnel::logspace {

/// log(1 − eᵃ) for a ≤ 0 (see the file's description): log of the complement of the probability e^a.
template <class T>
inline T log1mexp(T a) {
  return a > -T(0.6931471805599453) ? std::log(-std::expm1(a)) : std::log1p(-std::exp(a));
}

/// d/da log(1 − eᵃ) = −eᵃ / (1 − eᵃ) = −1 / expm1(−a).
template <class T>
inline T dlog1mexp(T a) {
  return T(-1) / std::expm1(-a);
}

}  // namespace funnel::logspace
