// concat: y = [x_1, x_2, ..., x_k] joined along axis `axis` (number attribute, default 1; negative counts from
// the end). Inputs have the same rank r >= 2 and agree on every other dimension (the batch dim included);
// axis 0 (the batch dim) cannot be joined. Viewing each input as outer × (d_i · inner) with outer the product of
// the dims before the axis and inner of those after, y's row o is the inputs' rows o laid end to end.
//   dx_i = the slice of dy that x_i was copied to
#include <cmath>
#include <cstring>

#include "ops/op.hpp"

namespace funnel {
namespace {

struct Concat : OpT<Concat> {
  const char* name() const override { return "concat"; }
  const char* doc() const override { return "y = [x_1, ..., x_k] along attribute axis (default 1), variadic"; }
  int arity() const override { return -1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  // The axis attribute as an index into dims, validated against rank r.
  static std::size_t axis_of(const Node& n, const std::vector<Shape>& in, std::size_t r) {
    const double a = n.attrs.get_num("axis", 1.0);
    if (a != std::floor(a)) shape_error(n, in, "axis must be an integer");
    auto ax = static_cast<std::int64_t>(a);
    const auto rank = static_cast<std::int64_t>(r);
    if (ax < 0) ax += rank;
    if (ax < 1 || ax >= rank)
      shape_error(n, in, "axis " + std::to_string(static_cast<std::int64_t>(a)) + " is out of range for rank " +
                             std::to_string(r) + " (axis 0, the batch dim, cannot be joined)");
    return static_cast<std::size_t>(ax);
  }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    const std::size_t r = in[0].rank();
    if (r < 2) shape_error(n, in, "inputs must have rank >= 2, input 0 is " + in[0].str());
    const std::size_t ax = axis_of(n, in, r);
    Shape out = in[0];
    Dim total = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
      if (in[i].rank() != r)
        shape_error(n, in, "input " + std::to_string(i) + " has rank " + std::to_string(in[i].rank()) +
                               ", input 0 has rank " + std::to_string(r));
      for (std::size_t d = 0; d < r; ++d) {
        if (d == ax) continue;
        if (!dims_match(in[i][d], in[0][d]))
          shape_error(n, in, "input " + std::to_string(i) + " (" + in[i].str() + ") differs from input 0 (" +
                                 in[0].str() + ") in dimension " + std::to_string(d));
      }
      if (in[i][ax] == kBatch) shape_error(n, in, "cannot join along the batch dimension");
      total += in[i][ax];
    }
    out.dims[ax] = total;
    return out;
  }

  // outer (product of dims before the axis) and inner (after) from a concrete tensor shape.
  template <class T>
  static void split(const Tensor<T>& t, std::size_t ax, std::size_t& outer, std::size_t& inner) {
    outer = 1;
    inner = 1;
    for (std::size_t d = 0; d < ax; ++d) outer *= t.shape()[d];
    for (std::size_t d = ax + 1; d < t.dimension(); ++d) inner *= t.shape()[d];
  }

  struct Params {
    std::size_t axis;  // an index into the dims (a negative attribute counts from the end)
  };
  static Params parse(const Node& n) {
    auto ax = static_cast<std::int64_t>(n.attrs.get_num("axis", 1.0));
    if (ax < 0) ax += static_cast<std::int64_t>(n.shape.rank());
    return {static_cast<std::size_t>(ax)};
  }

  // The layout both passes walk: calls f(i, outer, row, off, chunk) for each input i, whose `outer` blocks of
  // `chunk` elements sit at offset `off` of the output's rows of `row` elements.
  template <class T, class F>
  static void for_each_input(Ctx<T>& c, F&& f) {
    const std::size_t ax = c.template params<Params>().axis;
    std::size_t outer, inner;
    split(*c.out, ax, outer, inner);
    const std::size_t row = c.out->shape()[ax] * inner;
    std::size_t off = 0;
    for (std::size_t i = 0; i < c.in.size(); ++i) {
      const std::size_t chunk = c.x(i).shape()[ax] * inner;
      f(i, outer, row, off, chunk);
      off += chunk;
    }
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    T* y = c.out->data();
    for_each_input(c, [&](std::size_t i, std::size_t outer, std::size_t row, std::size_t off, std::size_t chunk) {
      const T* xp = c.x(i).data();
      for (std::size_t o = 0; o < outer; ++o) std::memcpy(y + o * row + off, xp + o * chunk, chunk * sizeof(T));
    });
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* gy = c.gout->data();
    for_each_input(c, [&](std::size_t i, std::size_t outer, std::size_t row, std::size_t off, std::size_t chunk) {
      if (!c.gin[i]) return;
      T* gx = c.gin[i]->data();
      for (std::size_t o = 0; o < outer; ++o) std::memcpy(gx + o * chunk, gy + o * row + off, chunk * sizeof(T));
    });
  }
};

FUNNEL_REGISTER_OP(Concat);

}  // namespace
}  // namespace funnel

// ONNX: Concat along the same axis.
FUNNEL_ONNX_LOWERING("concat") {
  std::vector<std::string> ins;
  for (std::size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(e.in(i));
  const auto axis = static_cast<std::int64_t>(n.attrs.get_num("axis", 1.0));
  e.node("Concat", ins, {e.out()}, {funnel::OnnxAttr::integer("axis", axis)});
}
