#pragma once
/// @file
/// The frame of an elementwise unary op, written once: one input of any shape, an output of the same shape,
/// finite inputs give finite outputs (keeps_finite), and forward and VJP are loops over the elements split over the
/// thread pool (each element is computed alone, so the bits do not depend on the thread count). An op derives from
/// Elementwise<Self> and gives its name, doc and two scalar functions:
///   static T f(T x)                 the output y at x
///   static T df(T x, T y, T gy)     dL/dx from the input, the saved output and dL/dy (unused arguments cost no load)
#include <cstdint>
#include <vector>

#include "core/parallel.hpp"
#include "ops/op.hpp"

namespace funnel {

/// Base of an elementwise unary op `Self` (see the file's description): derive as
/// `struct Relu : Elementwise<Relu>` and give name(), doc(), f and df.
template <class Self>
struct Elementwise : OpT<Self> {
  int arity() const override { return 1; }
  bool keeps_finite() const override { return true; }  ///< finite in, finite out: no NaN/Inf check
  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }

  /// y = Self::f(x) for every element, split over the thread pool.
  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    T* y = c.out->data();
    // Restrict-qualified locals let the loops vectorize (through the lambda's captures they would not).
    parallel_for(static_cast<std::int64_t>(c.out->size()), kElementGrain, [x, y](std::int64_t b, std::int64_t e) {
      const T* __restrict xs = x + b;
      T* __restrict ys = y + b;
      const std::int64_t m = e - b;
      for (std::int64_t i = 0; i < m; ++i) ys[i] = Self::f(xs[i]);
    });
  }

  /// dL/dx = Self::df(x, y, dL/dy) for every element, split over the thread pool.
  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const T* y = c.out->data();
    const T* gy = c.gout->data();
    T* gx = c.gin[0]->data();
    parallel_for(static_cast<std::int64_t>(c.out->size()), kElementGrain,
                 [x, y, gy, gx](std::int64_t b, std::int64_t e) {
                   const T* __restrict xs = x + b;
                   const T* __restrict ys = y + b;
                   const T* __restrict gys = gy + b;
                   T* __restrict gxs = gx + b;
                   const std::int64_t m = e - b;
                   for (std::int64_t i = 0; i < m; ++i) gxs[i] = Self::df(xs[i], ys[i], gys[i]);
                 });
  }
};

}  // namespace funnel

namespace funnel {

/// The frame of an elementwise binary op on two operands of the same shape: the shape rule and the forward loop
/// y = Self::f(a, b); the op writes its own VJP (`bwd`), since what each operand's gradient reads differs.
template <class Self>
struct ElementwiseBinary : OpT<Self> {
  int arity() const override { return 2; }
  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0] != in[1]) shape_error(n, in, "operands must have the same shape");
    return in[0];
  }

  /// y = Self::f(a, b) for every element, on the calling thread.
  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* a = c.x(0).data();
    const T* b = c.x(1).data();
    T* y = c.out->data();
    const std::size_t n = c.out->size();
    for (std::size_t i = 0; i < n; ++i) y[i] = Self::f(a[i], b[i]);
  }
};

}  // namespace funnel
