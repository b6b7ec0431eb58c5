#pragma once
/// @file
/// The binary cross-entropy of a probability, written once for `bce` (its mean) and `bce_rows` (per row). p is
/// clamped to p̃ = clamp(p, eps, 1 − eps), eps = 1e-7 for float and 1e-12 for double, so the loss is finite at
/// p = 0 and p = 1.
///   ℓ = −[y·log p̃ + (1 − y)·log(1 − p̃)]
///   dℓ/dp = (p̃ − y) / (p̃(1 − p̃)), 0 where p was clamped (the clamp is flat there)
#include <cmath>
#include <type_traits>

namespace funnel::detail {

/// eps of the clamp: 1e-7 for float, 1e-12 for double.
template <class T>
inline constexpr T kBceEps = std::is_same_v<T, double> ? T(1e-12) : T(1e-7);

/// p̃ = clamp(p, eps, 1 − eps).
template <class T>
inline T bce_clamp(T p) {
  const T eps = kBceEps<T>;
  return p < eps ? eps : (p > T(1) - eps ? T(1) - eps : p);
}

/// ℓ(p, y).
template <class T>
inline T bce_loss(T p, T y) {
  const T pc = bce_clamp(p);
  return -(y * std::log(pc) + (T(1) - y) * std::log1p(-pc));
}

/// g · dℓ/dp at p (g: the incoming gradient or the row's weight in a mean).
template <class T>
inline T bce_grad(T p, T y, T g) {
  const T eps = kBceEps<T>;
  return p >= eps && p <= T(1) - eps ? g * (p - y) / (p * (T(1) - p)) : T(0);
}

}  // namespace funnel::detail
