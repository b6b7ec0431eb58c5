// Adagrad: a running sum of squared gradients per element (slot adagrad_sum, from initial_accumulator);
// p -= lr·g / (sqrt(sum) + eps).
#include <cmath>
#include <type_traits>

#include "train/optimizer.hpp"
#include "train/optimizer_kernels.hpp"

namespace funnel {
namespace {

template <class T>
class Adagrad final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "adagrad"; }
  std::vector<std::string> slot_names() const override { return {"adagrad_sum"}; }

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
  T initial_slot_value(std::size_t) const override { return static_cast<T>(this->cfg_.initial_accumulator); }
};

// ---------------------------------------------------------------- Adagrad

template <class T>
void Adagrad<T>::update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t) {
  const T lr = static_cast<T>(this->cfg_.lr), wd = static_cast<T>(this->cfg_.weight_decay);
  const T eps = static_cast<T>(this->cfg_.eps);
  if constexpr (std::is_same_v<T, float>) {  // the CPU's SIMD kernel (train/optimizer_kernels.hpp)
    optimizer_kernels().adagrad(p, g, slots[0], n, AdagradStepF{lr, eps, wd});
    return;
  }
  T* acc = slots[0];
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = g[i] + wd * p[i];
    acc[i] += gi * gi;
    p[i] -= lr * gi / (std::sqrt(acc[i]) + eps);
  }
}

template <class T>
void Adagrad<T>::update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                               T* const* slots, std::int64_t t) {
  if constexpr (std::is_same_v<T, float>) {
    const OptimizerConfig& c = this->cfg_;
    optimizer_kernels().adagrad_rows(p, g, idx, rows, dim, slots[0],
                                     AdagradStepF{static_cast<T>(c.lr), static_cast<T>(c.eps),
                                                  static_cast<T>(c.weight_decay)});
    return;
  }
  for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t off = static_cast<std::size_t>(idx[k]) * dim;
    T* row_slots[1] = {slots[0] + off};
    update_dense(p + off, g + k * dim, dim, row_slots, t);
  }
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_OPTIMIZER(adagrad, funnel::Adagrad, .name = "adagrad",
                          .help = "Adagrad: per-element step sizes from the summed squared gradients", .default_lr = 0.05,
                          .order = 1);
