// Adam (Kingma & Ba): first and second moment slots adam_m, adam_v with bias correction; sparse rows like
// torch.optim.SparseAdam (untouched rows keep their moments).
#include <cmath>
#include <type_traits>

#include "train/optimizer.hpp"
#include "train/optimizer_kernels.hpp"

namespace funnel {
namespace {

template <class T>
class Adam final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "adam"; }
  std::vector<std::string> slot_names() const override { return {"adam_m", "adam_v"}; }

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
};

// ---------------------------------------------------------------- Adam


// One step's Adam constants, computed once per step (not per row: pow() per touched row cost more than the update).
template <class T>
struct AdamConsts {
  T b1, b2, a1, a2, step_size, inv_sqrt_bc2, eps, wd;
  AdamConsts(const OptimizerConfig& c, std::int64_t t) {
    const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
    b1 = static_cast<T>(c.beta1);
    b2 = static_cast<T>(c.beta2);
    a1 = static_cast<T>(1.0 - c.beta1);
    a2 = static_cast<T>(1.0 - c.beta2);
    step_size = static_cast<T>(c.lr / bc1);
    inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
    eps = static_cast<T>(c.eps);
    wd = static_cast<T>(c.weight_decay);
  }
  AdamStepF f() const {
    return {static_cast<float>(b1),  static_cast<float>(b2),        static_cast<float>(a1),
            static_cast<float>(a2),  static_cast<float>(step_size), static_cast<float>(inv_sqrt_bc2),
            static_cast<float>(eps), static_cast<float>(wd)};
  }
};

// The update of n contiguous elements. Distinct buffers (restrict), so the loop vectorizes; sqrt and division are
// IEEE-exact in SIMD too, so results do not depend on the vector width.
template <class T>
inline void adam_kernel(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, std::size_t n,
                        const AdamConsts<T>& k) {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = g[i] + k.wd * p[i];
    const T mi = k.b1 * m[i] + k.a1 * gi;
    const T vi = k.b2 * v[i] + k.a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= k.step_size * mi / (std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps);
  }
}


template <class T>
void Adam<T>::update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) {
  if constexpr (std::is_same_v<T, float>) {  // the CPU's SIMD kernel (train/optimizer_kernels.hpp)
    optimizer_kernels().adam(p, g, slots[0], slots[1], n, AdamConsts<T>(this->cfg_, t).f());
    return;
  }
  adam_kernel(p, g, slots[0], slots[1], n, AdamConsts<T>(this->cfg_, t));
}

template <class T>
void Adam<T>::update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                            T* const* slots, std::int64_t t) {
  const AdamConsts<T> k(this->cfg_, t);
  if constexpr (std::is_same_v<T, float>) {
    optimizer_kernels().adam_rows(p, g, idx, rows, dim, slots[0], slots[1], k.f());
    return;
  }
  T* const m = slots[0];
  T* const v = slots[1];
  // Touched rows are scattered over the table, so each update waits on memory for its row of p, m and v: fetch the
  // rows kAhead updates ahead (first and last cache line of each) while this one is computed.
  constexpr std::size_t kAhead = 8;
  for (std::size_t r = 0; r < rows; ++r) {
    if (r + kAhead < rows) {
      const std::size_t o = static_cast<std::size_t>(idx[r + kAhead]) * dim;
      for (T* base : {p, m, v}) {
        __builtin_prefetch(base + o, 1);
        __builtin_prefetch(base + o + dim - 1, 1);
      }
    }
    const std::size_t off = static_cast<std::size_t>(idx[r]) * dim;
    adam_kernel(p + off, g + r * dim, m + off, v + off, dim, k);
  }
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_OPTIMIZER(adam, funnel::Adam, .name = "adam",
                          .help = "Adam: bias-corrected first and second moments (the paper's optimizer)",
                          .default_lr = 0.002, .order = 0);
