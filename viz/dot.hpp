#pragma once
/// @file
/// Graphviz DOT export of a Graph: one cluster per name scope (nested scopes nest), node kinds styled apart
/// (inputs, ids, parameters, ops, outputs, losses), labels with name, op, attributes and shape, edges labelled
/// with the shape that flows along them, and a legend.
///
/// With a gradient-flow analysis (autodiff/gradflow.hpp) every parameter and edge is coloured by the losses whose
/// gradient reaches it. With `backward`, gradient nodes ∂L/∂x are drawn next to every node that gets a gradient,
/// linked by dashed edges pointing against the forward direction.
///
/// The library returns the text; it never prints. The output is deterministic: the same graph and options give
/// the same bytes (node-id order, ordered containers, no addresses).
#include <string>

#include "core/graph.hpp"

namespace funnel {

struct GradFlow;  ///< autodiff/gradflow.hpp

/// What to_dot draws and how.
struct DotOptions {
  std::string title;                   ///< graph label; empty = none
  const GradFlow* grad_flow = nullptr;  ///< colour parameters and edges by the losses that reach them
  bool backward = false;               ///< also draw the gradient nodes and reverse edges
  bool edge_shapes = true;             ///< label edges with the source's shape
  bool legend = true;                  ///< add a legend of the node kinds (and of the losses' colours)
  std::string rankdir = "TB";          ///< TB (inputs on top), LR, BT or RL; anything else is a GraphError
};

/// The graph as a DOT document (see the file's description). Throws GraphError on a bad option (rankdir) or a
/// gradient-flow analysis made for another graph. A pure function: safe to call from several threads.
std::string to_dot(const Graph& g, const DotOptions& opt = {});

/// A DOT double-quoted string body: backslashes and quotes escaped, newlines as `\n`.
std::string dot_escape(const std::string& s);

}  // namespace funnel
