// matmul: Y = X · W with X (B×K) and W (K×N), Y (B×N). The dense layer's core.
//   dX = dY · Wᵀ   (gemm, transB)
//   dW = Xᵀ · dY   (gemm, transA)
#include "ops/blas.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct MatMul : OpT<MatMul> {
  const char* name() const override { return "matmul"; }
  const char* doc() const override { return "Y = X·W, X: B×K, W: K×N (BLAS gemm, transpose flags in backward)"; }
  // Both VJPs are gemms: adding to a gradient already there is their beta = 1, at no extra pass.
  bool accumulates_into(std::size_t) const override { return true; }
  // X and W are read only by the gemms: under bf16 a parameter there comes rounded once per step (Ctx::rounded).
  bool gemm_operand(std::size_t) const override { return true; }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0].rank() != 2 || in[1].rank() != 2) shape_error(n, in, "both inputs must be matrices");
    if (in[0][1] != in[1][0] || in[0][1] == kBatch)
      shape_error(n, in, "inner dimensions differ: " + in[0].str() + " · " + in[1].str());
    return Shape{in[0][0], in[1][1]};
  }

  // Input i's data for a gemm: its bf16-rounded copy when the executor holds one (then `ready` is set).
  template <class T>
  static const T* operand(const Ctx<T>& c, std::size_t i, bool& ready) {
    const Tensor<T>* r = c.x_rounded(i);
    ready = r != nullptr;
    return r ? r->data() : c.x(i).data();
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const Tensor<T>& x = c.x(0);
    const Tensor<T>& w = c.x(1);
    const int m = static_cast<int>(x.shape()[0]), k = static_cast<int>(x.shape()[1]);
    const int n = static_cast<int>(w.shape()[1]);
    Bf16Ready ready;
    const T* xp = operand(c, 0, ready.a);
    const T* wp = operand(c, 1, ready.b);
    blas::gemm(false, false, m, n, k, T(1), xp, k, wp, n, T(0), c.out->data(), n, ready);
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const Tensor<T>& x = c.x(0);
    const Tensor<T>& w = c.x(1);
    const int m = static_cast<int>(x.shape()[0]), k = static_cast<int>(x.shape()[1]);
    const int n = static_cast<int>(w.shape()[1]);
    const T* gy = c.gout->data();
    bool x_ready = false, w_ready = false;
    const T* xp = operand(c, 0, x_ready);
    const T* wp = operand(c, 1, w_ready);
    if (c.gin[0])  // dX (m×k) = dY (m×n) · Wᵀ (n×k)
      blas::gemm(false, true, m, k, n, T(1), gy, n, wp, n, c.beta(0), c.gin[0]->data(), k, Bf16Ready{.b = w_ready});
    if (c.gin[1])  // dW (k×n) = Xᵀ (k×m) · dY (m×n)
      blas::gemm(true, false, k, n, m, T(1), xp, k, gy, n, c.beta(1), c.gin[1]->data(), n, Bf16Ready{.a = x_ready});
  }
};

FUNNEL_REGISTER_OP(MatMul);

}  // namespace
}  // namespace funnel

// ONNX: MatMul (B×K · K×N).
FUNNEL_ONNX_LOWERING("matmul") { e.node("MatMul", {e.in(0), e.in(1)}, {e.out()}); }
