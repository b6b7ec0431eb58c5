#pragma once
/// @file
/// The frame of a mean loss, written once: inputs (x, y) or (x, y, w) of one shape, a scalar output
///   L = (1/n) Σ ℓᵢ              (two inputs)
///   L = Σ wᵢℓᵢ / Σ wᵢ, 0 when Σ wᵢ = 0   (three inputs)
/// with the sums accumulated in double, also for float tensors. Only x is differentiable; its gradient is
/// cᵢ · dℓᵢ/dxᵢ with cᵢ = dL/n or dL·wᵢ/Σw. An op derives from MeanLoss<Self> and gives its name, doc, what its
/// first input is called in messages (`static constexpr const char* kInput`) and, per row,
///   static T row_loss(T x, T y)               ℓᵢ
///   static T row_grad(T x, T y, T c)          cᵢ · dℓᵢ/dxᵢ given cᵢ
#include <string>
#include <vector>

#include "ops/op.hpp"

namespace funnel {

/// Base of the mean-loss ops (CRTP): the scalar (weighted) mean of Self::row_loss over (x, y[, weight]) and its
/// gradient for x, computed by Self::row_grad. See the file comment for what Self provides.
template <class Self>
struct MeanLoss : OpT<Self> {
  int arity() const override { return -1; }
  bool differentiable(std::size_t i) const override { return i == 0; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    const std::string x = Self::kInput;
    if (in.size() != 2 && in.size() != 3)
      shape_error(n, in, "expects 2 inputs (" + x + ", y) or 3 (" + x + ", y, weight), got " + std::to_string(in.size()));
    if (in[1] != in[0]) shape_error(n, in, "labels " + in[1].str() + " differ in shape from " + x + " " + in[0].str());
    if (in.size() == 3 && in[2] != in[0])
      shape_error(n, in, "weights " + in[2].str() + " differ in shape from " + x + " " + in[0].str());
    return Shape{};
  }

  /// Forward: writes L (the mean, or the weighted mean; 0 for no rows or Σ w = 0) into the scalar c.out, summing
  /// in double whatever T is.
  template <class T>
  static void fwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const T* y = c.x(1).data();
    const T* w = c.in.size() == 3 ? c.x(2).data() : nullptr;
    const std::size_t n = c.x(0).size();
    double s = 0.0, sw = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const T l = Self::row_loss(x[i], y[i]);
      if (w) {
        s += static_cast<double>(w[i]) * static_cast<double>(l);
        sw += static_cast<double>(w[i]);
      } else {
        s += static_cast<double>(l);
      }
    }
    double L = 0.0;
    if (w) L = sw != 0.0 ? s / sw : 0.0;
    else if (n) L = s / static_cast<double>(n);
    c.out->data()[0] = static_cast<T>(L);
  }

  /// Backward: writes c.gin[0] = cᵢ · dℓᵢ/dxᵢ (Self::row_grad) for every element of x, with cᵢ = dL/n or
  /// dL·wᵢ/Σw (0 when Σ w = 0) and dL the scalar c.gout. Labels and weights get no gradient.
  template <class T>
  static void bwd(Ctx<T>& c) {
    const T* x = c.x(0).data();
    const T* y = c.x(1).data();
    const T* w = c.in.size() == 3 ? c.x(2).data() : nullptr;
    const std::size_t n = c.x(0).size();
    T scale = T(0);
    if (w) {
      double sw = 0.0;
      for (std::size_t i = 0; i < n; ++i) sw += static_cast<double>(w[i]);
      if (sw != 0.0) scale = static_cast<T>(static_cast<double>(c.gout->data()[0]) / sw);
    } else if (n) {
      scale = c.gout->data()[0] / static_cast<T>(n);
    }
    T* gx = c.gin[0]->data();
    for (std::size_t i = 0; i < n; ++i) gx[i] = Self::row_grad(x[i], y[i], w ? scale * w[i] : scale);
  }
};

}  // namespace funnel
