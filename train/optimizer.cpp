#include "train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/shape.hpp"
#include "train/optimizer_kernels.hpp"

namespace funnel {

namespace {

constexpr std::size_t kMaxSlots = 4;  // state arrays per parameter (Adam has 2)


}  // namespace

// ---------------------------------------------------------------- config

nlohmann::json to_json(const OptimizerConfig& c) {
  return nlohmann::json{{"lr", c.lr},       {"weight_decay", c.weight_decay}, {"momentum", c.momentum},
                        {"beta1", c.beta1}, {"beta2", c.beta2},               {"eps", c.eps},
                        {"initial_accumulator", c.initial_accumulator}};
}

OptimizerConfig optimizer_config_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("optimizer config: expected a JSON object, got " + std::string(j.type_name()));
  OptimizerConfig c;
  const std::map<std::string, double*> fields{{"lr", &c.lr},
                                              {"weight_decay", &c.weight_decay},
                                              {"momentum", &c.momentum},
                                              {"beta1", &c.beta1},
                                              {"beta2", &c.beta2},
                                              {"eps", &c.eps},
                                              {"initial_accumulator", &c.initial_accumulator}};
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto f = fields.find(it.key());
    if (f == fields.end()) {
      std::string known;
      for (auto& [k, _] : fields) known += (known.empty() ? "" : ", ") + k;
      throw Error("optimizer config: unknown key '" + it.key() + "' (known: " + known + ")");
    }
    if (!it.value().is_number())
      throw Error("optimizer config: key '" + it.key() + "' must be a number, got " + it.value().dump());
    *f->second = it.value().get<double>();
  }
  return c;
}

// ---------------------------------------------------------------- base

template <class T>
Optimizer<T>::Optimizer(const OptimizerConfig& cfg) : cfg_(cfg) {}

template <class T>
std::int64_t Optimizer<T>::begin_step(ParamStore<T>& s) {
  // The steady state compares one name and allocates nothing; the first step on a store makes the slots.
  if (s.optimizer().empty() || s.optimizer() != name()) {
    const auto slots = slot_names();
    if (slots.size() > kMaxSlots) throw Error(std::string(name()) + " optimizer: more state slots than kMaxSlots");
    std::vector<T> initial;
    for (std::size_t k = 0; k < slots.size(); ++k) initial.push_back(initial_slot_value(k));
    s.ensure_slots(name(), slots, initial);  // an Error when the store holds another optimizer's state
  }
  return s.count_step();
}

template <class T>
void Optimizer<T>::update_dense_range(ParamStore<T>& s, NodeId id, std::size_t begin, std::size_t end,
                                      std::int64_t t) {
  if (begin >= end) return;
  T* p = s.value(id).data();
  const T* g = s.grad(id).data();
  T* const* sp = s.slot_ptrs(id);
  const std::size_t nslots = s.slot_names().size();
  // Every update is elementwise, so ranges split over the threads give the same bits as one pass.
  parallel_for(static_cast<std::int64_t>(end - begin), kElementGrain / 4, [&](std::int64_t b, std::int64_t e) {
    const std::size_t off = begin + static_cast<std::size_t>(b);
    T* slots[kMaxSlots];
    for (std::size_t k = 0; k < nslots; ++k) slots[k] = sp[k] + off;
    update_dense(p + off, g + off, static_cast<std::size_t>(e - b), slots, t);
  });
}

template <class T>
void Optimizer<T>::update_sparse_rows(ParamStore<T>& s, NodeId id, std::int64_t t) {
  const SparseRows<T>& sg = s.sparse_grad(id);
  if (sg.size() == 0) return;
  T* p = s.value(id).data();
  T* const* sp = s.slot_ptrs(id);
  const auto dim = static_cast<std::size_t>(sg.dim);
  const auto grain = std::max<std::int64_t>(1, kElementGrain / 4 / static_cast<std::int64_t>(dim));
  // Rows of a sparse gradient are distinct, so row ranges split over the threads give the same bits.
  parallel_for(static_cast<std::int64_t>(sg.size()), grain, [&](std::int64_t r0, std::int64_t r1) {
    update_sparse(p, sg.values.data() + static_cast<std::size_t>(r0) * dim, sg.rows.data() + r0,
                  static_cast<std::size_t>(r1 - r0), dim, sp, t);
  });
}

template <class T>
void Optimizer<T>::update_rows(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                               T* const* slots, std::int64_t t) {
  if (rows == 0) return;
  const auto grain = std::max<std::int64_t>(1, kElementGrain / 4 / static_cast<std::int64_t>(dim));
  parallel_for(static_cast<std::int64_t>(rows), grain, [&](std::int64_t r0, std::int64_t r1) {
    update_sparse(p, g + static_cast<std::size_t>(r0) * dim, idx + r0, static_cast<std::size_t>(r1 - r0), dim, slots,
                  t);
  });
}

template <class T>
void Optimizer<T>::step(ParamStore<T>& s) {
  const std::int64_t t = begin_step(s);
  for (NodeId id : s.ids()) {
    if (!s.has_grad(id)) continue;
    if (s.is_sparse(id)) update_sparse_rows(s, id, t);
    else update_dense_range(s, id, 0, s.numel(id), t);
  }
}

template <class T>
void Optimizer<T>::import_state(ParamStore<T>& store, const OptimizerStateT<T>& s) {
  store.import_optimizer(name(), slot_names(), s);
}

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

// ---------------------------------------------------------------- Adam

namespace {

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
    return {static_cast<float>(b1),        static_cast<float>(b2),           static_cast<float>(a1),
            static_cast<float>(a2),        static_cast<float>(step_size),    static_cast<float>(inv_sqrt_bc2),
            static_cast<float>(eps),       static_cast<float>(wd)};
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

}  // namespace

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

// ---------------------------------------------------------------- factory

std::vector<std::string> optimizer_names() { return {"adagrad", "adam", "sgd"}; }

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, const OptimizerConfig& cfg) {
  auto bad = [&](const std::string& what) { throw Error(name + " optimizer: " + what); };
  if (!(cfg.lr > 0.0) || !std::isfinite(cfg.lr)) bad("lr must be a positive number, got " + std::to_string(cfg.lr));
  if (!(cfg.weight_decay >= 0.0)) bad("weight_decay must be >= 0, got " + std::to_string(cfg.weight_decay));
  if (!(cfg.momentum >= 0.0 && cfg.momentum < 1.0)) bad("momentum must be in [0, 1), got " + std::to_string(cfg.momentum));
  if (!(cfg.beta1 >= 0.0 && cfg.beta1 < 1.0)) bad("beta1 must be in [0, 1), got " + std::to_string(cfg.beta1));
  if (!(cfg.beta2 >= 0.0 && cfg.beta2 < 1.0)) bad("beta2 must be in [0, 1), got " + std::to_string(cfg.beta2));
  if (!(cfg.eps > 0.0)) bad("eps must be > 0, got " + std::to_string(cfg.eps));
  if (!(cfg.initial_accumulator >= 0.0))
    bad("initial_accumulator must be >= 0, got " + std::to_string(cfg.initial_accumulator));
  if (name == "adam") return std::make_unique<Adam<T>>(cfg);
  if (name == "adagrad") return std::make_unique<Adagrad<T>>(cfg);
  if (name == "sgd") return std::make_unique<Sgd<T>>(cfg);
  std::string known;
  for (const auto& n : optimizer_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown optimizer '" + name + "' (known: " + known + ")");
}

template class Optimizer<float>;
template class Optimizer<double>;
template class Sgd<float>;
template class Sgd<double>;
template class Adagrad<float>;
template class Adagrad<double>;
template class Adam<float>;
template class Adam<double>;
template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const std::string&, const OptimizerConfig&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const std::string&, const OptimizerConfig&);

}  // namespace funnel
