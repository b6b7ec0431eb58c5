// divide: y = clip(a / b̃, lo, hi), elementwise, same shapes; number attributes "lo" and "hi" (defaults −∞, +∞).
// The DIVISION baseline's pCVR = clip(pCTCVR / pCTR, 0, 1).
// Division guard: b̃ = b when |b| >= kTiny (1e-12, float and double), else kTiny with b's sign (+kTiny for ±0),
// so the quotient is always finite for finite a.
//   inside lo <= a/b̃ <= hi (boundaries included, as torch.clamp does):
//     da = dy / b̃,  db = −dy · (a/b̃) / b̃   (db = 0 where |b| < kTiny, b̃ being constant there)
//   where clipped (a/b̃ < lo or > hi): da = db = 0
#include <cmath>

#include "ops/clip_range.hpp"

namespace funnel {
namespace {

constexpr double kTiny = 1e-12;

struct Divide : OpT<Divide> {
  const char* name() const override { return "divide"; }
  const char* doc() const override { return "y = clip(a/b, lo, hi), same shapes, |b| guarded >= 1e-12"; }
  int arity() const override { return 2; }

  using Params = detail::ClipRange;
  static Params parse(const Node& n) { return detail::ClipRange::of(n); }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0] != in[1]) shape_error(n, in, "operands must have the same shape");
    detail::ClipRange::check(n);
    return in[0];
  }

  template <class T>
  static T guard(T b) {
    const T t = static_cast<T>(kTiny);
    if (b >= T(0)) return b < t ? t : b;
    return b > -t ? -t : b;
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const Params& p = c.template params<Params>();
    const T l = static_cast<T>(p.lo), h = static_cast<T>(p.hi);
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      const T q = a[i] / guard(b[i]);
      y[i] = q < l ? l : (q > h ? h : q);
    }
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const Params& p = c.template params<Params>();
    const T l = static_cast<T>(p.lo), h = static_cast<T>(p.hi);
    const T tiny = static_cast<T>(kTiny);
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    const T* gy = c.gout->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) {
      const T bg = guard(b[i]);
      const T q = a[i] / bg;
      const bool pass = q >= l && q <= h;
      const T ga = pass ? gy[i] / bg : T(0);
      const T gb = pass && std::abs(b[i]) >= tiny ? -ga * q : T(0);
      if (c.gin[0]) c.put(0, i, ga);
      if (c.gin[1]) c.put(1, i, gb);
    }
  }
};

FUNNEL_REGISTER_OP(Divide);

}  // namespace
}  // namespace funnel

// ONNX: b̃ = Where(|b| < tiny, Where(b < 0, -tiny, tiny), b); Clip(Div(a, b̃), lo, hi), infinite bounds left out.
FUNNEL_ONNX_LOWERING("divide") {
  const auto t = static_cast<float>(funnel::kTiny);
  const std::string tiny = e.constant({t}, {}), neg = e.constant({-t}, {});
  const std::string abs = e.temp("abs"), small = e.temp("small"), is_neg = e.temp("neg"), sub = e.temp("guard"),
                    den = e.temp("den"), q = e.temp("quot");
  e.node("Abs", {e.in(1)}, {abs});
  e.node("Less", {abs, tiny}, {small});
  e.node("Less", {e.in(1), e.constant({0.0f}, {})}, {is_neg});
  e.node("Where", {is_neg, neg, tiny}, {sub});
  e.node("Where", {small, sub, e.in(1)}, {den});
  const funnel::detail::ClipRange r = funnel::detail::ClipRange::of(n);
  if (std::isinf(r.lo) && std::isinf(r.hi)) {
    e.node("Div", {e.in(0), den}, {e.out()});
    return;
  }
  e.node("Div", {e.in(0), den}, {q});
  r.lower(e, q, e.out());
}
