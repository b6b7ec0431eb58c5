#pragma once
/// @file
/// Error types thrown by the library. The library never prints or exits; tools catch these.
#include <stdexcept>
#include <string>

namespace funnel {

/// Base of every error funnel throws; what() is the complete message (file, line, field or node where known).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A shape rule rejected its inputs while the graph was being built.
struct ShapeError : Error {
  using Error::Error;
};

/// A graph was used in a way it does not support (unknown name, cycle, bad attribute, ...).
struct GraphError : Error {
  using Error::Error;
};

/// A forward pass produced NaN or Inf; `node` names the first node (in topological order) that did.
struct NonFiniteError : Error {
  /// An error about node `node_name` with message `what`.
  NonFiniteError(std::string node_name, const std::string& what)
      : Error(what), node(std::move(node_name)) {}
  std::string node;  ///< the full name of the node whose value was not finite
};

}  // namespace funnel
