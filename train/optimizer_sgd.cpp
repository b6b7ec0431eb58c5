// SGD: p -= lr·(g + wd·p); with momentum μ > 0 a velocity slot v = μ·v + g is kept and p -= lr·v.
#include <cmath>

#include "train/optimizer.hpp"

namespace funnel {
namespace {

template <class T>
class Sgd final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "sgd"; }
  std::vector<std::string> slot_names() const override;

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
};

// ---------------------------------------------------------------- SGD

template <class T>
std::vector<std::string> Sgd<T>::slot_names() const {
  if (this->cfg_.momentum > 0.0) return {"momentum"};
  return {};
}

template <class T>
void Sgd<T>::update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t) {
  const T lr = static_cast<T>(this->cfg_.lr), wd = static_cast<T>(this->cfg_.weight_decay);
  if (this->cfg_.momentum > 0.0) {
    const T mu = static_cast<T>(this->cfg_.momentum);
    T* v = slots[0];
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = mu * v[i] + (g[i] + wd * p[i]);
      p[i] -= lr * v[i];
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) p[i] -= lr * (g[i] + wd * p[i]);
  }
}

template <class T>
void Sgd<T>::update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                           T* const* slots, std::int64_t t) {
  for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t off = static_cast<std::size_t>(idx[k]) * dim;
    T* row_slots[1] = {this->cfg_.momentum > 0.0 ? slots[0] + off : nullptr};
    update_dense(p + off, g + k * dim, dim, row_slots, t);
  }
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_OPTIMIZER(sgd, funnel::Sgd, .name = "sgd",
                          .help = "plain SGD (a momentum slot when momentum > 0)", .default_lr = 0.05, .order = 2);
