// bias_add: y[i, j] = x[i, j] + b[j], x: R×N (R usually the batch), b: N. The dense layer's bias.
//   dx = dy
//   db[j] = Σ_i dy[i, j]   (column sums)
#include <algorithm>
#include <cstring>

#include "core/parallel.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct BiasAdd : OpT<BiasAdd> {
  const char* name() const override { return "bias_add"; }
  const char* doc() const override { return "y = x + b broadcast over rows, x: B×N, b: N"; }
  int arity() const override { return 2; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    if (in[0].rank() != 2) shape_error(n, in, "x must be a matrix (B×N), got " + in[0].str());
    if (in[1].rank() != 1) shape_error(n, in, "bias must be a vector (N), got " + in[1].str());
    if (in[0][1] == kBatch || in[0][1] != in[1][0])
      shape_error(n, in, "bias length " + in[1].str() + " differs from the last dimension of x " + in[0].str());
    return in[0];
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const Tensor<T>& x = c.x(0);
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    const T* xp = x.data();
    const T* b = c.x(1).data();
    T* y = c.out->data();
    const auto grain_rows = std::max<std::int64_t>(1, kElementGrain / static_cast<std::int64_t>(cols));
    parallel_for(static_cast<std::int64_t>(rows), grain_rows, [xp, b, y, cols](std::int64_t r0, std::int64_t r1) {
      const T* __restrict bs = b;
      for (auto i = static_cast<std::size_t>(r0); i < static_cast<std::size_t>(r1); ++i) {
        const T* __restrict xr = xp + i * cols;
        T* __restrict yr = y + i * cols;
        for (std::size_t j = 0; j < cols; ++j) yr[j] = xr[j] + bs[j];
      }
    });
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    const Tensor<T>& x = c.x(0);
    const std::size_t rows = x.shape()[0], cols = x.shape()[1];
    const T* gy = c.gout->data();
    if (c.gin[0]) {
      T* gx = c.gin[0]->data();
      parallel_for(static_cast<std::int64_t>(rows * cols), kElementGrain, [gx, gy](std::int64_t b, std::int64_t e) {
        std::memcpy(gx + b, gy + b, static_cast<std::size_t>(e - b) * sizeof(T));
      });
    }
    if (c.gin[1]) {
      T* gb = c.gin[1]->data();
      std::memset(gb, 0, cols * sizeof(T));
      // Column sums, split by columns: each column adds its rows in order, whatever the thread count.
      const bool big = static_cast<std::int64_t>(rows * cols) >= 2 * kElementGrain;
      parallel_for(static_cast<std::int64_t>(cols), big ? 16 : static_cast<std::int64_t>(cols),
                   [gy, gb, rows, cols](std::int64_t j0, std::int64_t j1) {
                     T* __restrict gbs = gb;
                     for (std::size_t i = 0; i < rows; ++i) {
                       const T* __restrict gr = gy + i * cols;
                       for (auto j = static_cast<std::size_t>(j0); j < static_cast<std::size_t>(j1); ++j)
                         gbs[j] += gr[j];
                     }
                   });
    }
  }
};

FUNNEL_REGISTER_OP(BiasAdd);

}  // namespace
}  // namespace funnel

// ONNX: Add, b (N) broadcast over the rows.
FUNNEL_ONNX_LOWERING("bias_add") { e.node("Add", {e.in(0), e.in(1)}, {e.out()}); }
