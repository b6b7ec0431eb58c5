#pragma once
/// @file
/// funnel::Graph is itself a Boost.Graph graph. The edges live in one place, each node's ordered inputs
/// (Node::inputs); nothing else stores them. An edge u -> v means "v reads u", and its descriptor is the pair
/// (consumer v, input slot s), so that source() is v.inputs[s] and one node read through two slots (x * x) gives two
/// parallel edges.
///
///   in_edges(v)   the slots of v, in order: O(1) each.
///   out_edges(u)  the reads of u, found by walking the nodes added after u (a node's inputs always precede it), in
///                 consumer then slot order: O(edges after u) per full walk. Nothing is cached, so no second copy of
///                 the edges can go stale; the walks behind the reachability masks are done once per plan, not per
///                 step.
///   vertices      the node ids 0..n-1, which are also the vertex indices (identity_property_map).
///
/// It models VertexListGraph, IncidenceGraph and BidirectionalGraph, so topological_sort, depth_first_visit,
/// breadth_first_search, make_reverse_graph and make_filtered_graph apply to a Graph directly.
#include <cstddef>
#include <utility>

#include <boost/graph/graph_traits.hpp>
#include <boost/graph/properties.hpp>
#include <boost/iterator/counting_iterator.hpp>
#include <boost/iterator/iterator_facade.hpp>
#include <boost/property_map/property_map.hpp>

#include "core/graph.hpp"

namespace funnel {

/// The input slots of one node v, as the edges (v, 0), (v, 1), ...
class GraphInEdgeIterator
    : public boost::iterator_facade<GraphInEdgeIterator, GraphEdge, boost::random_access_traversal_tag, GraphEdge> {
 public:
  GraphInEdgeIterator() = default;
  /// At edge (v, slot); slot == in_degree(v) is the end.
  GraphInEdgeIterator(NodeId v, std::size_t slot) : e_{v, slot} {}

 private:
  friend class boost::iterator_core_access;
  GraphEdge dereference() const { return e_; }
  bool equal(const GraphInEdgeIterator& o) const { return e_ == o.e_; }
  void increment() { ++e_.slot; }
  void decrement() { --e_.slot; }
  void advance(std::ptrdiff_t d) { e_.slot = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(e_.slot) + d); }
  std::ptrdiff_t distance_to(const GraphInEdgeIterator& o) const {
    return static_cast<std::ptrdiff_t>(o.e_.slot) - static_cast<std::ptrdiff_t>(e_.slot);
  }
  GraphEdge e_{};
};

/// The reads of one node u: every (v, s) with v.inputs[s] == u, v ascending, then s ascending.
class GraphOutEdgeIterator
    : public boost::iterator_facade<GraphOutEdgeIterator, GraphEdge, boost::forward_traversal_tag, GraphEdge> {
 public:
  GraphOutEdgeIterator() = default;
  /// At the first read of u at or after edge `from` (from.consumer == g.size() is the end).
  GraphOutEdgeIterator(const Graph& g, NodeId u, GraphEdge from) : g_(&g), u_(u), e_(from) { settle(); }

 private:
  friend class boost::iterator_core_access;
  GraphEdge dereference() const { return e_; }
  bool equal(const GraphOutEdgeIterator& o) const { return e_ == o.e_; }
  void increment() {
    ++e_.slot;
    settle();
  }
  void settle() {
    for (; e_.consumer < g_->size(); ++e_.consumer, e_.slot = 0) {
      const auto& in = g_->node(e_.consumer).inputs;
      for (; e_.slot < in.size(); ++e_.slot)
        if (in[e_.slot] == u_) return;
    }
    e_.slot = 0;  // the end: (size, 0)
  }
  const Graph* g_ = nullptr;
  NodeId u_ = 0;
  GraphEdge e_{};
};

/// @{
/// Boost.Graph's free functions for a Graph, found by argument-dependent lookup: an edge's source (the node read)
/// and target (the reader); a node's in-edges (its input slots, O(1)) and in-degree; its out-edges (its reads,
/// found by walking the later nodes) and out-degree (O(nodes after it)); its degree; the vertices 0..size()-1 and
/// their count; and the vertex index map (the identity). A Graph must not change while their results are in use.
inline NodeId source(const GraphEdge& e, const Graph& g) { return g.node(e.consumer).inputs[e.slot]; }
inline NodeId target(const GraphEdge& e, const Graph&) { return e.consumer; }

inline std::pair<GraphInEdgeIterator, GraphInEdgeIterator> in_edges(NodeId v, const Graph& g) {
  return {GraphInEdgeIterator(v, 0), GraphInEdgeIterator(v, g.node(v).inputs.size())};
}
inline std::size_t in_degree(NodeId v, const Graph& g) { return g.node(v).inputs.size(); }

inline std::pair<GraphOutEdgeIterator, GraphOutEdgeIterator> out_edges(NodeId u, const Graph& g) {
  return {GraphOutEdgeIterator(g, u, GraphEdge{u + 1, 0}), GraphOutEdgeIterator(g, u, GraphEdge{g.size(), 0})};
}
inline std::size_t out_degree(NodeId u, const Graph& g) {
  std::size_t d = 0;
  for (auto [b, e] = out_edges(u, g); b != e; ++b) ++d;
  return d;
}
inline std::size_t degree(NodeId v, const Graph& g) { return in_degree(v, g) + out_degree(v, g); }

inline std::pair<boost::counting_iterator<NodeId>, boost::counting_iterator<NodeId>> vertices(const Graph& g) {
  return {boost::counting_iterator<NodeId>(0), boost::counting_iterator<NodeId>(g.size())};
}
inline std::size_t num_vertices(const Graph& g) { return g.size(); }
/// @}

}  // namespace funnel

namespace boost {

template <>
struct graph_traits<funnel::Graph> {
  using vertex_descriptor = funnel::NodeId;
  using edge_descriptor = funnel::GraphEdge;
  using directed_category = bidirectional_tag;
  using edge_parallel_category = allow_parallel_edge_tag;  ///< x * x: two edges m -> sq
  struct traversal_category : bidirectional_graph_tag, vertex_list_graph_tag {};
  using out_edge_iterator = funnel::GraphOutEdgeIterator;
  using in_edge_iterator = funnel::GraphInEdgeIterator;
  using vertex_iterator = counting_iterator<funnel::NodeId>;
  using degree_size_type = std::size_t;
  using vertices_size_type = std::size_t;
  using edges_size_type = std::size_t;
  using adjacency_iterator = void;
  using edge_iterator = void;
  static funnel::NodeId null_vertex() { return static_cast<funnel::NodeId>(-1); }
};
template <>
struct graph_traits<const funnel::Graph> : graph_traits<funnel::Graph> {};

/// Node ids are the vertex indices.
template <>
struct property_map<funnel::Graph, vertex_index_t> {
  using type = identity_property_map;
  using const_type = identity_property_map;
};
template <>
struct property_map<const funnel::Graph, vertex_index_t> : property_map<funnel::Graph, vertex_index_t> {};

}  // namespace boost

namespace funnel {
/// The vertex index map of a Graph: node ids are their own indices.
inline boost::identity_property_map get(boost::vertex_index_t, const Graph&) { return {}; }
}  // namespace funnel
