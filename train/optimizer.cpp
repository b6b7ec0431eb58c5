#include "train/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <type_traits>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/registry.hpp"
#include "core/shape.hpp"

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
  s.table(id).apply_lookup(s.sparse_grad(id), *this, t);
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

// ---------------------------------------------------------------- registry

namespace {
OrderedRegistry<OptimizerDef>& optimizer_table() {
  static OrderedRegistry<OptimizerDef> t;
  return t;
}
}  // namespace

void register_optimizer(OptimizerDef def) {
  if (def.name.empty()) throw Error("register_optimizer: empty name");
  if (!def.make_float || !def.make_double) throw Error("register_optimizer: '" + def.name + "' has no factory");
  if (!(def.default_lr > 0.0)) throw Error("register_optimizer: '" + def.name + "' needs a positive default_lr");
  if (find_optimizer(def.name)) throw Error("register_optimizer: '" + def.name + "' is already registered");
  optimizer_table().add(std::move(def));
}

const OptimizerDef* find_optimizer(std::string_view name) {
  return optimizer_table().find_if([&](const OptimizerDef& d) { return d.name == name; });
}

std::vector<const OptimizerDef*> optimizer_defs() { return optimizer_table().all(); }

std::vector<std::string> optimizer_names() {
  std::vector<std::string> out;
  for (const OptimizerDef* d : optimizer_defs()) out.push_back(d->name);
  std::sort(out.begin(), out.end());
  return out;
}

OptimizerRegistrar::OptimizerRegistrar(OptimizerDef def) {
  register_or_abort("optimizer", [&] { register_optimizer(std::move(def)); });
}

// ---------------------------------------------------------------- factory

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
  if (const OptimizerDef* def = find_optimizer(name)) {
    if constexpr (std::is_same_v<T, float>) return def->make_float(cfg);
    else return def->make_double(cfg);
  }
  std::string known;
  for (const auto& n : optimizer_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown optimizer '" + name + "' (known: " + known + ")");
}

template class Optimizer<float>;
template class Optimizer<double>;
template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const std::string&, const OptimizerConfig&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const std::string&, const OptimizerConfig&);

}  // namespace funnel
