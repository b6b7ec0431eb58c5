#pragma once
/// @file
/// The bounds of an op whose output is clipped to [lo, hi] (`clip`, `divide`): number attributes "lo" and "hi",
/// defaults −∞ and +∞, lo <= hi; and the ONNX Clip node that applies them.
#include <cmath>
#include <limits>
#include <string>

#include "ops/op.hpp"

namespace funnel::detail {

/// [lo, hi] of a clipping op (its parsed parameters).
struct ClipRange {
  double lo;  ///< lower bound (−∞: none)
  double hi;  ///< upper bound (+∞: none)

  /// The node's bounds (the op's parsed parameters).
  static ClipRange of(const Node& n) {
    return {n.attrs.get_num("lo", -std::numeric_limits<double>::infinity()),
            n.attrs.get_num("hi", std::numeric_limits<double>::infinity())};
  }
  /// A GraphError naming the node and its op unless lo <= hi (NaN bounds included).
  static void check(const Node& n) {
    const ClipRange r = of(n);
    if (!(r.lo <= r.hi))
      throw GraphError("node '" + n.name + "' (op " + n.op + "): attribute lo (" + std::to_string(r.lo) +
                       ") must not exceed hi (" + std::to_string(r.hi) + ")");
  }
  /// ONNX: Clip(x) into `out`, an infinite bound left out.
  void lower(OnnxEmitter& e, const std::string& x, const std::string& out) const {
    e.node("Clip", {x, std::isinf(lo) ? "" : e.constant({static_cast<float>(lo)}, {}),
                    std::isinf(hi) ? "" : e.constant({static_cast<float>(hi)}, {})}, {out});
  }
};

}  // namespace funnel::detail
