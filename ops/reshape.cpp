// reshape: y = x with dims attribute "shape" (ints), same elements in the same row-major order.
// The target may start with kBatch (-1), the batch dim; then x must carry the batch dim too and the non-batch
// extents must have the same product (so B×3×4 -> B×12 holds for every B). Without kBatch, neither may carry the
// batch dim and the element counts must agree. Every other target dim must be positive.
//   dx = dy, viewed in x's shape
#include <cstring>

#include "core/parallel.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Reshape : OpT<Reshape> {
  const char* name() const override { return "reshape"; }
  const char* doc() const override { return "y = x with dims from attribute shape (may start with the batch dim)"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    const std::vector<std::int64_t>* dims = n.attrs.get_ints("shape");
    if (!dims) shape_error(n, in, "missing ints attribute 'shape'");
    Shape target{*dims};
    for (std::size_t d = 0; d < target.rank(); ++d) {
      if (target[d] == kBatch && d == 0) continue;
      if (target[d] <= 0)
        shape_error(n, in, "target shape " + target.str() + ": dimension " + std::to_string(d) +
                               " must be positive (only the first may be the batch dim)");
    }
    const Shape& x = in[0];
    int x_batch = 0;
    Dim x_prod = 1;
    for (Dim d : x.dims) {
      if (d == kBatch) ++x_batch;
      else x_prod *= d;
    }
    const bool t_batch = target.rank() > 0 && target[0] == kBatch;
    if (x_batch > 1) shape_error(n, in, "input carries the batch dim more than once");
    if (t_batch != (x_batch == 1))
      shape_error(n, in, t_batch ? "target " + target.str() + " has the batch dim but the input has not"
                                 : "input has the batch dim but target " + target.str() + " has not");
    Dim t_prod = 1;
    for (Dim d : target.dims)
      if (d != kBatch) t_prod *= d;
    if (t_prod != x_prod)
      shape_error(n, in, std::string(t_batch ? "per-row element counts differ: " : "element counts differ: ") +
                             std::to_string(x_prod) + " in the input vs " + std::to_string(t_prod) + " in target " +
                             target.str());
    return target;
  }

  // A copy of n values, split over the threads (a batch's embedding rows are megabytes).
  template <class T>
  static void copy(T* dst, const T* src, std::size_t n) {
    parallel_for(static_cast<std::int64_t>(n), 4 * kElementGrain, [&](std::int64_t b, std::int64_t e) {
      std::memcpy(dst + b, src + b, static_cast<std::size_t>(e - b) * sizeof(T));
    });
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    copy(c.out->data(), c.x(0).data(), c.out->size());
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    copy(c.gin[0]->data(), c.gout->data(), c.out->size());
  }
};

FUNNEL_REGISTER_OP(Reshape);

}  // namespace
}  // namespace funnel

// ONNX: Reshape to the "shape" attribute; the batch dim (kBatch, -1) is the one ONNX infers.
FUNNEL_ONNX_LOWERING("reshape") {
  const std::vector<std::int64_t> dims = *n.attrs.get_ints("shape");
  e.node("Reshape", {e.in(0), e.constant_i64(dims, {static_cast<std::int64_t>(dims.size())})}, {e.out()});
}
