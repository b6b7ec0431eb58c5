#pragma once
// Small helpers shared by the op tests: fill a tensor from a list, read one back as a vector, random operands.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "ops/op.hpp"

namespace funnel::testing {

// Overwrite t's elements (row-major) with `v`; the sizes must agree.
template <class T>
void fill(Tensor<T>& t, std::initializer_list<double> v) {
  REQUIRE(t.size() == v.size());
  std::size_t i = 0;
  for (double x : v) t.data()[i++] = static_cast<T>(x);
}

template <class T>
std::vector<double> values(const Tensor<T>& t) {
  return std::vector<double>(t.data(), t.data() + t.size());
}

// Elementwise |a - b| <= tol, with a message naming the first mismatch.
inline void check_near(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol);
  }
}

// `n` values uniform in [-1, 1) drawn from `seed`.
template <class T>
std::vector<T> random_vec(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<T> u(T(-1), T(1));
  std::vector<T> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

}  // namespace funnel::testing
