#include "autodiff/param_store.hpp"

#include <cmath>
#include <map>
#include <random>
#include <type_traits>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/shape.hpp"

namespace funnel {

namespace {

std::vector<std::int64_t> shape_of(const Node& nd) {
  auto c = nd.shape.concrete(1);
  return std::vector<std::int64_t>(c.begin(), c.end());
}

}  // namespace

template <class T>
ParamStore<T>::ParamStore(const Graph& g, const ParamStoreOptions& o) : g_(g), values_only_(o.values_only) {
  ids_ = g.params();
  index_.assign(g.size(), -1);
  entries_.resize(ids_.size());
  for (std::size_t i = 0; i < ids_.size(); ++i) {
    const Node& nd = g.node(ids_[i]);
    Entry& e = entries_[i];
    e.id = nd.id;
    index_[nd.id] = static_cast<int>(i);
    const bool table = has_sparse_grad(g, nd.id) && nd.shape.rank() == 2;
    if (table) {
      e.sparse_grad = true;
      std::unique_ptr<TableStorage<T>> s;
      if (o.tables) {
        if constexpr (std::is_same_v<T, float>) s = o.tables(g, nd.id);
        else throw Error("ParamStoreOptions::tables makes the tables of a float store; a double store keeps them local");
        if (!s) throw Error("the table storage factory made no storage for table '" + nd.name + "'");
      } else {
        s = std::make_unique<LocalTable<T>>(nd.shape[0], nd.shape[1]);
      }
      set_table(nd.id, std::move(s));
      continue;
    }
    e.value = Tensor<T>::from_shape(nd.shape.concrete(1));
    e.value.fill(T(0));
    if (!o.values_only) {
      e.grad = Tensor<T>::from_shape(nd.shape.concrete(1));
      e.grad.fill(T(0));
    }
  }
}

template <class T>
typename ParamStore<T>::Entry& ParamStore<T>::at(NodeId id) {
  if (!contains(id)) {
    throw GraphError(id < g_.size() ? "node '" + g_.node(id).name + "' is not a parameter"
                                    : "node id " + std::to_string(id) + " is not in the graph");
  }
  return entries_[static_cast<std::size_t>(index_[id])];
}

template <class T>
const typename ParamStore<T>::Entry& ParamStore<T>::at(NodeId id) const {
  return const_cast<ParamStore*>(this)->at(id);
}

namespace {

// Runs `nd`'s initializer over `n` values: draw(k) gets value k (in order). One generator per parameter, seeded
// from (seed, name), consumed in element order: the same values whoever asks, whole or row by row.
template <class F>
void run_initializer(const Node& nd, std::uint64_t seed, std::size_t n, F&& put) {
  std::mt19937_64 rng(seed ^ fnv1a64(nd.name));
  const double fan_in = nd.shape.rank() >= 1 ? static_cast<double>(nd.shape[0]) : 1.0;
  const double fan_out = nd.shape.rank() >= 2 ? static_cast<double>(nd.shape[1]) : fan_in;
  auto each = [&](auto&& draw) {
    for (std::size_t k = 0; k < n; ++k) put(k, draw());
  };
  switch (nd.init.kind) {
    case Init::Kind::Zeros: each([] { return 0.0; }); break;
    case Init::Kind::Constant: each([&] { return nd.init.a; }); break;
    case Init::Kind::Normal: {
      std::normal_distribution<double> d(0.0, nd.init.a);
      each([&] { return d(rng); });
      break;
    }
    case Init::Kind::Uniform: {
      std::uniform_real_distribution<double> d(nd.init.a, nd.init.b);
      each([&] { return d(rng); });
      break;
    }
    case Init::Kind::GlorotUniform: {
      const double lim = std::sqrt(6.0 / (fan_in + fan_out));
      std::uniform_real_distribution<double> d(-lim, lim);
      each([&] { return d(rng); });
      break;
    }
    case Init::Kind::HeNormal: {
      std::normal_distribution<double> d(0.0, std::sqrt(2.0 / fan_in));
      each([&] { return d(rng); });
      break;
    }
  }
}

}  // namespace

template <class T>
void ParamStore<T>::init(std::uint64_t seed) {
  for (Entry& e : entries_) {
    const Node& nd = g_.node(e.id);
    if (e.table) {
      // The table's rows in order, one row's memory at a time: a row's values depend on every draw before them, so
      // the whole sequence runs and the storage keeps the rows it holds (a whole-table draw's bits).
      const auto len = static_cast<std::size_t>(nd.shape[1]);
      const auto n = static_cast<std::size_t>(nd.shape[0]) * len;
      e.table->init([&](const TableRowSink<T>& sink) {
        if (n == 0) return;
        std::vector<T> row(len);
        std::size_t j = 0;
        std::int64_t r = 0;
        run_initializer(nd, seed, n, [&](std::size_t, double x) {
          row[j] = static_cast<T>(x);
          if (++j == len) {
            sink(r++, row.data());
            j = 0;
          }
        });
      });
      continue;
    }
    T* v = e.value.data();
    run_initializer(nd, seed, e.value.size(), [v](std::size_t k, double x) { v[k] = static_cast<T>(x); });
  }
}

template <class T>
TableStorage<T>& ParamStore<T>::table(NodeId id) {
  Entry& e = at(id);
  if (!e.table)
    throw Error("parameter '" + g_.node(id).name + "' is not an embedding table (2-D with a sparse gradient)");
  return *e.table;
}

template <class T>
const TableStorage<T>& ParamStore<T>::table(NodeId id) const {
  return const_cast<ParamStore*>(this)->table(id);
}

template <class T>
void ParamStore<T>::set_table(NodeId id, std::unique_ptr<TableStorage<T>> s) {
  Entry& e = at(id);
  const Node& nd = g_.node(id);
  if (!e.sparse_grad || nd.shape.rank() != 2)
    throw Error("parameter '" + nd.name + "' is not an embedding table (2-D with a sparse gradient): it has no " +
                "table storage");
  if (!s) throw Error("set_table: no storage given for table '" + nd.name + "'");
  if (s->rows() != nd.shape[0] || s->dim() != nd.shape[1])
    throw Error("set_table: a storage of " + std::to_string(s->rows()) + " × " + std::to_string(s->dim()) +
                " values for table '" + nd.name + "' of " + std::to_string(nd.shape[0]) + " × " +
                std::to_string(nd.shape[1]));
  e.table.reset();  // the old storage (and whatever it holds) goes first
  e.sparse = SparseRows<T>{};
  e.table = std::move(s);
  e.table->bind(e.value, values_only_ ? nullptr : &e.sparse);
}

template <class T>
std::size_t ParamStore<T>::allocated_bytes() const {
  std::size_t n = 0;
  for (const Entry& e : entries_) {
    n += (e.value.size() + e.grad.size() + e.sparse.values.capacity()) * sizeof(T);
    n += e.sparse.slot.capacity() * sizeof(std::int32_t) + e.sparse.rows.capacity() * sizeof(std::int64_t);
    for (const auto& s : e.slots) n += s.capacity() * sizeof(T);
    if (e.table && e.table->held_in_store()) n += e.table->bytes();
  }
  return n;
}

template <class T>
Tensor<T>& ParamStore<T>::grad(NodeId id) {
  Entry& e = at(id);
  if (e.sparse_grad)
    throw GraphError("parameter '" + g_.node(id).name + "' has a sparse gradient: use sparse_grad()");
  return e.grad;
}

template <class T>
const Tensor<T>& ParamStore<T>::grad(NodeId id) const {
  return const_cast<ParamStore*>(this)->grad(id);
}

template <class T>
SparseRows<T>& ParamStore<T>::sparse_grad(NodeId id) {
  Entry& e = at(id);
  if (!e.sparse_grad) throw GraphError("parameter '" + g_.node(id).name + "' has a dense gradient: use grad()");
  return e.sparse;
}

template <class T>
const SparseRows<T>& ParamStore<T>::sparse_grad(NodeId id) const {
  return const_cast<ParamStore*>(this)->sparse_grad(id);
}

template <class T>
T* const* ParamStore<T>::slot_ptrs(NodeId id) {
  Entry& e = at(id);
  return e.table ? e.table->slot_ptrs() : e.slot_ptrs.data();
}

template <class T>
void ParamStore<T>::ensure_slots(const std::string& optimizer, const std::vector<std::string>& slots,
                                 const std::vector<T>& initial) {
  if (!opt_name_.empty()) {
    if (opt_name_ != optimizer)
      throw Error("the parameter store holds '" + opt_name_ + "' optimizer state, not '" + optimizer +
                  "' state: reset it first");
    if (slot_names_ != slots)
      throw Error("the parameter store's " + optimizer + " state has other slots than this optimizer uses");
    return;
  }
  opt_name_ = optimizer;
  slot_names_ = slots;
  for (Entry& e : entries_) {
    e.slots.clear();
    e.slot_ptrs.clear();
    if (e.table) {
      e.table->make_slots(slots.size(), initial.data());
      continue;
    }
    for (std::size_t k = 0; k < slots.size(); ++k) e.slots.emplace_back(e.value.size(), initial.at(k));
    for (auto& s : e.slots) e.slot_ptrs.push_back(s.data());
  }
}

template <class T>
void ParamStore<T>::reset_optimizer() {
  opt_name_.clear();
  slot_names_.clear();
  opt_steps_ = 0;
  for (Entry& e : entries_) {
    e.slots.clear();
    e.slot_ptrs.clear();
    if (e.table) e.table->drop_slots();
  }
}

template <class T>
OptimizerStateT<T> ParamStore<T>::export_optimizer() const {
  OptimizerStateT<T> s;
  s.optimizer = opt_name_;
  s.step = opt_steps_;
  for (const Entry& e : entries_) {
    if (state_outside(e)) continue;
    const Node& nd = g_.node(e.id);
    const T* const* sp = e.table ? e.table->slot_ptrs() : e.slot_ptrs.data();
    for (std::size_t k = 0; k < slot_names_.size(); ++k)
      s.arrays.push_back({nd.name + "/" + slot_names_[k], shape_of(nd), std::vector<T>(sp[k], sp[k] + e.value.size())});
  }
  return s;
}

template <class T>
void ParamStore<T>::import_optimizer(const std::string& me, const std::vector<std::string>& slots,
                                     const OptimizerStateT<T>& s) {
  if (s.optimizer != me)
    throw Error("cannot import " + (s.optimizer.empty() ? std::string("unnamed") : "'" + s.optimizer + "'") +
                " optimizer state into a '" + me + "' optimizer");
  if (s.step < 0) throw Error(me + " optimizer state: negative step count " + std::to_string(s.step));
  if (s.step == 0 && s.arrays.empty()) {  // fresh
    reset_optimizer();
    return;
  }
  std::map<std::string, const NamedArrayT<T>*> by_name;
  for (const auto& a : s.arrays)
    if (!by_name.emplace(a.name, &a).second) throw Error(me + " optimizer state: array '" + a.name + "' appears twice");
  // Validate everything before touching the current state.
  std::size_t used = 0;
  for (const Entry& e : entries_) {
    if (state_outside(e)) continue;
    const Node& nd = g_.node(e.id);
    const auto shp = shape_of(nd);
    for (const auto& sl : slots) {
      const std::string an = nd.name + "/" + sl;
      auto it = by_name.find(an);
      if (it == by_name.end()) throw Error(me + " optimizer state: missing array '" + an + "'");
      const auto& a = *it->second;
      if (a.shape != shp)
        throw Error(me + " optimizer state: array '" + an + "' has shape " + dims_str(a.shape) +
                    " but parameter '" + nd.name + "' has shape " + dims_str(shp));
      if (a.data.size() != e.value.size())
        throw Error(me + " optimizer state: array '" + an + "' holds " + std::to_string(a.data.size()) +
                    " values, its shape " + dims_str(a.shape) + " needs " + std::to_string(e.value.size()));
      ++used;
    }
  }
  for (const Entry& e : entries_)  // arrays of parameters whose state is kept elsewhere: accepted, not read
    if (state_outside(e))
      for (const auto& sl : slots) used += by_name.count(g_.node(e.id).name + "/" + sl);
  if (used != by_name.size()) {
    for (const auto& a : s.arrays) {
      bool known = false;
      for (const Entry& e : entries_)
        for (const auto& sl : slots) known = known || a.name == g_.node(e.id).name + "/" + sl;
      if (!known) throw Error(me + " optimizer state: array '" + a.name + "' matches no parameter/slot of the graph");
    }
  }
  reset_optimizer();
  ensure_slots(me, slots, std::vector<T>(slots.size(), T(0)));
  for (Entry& e : entries_) {
    if (state_outside(e)) continue;
    T* const* sp = e.table ? e.table->slot_ptrs() : e.slot_ptrs.data();
    for (std::size_t k = 0; k < slots.size(); ++k) {
      const auto& src = by_name.at(g_.node(e.id).name + "/" + slots[k])->data;
      std::copy(src.begin(), src.end(), sp[k]);
    }
  }
  opt_steps_ = s.step;
}

template class ParamStore<float>;
template class ParamStore<double>;

}  // namespace funnel
