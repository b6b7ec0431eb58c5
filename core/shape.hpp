#pragma once
/// @file
/// Shapes with a symbolic batch dimension. A graph is built once and runs at any batch size.
#include <cstdint>
#include <string>
#include <vector>

namespace funnel {

/// A dimension: a non-negative extent, or kBatch for the symbolic batch dimension "B".
using Dim = std::int64_t;
inline constexpr Dim kBatch = -1;  ///< the batch dimension, resolved when a graph runs

/// The shape of a node's value: its dimensions, outermost first. {} is a scalar; kBatch may appear (as the first
/// dimension, by convention) and stands for the batch size.
struct Shape {
  std::vector<Dim> dims;  ///< the dimensions, outermost first

  Shape() = default;
  /// @{
  /// A shape with dimensions `d`, e.g. Shape{kBatch, 360}.
  Shape(std::initializer_list<Dim> d) : dims(d) {}
  explicit Shape(std::vector<Dim> d) : dims(std::move(d)) {}

  /// @}
  /// Number of dimensions (0 for a scalar).
  std::size_t rank() const { return dims.size(); }
  /// Dimension i (unchecked; i < rank()).
  Dim operator[](std::size_t i) const { return dims[i]; }
  /// Same dimensions, kBatch matching only kBatch.
  bool operator==(const Shape&) const = default;
  /// True when some dimension is kBatch.
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
