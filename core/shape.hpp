#pragma once
/// @file
/// Shapes with a symbolic batch dimension. A graph is built once and runs at any batch size.
#include <cstdint>
#include <string>
#include <vector>

namespace funnel {

/// A dimension: a non-negative extent, or kBatch for the symbolic batch dimension "B".
using Dim = std::int64_t;
inline constexpr Dim kBatch = -1;

struct Shape {
  std::vector<Dim> dims;

  Shape() = default;
  Shape(std::initializer_list<Dim> d) : dims(d) {}
  explicit Shape(std::vector<Dim> d) : dims(std::move(d)) {}

  std::size_t rank() const { return dims.size(); }
  Dim operator[](std::size_t i) const { return dims[i]; }
  bool operator==(const Shape&) const = default;
  bool has_batch() const;
  /// Number of elements once the batch dimension is `batch`.
  std::int64_t numel(std::int64_t batch) const;
  /// Concrete dimensions once the batch dimension is `batch`.
  std::vector<std::size_t> concrete(std::int64_t batch) const;
  /// "B×360", "18×200", "scalar".
  std::string str() const;
};

/// Concrete dimensions as "[360, 200]" (file formats and the messages about them).
std::string dims_str(const std::vector<std::int64_t>& dims);

}  // namespace funnel
