// clip: y = min(max(x, lo), hi), elementwise, any shape; number attributes "lo" and "hi" (defaults −∞, +∞,
// lo <= hi). ESCM²'s propensity clip(pCTR, τ, 1) before 1/pCTR; clip(x, 0, +∞) is max(x, 0).
//   dx = dy where lo <= x <= hi (boundaries included, as torch.clamp does), 0 where x was clipped
#include "ops/clip_range.hpp"

namespace funnel {
namespace {

struct Clip : OpT<Clip> {
  const char* name() const override { return "clip"; }
  const char* doc() const override { return "y = min(max(x, lo), hi), attributes lo and hi; no gradient where clipped"; }
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  // finite in, finite out: no NaN/Inf check

  using Params = detail::ClipRange;
  static Params parse(const Node& n) { return detail::ClipRange::of(n); }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    detail::ClipRange::check(n);
    return in[0];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const Params& p = c.template params<Params>();
    const T l = static_cast<T>(p.lo), h = static_cast<T>(p.hi);
    const T* x = c.x(0).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = x[i] < l ? l : (x[i] > h ? h : x[i]);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const Params& p = c.template params<Params>();
    const T l = static_cast<T>(p.lo), h = static_cast<T>(p.hi);
    const T* x = c.x(0).data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) c.put(0, i, (x[i] >= l && x[i] <= h) ? gy[i] : T(0));
  }
};

FUNNEL_REGISTER_OP(Clip);

}  // namespace
}  // namespace funnel

// ONNX: Clip, an infinite bound left out.
FUNNEL_ONNX_LOWERING("clip") { funnel::detail::ClipRange::of(n).lower(e, e.in(0), e.out()); }
