#include "autodiff/executor.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <type_traits>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"

namespace funnel {

template <class T>
Executor<T>::Executor(const Graph& g) : g_(g), owned_(std::make_unique<ParamStore<T>>(g)), ps_(owned_.get()) {
  setup();
}

template <class T>
Executor<T>::Executor(const Graph& g, ParamStore<T>& store) : g_(g), ps_(&store) {
  if (&store.graph() != &g) throw GraphError("executor: the parameter store was made for another graph");
  setup();
}

template <class T>
void Executor<T>::setup() {
  const Graph& g = g_;
  const std::size_t n = g.size();
  values_.resize(n);
  grads_.resize(n);
  spare_values_.resize(n);
  spare_grads_.resize(n);
  ids_.resize(n);
  vbuf_.resize(n);
  gbuf_.resize(n);
  sparse_of_.assign(n, nullptr);
  grad_sized_.assign(n, 0);
  reached_.assign(n, 0);
  in_ptrs_.resize(n);
  id_ptrs_.resize(n);
  ops_ = node_ops(g);
  for (std::size_t v = 0; v < n; ++v) {
    vbuf_[v] = &values_[v];
    gbuf_[v] = &grads_[v];
  }
  for (NodeId p : ps_->ids()) {
    vbuf_[p] = &ps_->value(p);
    if (ps_->is_sparse(p)) {
      sparse_of_[p] = &ps_->sparse_grad(p);
      sparse_list_.push_back(sparse_of_[p]);
    } else {
      gbuf_[p] = &ps_->grad(p);
    }
    grad_sized_[p] = 1;  // the store sized it
  }
  for (const Node& nd : g.nodes()) {
    if (nd.kind == NodeKind::Op) {
      const std::size_t k = nd.inputs.size();
      in_ptrs_[nd.id].resize(k, nullptr);
      id_ptrs_[nd.id].resize(k, nullptr);
      for (std::size_t s = 0; s < k; ++s) {
        NodeId u = nd.inputs[s];
        if (g.node(u).kind == NodeKind::Ids) id_ptrs_[nd.id][s] = &ids_[u];
        else in_ptrs_[nd.id][s] = vbuf_[u];
      }
    }
  }
  // Tables used by one op that can lay out their gradient rows in its forward pass.
  std::vector<int> uses(n, 0);
  for (const Node& nd : g.nodes())
    for (NodeId u : nd.inputs) ++uses[u];
  fwd_sparse_.resize(n);
  for (const Node& nd : g.nodes()) {
    if (nd.kind != NodeKind::Op) continue;
    for (std::size_t s = 0; s < nd.inputs.size(); ++s) {
      const NodeId u = nd.inputs[s];
      if (!sparse_of_[u] || uses[u] != 1 || !ops_[nd.id]->sparse_grad(s) || !ops_[nd.id]->prepares_sparse(s))
        continue;
      fwd_sparse_[nd.id].resize(nd.inputs.size(), nullptr);
      fwd_sparse_[nd.id][s] = sparse_of_[u];
    }
  }
  full_plan_.order = g.topo_order();
  check_.assign(n, 1);
  for (const Node& nd : g.nodes())
    if (nd.kind == NodeKind::Op && ops_[nd.id]->keeps_finite())
      check_[nd.id] = std::any_of(nd.inputs.begin(), nd.inputs.end(),
                                  [&g](NodeId u) { return g.node(u).kind != NodeKind::Op; });
  if constexpr (std::is_same_v<T, float>) {
    rounded_.resize(n);
    rounded_pass_.assign(n, 0);
    rnd_ptrs_.resize(n);
    for (const Node& nd : g.nodes()) {
      if (nd.kind != NodeKind::Op) continue;
      for (std::size_t s = 0; s < nd.inputs.size(); ++s) {
        const NodeId u = nd.inputs[s];
        if (g.node(u).kind != NodeKind::Param || sparse_of_[u] || !ops_[nd.id]->gemm_operand(s)) continue;
        rnd_ptrs_[nd.id].resize(nd.inputs.size(), nullptr);
        rnd_ptrs_[nd.id][s] = &rounded_[u];
      }
    }
  }
}

// Under bf16, hands the op its parameters' rounded copies, rounding each at its first use in this forward pass.
template <class T>
void Executor<T>::bind_rounded(NodeId v, Ctx<T>& c) {
  if constexpr (std::is_same_v<T, float>) {
    const auto& ptrs = rnd_ptrs_[v];
    if (ptrs.empty() || gemm_precision() != GemmPrecision::bf16) return;
    const Node& nd = g_.node(v);
    for (std::size_t s = 0; s < ptrs.size(); ++s) {
      const NodeId p = nd.inputs[s];
      if (!ptrs[s] || rounded_pass_[p] == pass_) continue;
      const Tensor<T>& w = *vbuf_[p];
      rounded_[p].resize(w.shape());  // a no-op once sized
      round_weights_bf16(w.data(), w.size(), rounded_[p].data());
      rounded_pass_[p] = pass_;
    }
    c.rounded = std::span<const Tensor<T>* const>(ptrs);
  } else {
    (void)v;
    (void)c;
  }
}

template <class T>
void Executor<T>::set_batch(std::int64_t b) {
  if (b <= 0) throw Error("batch size must be positive, got " + std::to_string(b));
  if (b == batch_) return;
  // The buffers of the previous batch size become the spares: alternating between two sizes (full batches and an
  // epoch's shorter last one) swaps them back instead of reallocating every buffer twice per epoch.
  auto has_shape = [b](const Tensor<T>& t, const Shape& s) {
    if (t.shape().size() != s.rank()) return false;
    for (std::size_t i = 0; i < s.rank(); ++i)
      if (static_cast<std::int64_t>(t.shape()[i]) != (s[i] == kBatch ? b : s[i])) return false;
    return true;
  };
  batch_ = b;
  for (const Node& nd : g_.nodes()) {
    if (nd.kind == NodeKind::Param || nd.kind == NodeKind::Ids) continue;
    if (nd.shape.has_batch()) {  // fixed shapes keep their buffers (and an Input's values)
      std::swap(values_[nd.id], spare_values_[nd.id]);
      std::swap(grads_[nd.id], spare_grads_[nd.id]);
    }
    if (!has_shape(values_[nd.id], nd.shape)) values_[nd.id].resize(nd.shape.concrete(b));
    if (grad_sized_[nd.id] && !has_shape(grads_[nd.id], nd.shape)) grads_[nd.id].resize(nd.shape.concrete(b));
  }
  for (std::size_t j = 0; j < scratch_.size(); ++j) {
    const Shape& s = g_.node(scratch_node_[j]).shape;
    if (s.has_batch()) std::swap(scratch_[j], spare_scratch_[j]);
    if (!has_shape(scratch_[j], s)) scratch_[j].resize(s.concrete(b));
  }
}

template <class T>
Tensor<T>& Executor<T>::input(NodeId id) {
  if (g_.node(id).kind != NodeKind::Input) throw GraphError("node '" + g_.node(id).name + "' is not an input");
  if (batch_ == 0) throw Error("call set_batch() before filling input '" + g_.node(id).name + "'");
  return values_[id];
}

template <class T>
IdBatch& Executor<T>::ids(NodeId id) {
  if (g_.node(id).kind != NodeKind::Ids) throw GraphError("node '" + g_.node(id).name + "' is not an ids input");
  return ids_[id];
}

template <class T>
const typename Executor<T>::Plan& Executor<T>::forward_plan(const std::vector<NodeId>& targets) {
  auto it = fwd_plans_.find(targets);
  if (it != fwd_plans_.end()) return it->second;
  Plan p;
  auto anc = g_.ancestors(targets);
  for (NodeId v : g_.topo_order())
    if (anc[v]) p.order.push_back(v);
  return fwd_plans_.emplace(targets, std::move(p)).first->second;
}

template <class T>
void Executor<T>::check_inputs(NodeId v) const {
  const Node& nd = g_.node(v);
  if (nd.kind == NodeKind::Input) {
    const auto& have = values_[v].shape();
    bool same = have.size() == nd.shape.rank();
    for (std::size_t i = 0; same && i < have.size(); ++i)
      same = static_cast<std::int64_t>(have[i]) == (nd.shape[i] == kBatch ? batch_ : nd.shape[i]);
    if (!same) {
      Shape hs{std::vector<Dim>(have.begin(), have.end())};
      throw ShapeError("input '" + nd.name + "' holds shape " + hs.str() + " but the graph expects " +
                       nd.shape.str() + " with B=" + std::to_string(batch_));
    }
  } else if (nd.kind == NodeKind::Ids) {
    const IdBatch& b = ids_[v];
    if (b.batch != batch_ || b.fields != nd.num_fields || !b.complete() ||
        b.ids.size() != b.weights.size())
      throw ShapeError("ids input '" + nd.name + "' holds " + std::to_string(b.batch) + " rows × " +
                       std::to_string(b.fields) + " fields (" + std::to_string(b.offsets.size()) +
                       " offsets) but the graph expects B=" + std::to_string(batch_) + " rows × " +
                       std::to_string(nd.num_fields) + " fields");
  }
}

namespace {

// True when no element is NaN or Inf: an all-ones exponent, tested on the bits with a branch-free OR so the loop
// vectorizes (a per-element isfinite() with an early exit cost ~5% of an ESMM step).
template <class T>
bool all_finite(const T* d, std::size_t n) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U exp_mask = static_cast<U>(sizeof(T) == 4 ? 0x7f800000ull : 0x7ff0000000000000ull);
  std::atomic<bool> ok{true};
  parallel_for(static_cast<std::int64_t>(n), 4 * kElementGrain, [d, &ok](std::int64_t i0, std::int64_t i1) {
    U bad = 0;
    for (auto i = static_cast<std::size_t>(i0); i < static_cast<std::size_t>(i1); ++i) {
      U b;
      std::memcpy(&b, d + i, sizeof b);
      bad |= static_cast<U>((b & exp_mask) == exp_mask);
    }
    if (bad) ok.store(false, std::memory_order_relaxed);
  });
  return ok.load();
}

// dst += src, elementwise (each element on its own, so the bits do not depend on the thread count).
template <class T>
void add_into(Tensor<T>& dst, const Tensor<T>& src) {
  T* d = dst.data();
  const T* s = src.data();
  parallel_for(static_cast<std::int64_t>(dst.size()), kElementGrain, [d, s](std::int64_t b, std::int64_t e) {
    T* __restrict dd = d + b;
    const T* __restrict ss = s + b;
    for (std::int64_t i = 0; i < e - b; ++i) dd[i] += ss[i];
  });
}

}  // namespace

template <class T>
void Executor<T>::run_forward(const Plan& p, bool prepare_sparse) {
  if (batch_ == 0) throw Error("call set_batch() before forward()");
  sparse_prepared_ = false;
  if (prepare_sparse) reset_sparse();
  ++pass_;  // parameters may have changed since the last pass: bf16 copies are remade at their first use
  for (NodeId v : p.order) {
    const Node& nd = g_.node(v);
    if (nd.kind != NodeKind::Op) {
      check_inputs(v);
      continue;
    }
    Ctx<T> c;
    c.node = &nd;
    c.batch = batch_;
    c.in = std::span<const Tensor<T>* const>(in_ptrs_[v]);
    c.ids = std::span<const IdBatch* const>(id_ptrs_[v]);
    c.out = &values_[v];
    if (prepare_sparse && !fwd_sparse_[v].empty())
      c.sparse = std::span<SparseRows<T>* const>(fwd_sparse_[v]);
    bind_rounded(v, c);
    if (profiling_) {
      const auto t0 = std::chrono::steady_clock::now();
      const double loops0 = thread_loop_seconds(), wait0 = thread_wait_seconds();
      ops_[v]->forward(c);
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      profile_.forward_seconds[v] += took;
      add_thread_profile(v, took, loops0, wait0);
      ++profile_.forward_calls[v];
    } else {
      ops_[v]->forward(c);
    }
    if (check_finite_ && check_[v] && !all_finite(values_[v].data(), values_[v].size())) {
      const T* d = values_[v].data();
      std::size_t i = 0;
      while (std::isfinite(d[i])) ++i;
      throw NonFiniteError(nd.name, "node '" + nd.name + "' (op " + nd.op + ") produced " +
                                        (std::isnan(d[i]) ? "NaN" : "Inf") + " at flat index " + std::to_string(i));
    }
  }
}

template <class T>
void Executor<T>::forward() {
  run_forward(full_plan_);
}

template <class T>
void Executor<T>::set_profiling(bool on) {
  profiling_ = on;
  set_thread_timing(on);
  if (on && profile_.forward_seconds.size() != g_.size()) reset_profile();
}

template <class T>
void Executor<T>::add_thread_profile(NodeId v, double took, double loops0, double wait0) {
  profile_.serial_seconds[v] += took - (thread_loop_seconds() - loops0);
  profile_.wait_seconds[v] += thread_wait_seconds() - wait0;
}

template <class T>
void Executor<T>::reset_profile() {
  profile_.forward_seconds.assign(g_.size(), 0.0);
  profile_.backward_seconds.assign(g_.size(), 0.0);
  profile_.serial_seconds.assign(g_.size(), 0.0);
  profile_.wait_seconds.assign(g_.size(), 0.0);
  profile_.forward_calls.assign(g_.size(), 0);
  profile_.backward_calls.assign(g_.size(), 0);
}

template <class T>
void Executor<T>::forward(const std::vector<NodeId>& targets) {
  run_forward(forward_plan(targets));
}

template <class T>
void Executor<T>::forward_for_backward(const std::vector<NodeId>& targets) {
  run_forward(forward_plan(targets), true);
  sparse_prepared_ = true;
}

template <class T>
void Executor<T>::reset_sparse() {
  // Sparse gradients touch at most min(table rows, ids in the batch) rows: reserve that once, so that a batch
  // touching more distinct rows than earlier ones does not allocate inside the op.
  std::size_t total_ids = 0;
  for (const IdBatch& b : ids_) total_ids += b.ids.size();
  for (SparseRows<T>* sr : sparse_list_) {
    SparseRows<T>& s = *sr;
    s.clear();
    const std::size_t cap = std::min(static_cast<std::size_t>(s.num_rows), total_ids);
    if (s.rows.capacity() < cap) {
      // Twice what this batch needs (at most the table): with multi-valued fields the number of ids varies from
      // batch to batch, and an exact reserve would reallocate at every new maximum. Untouched pages cost no RSS.
      const std::size_t want = std::min(static_cast<std::size_t>(s.num_rows), 2 * cap);
      s.rows.reserve(want);
      s.values.reserve(want * static_cast<std::size_t>(s.dim));
    }
    if (s.id_slot.capacity() < total_ids) s.id_slot.reserve(2 * total_ids);
    if (s.entry_cell.capacity() < total_ids) {  // the ops that lay out their rows ahead (prepares_sparse)
      s.entry_cell.reserve(2 * total_ids);
      s.entry_w.reserve(2 * total_ids);
    }
    if (s.by_slot.capacity() < cap + 1)
      s.by_slot.reserve(std::min(static_cast<std::size_t>(s.num_rows), 2 * cap) + 1);
  }
}

template <class T>
const typename Executor<T>::Plan& Executor<T>::backward_plan(const std::vector<LossWeight>& losses) {
  bwd_key_.clear();
  for (auto& lw : losses) bwd_key_.push_back(lw.loss);
  std::sort(bwd_key_.begin(), bwd_key_.end());
  auto it = bwd_plans_.find(bwd_key_);
  if (it != bwd_plans_.end()) return it->second;
  for (NodeId l : bwd_key_) {
    const Node& nd = g_.node(l);
    if (!nd.shape.dims.empty())
      throw GraphError("backward from '" + nd.name + "': a loss must be a scalar, got " + nd.shape.str());
  }
  Plan p;
  auto anc = g_.ancestors(bwd_key_);
  auto desc = g_.descendants(ps_->ids());
  p.need.assign(g_.size(), 0);
  for (std::size_t v = 0; v < g_.size(); ++v) p.need[v] = anc[v] && desc[v];
  // The accumulate-or-overwrite rule, decided here once. Steps run in reverse topological order, so when a step
  // runs every consumer of its node has run. The first gradient to reach a node overwrites its buffer; a later one
  // goes to a scratch buffer added in after the op (or in place, for an op that accumulates_into() the slot).
  // Losses start written: their seeds.
  std::vector<char> written(g_.size(), 0);
  for (NodeId l : bwd_key_) written[l] = 1;
  const auto& topo = g_.topo_order();
  for (auto r = topo.rbegin(); r != topo.rend(); ++r) {
    const NodeId v = *r;
    const Node& nd = g_.node(v);
    if (!p.need[v] || nd.kind != NodeKind::Op) continue;
    Step st;
    st.node = v;
    st.op = ops_[v];
    st.zero_first = !written[v];
    st.slots = p.gin.size();
    written[v] = 1;
    for (std::size_t s = 0; s < nd.inputs.size(); ++s) {
      const NodeId u = nd.inputs[s];
      Tensor<T>* gin = nullptr;
      SparseRows<T>* sp = nullptr;
      char add = 0;
      Tensor<T>* add_to = nullptr;
      if (p.need[u] && st.op->differentiable(s)) {
        st.run = true;
        std::size_t earlier = 0;  // earlier slots of this step that read u
        for (std::size_t e = 0; e < s; ++e) earlier += nd.inputs[e] == u;
        if (sparse_of_[u] != nullptr) {
          sp = sparse_of_[u];
        } else if (!written[u]) {
          gin = gbuf_[u];
          written[u] = 1;
        } else if (earlier == 0 && st.op->accumulates_into(s)) {
          gin = gbuf_[u];
          add = 1;
        } else {  // u's earlier-th scratch buffer: two slots of one call never share one
          gin = scratch(u, earlier);
          add_to = gbuf_[u];
        }
      }
      p.gin.push_back(gin);
      p.sparse.push_back(sp);
      p.add.push_back(add);
      p.add_to.push_back(add_to);
    }
    p.steps.push_back(st);
  }
  for (NodeId q : ps_->ids())
    if (sparse_of_[q] == nullptr && !written[q]) p.zero_params.push_back(q);
  return bwd_plans_.emplace(bwd_key_, std::move(p)).first->second;
}

template <class T>
Tensor<T>* Executor<T>::scratch(NodeId u, std::size_t k) {
  auto [it, fresh] = scratch_index_.try_emplace({u, k}, scratch_.size());
  if (fresh) {
    scratch_.push_back(Tensor<T>::from_shape(vbuf_[u]->shape()));
    spare_scratch_.emplace_back();
    scratch_node_.push_back(u);
  }
  return &scratch_[it->second];
}

template <class T>
void Executor<T>::ensure_grad_buffers() {
  // Gradient buffers for every node downstream of a parameter (dense params included), sized like values.
  for (const Node& nd : g_.nodes()) {
    if (grad_sized_[nd.id]) continue;
    if (nd.kind == NodeKind::Ids || nd.kind == NodeKind::Input) continue;
    grads_[nd.id].resize(values_[nd.id].shape());
    grad_sized_[nd.id] = 1;
  }
}

template <class T>
void Executor<T>::backward(const std::vector<LossWeight>& losses) {
  if (losses.empty()) throw GraphError("backward needs at least one loss");
  const Plan& p = backward_plan(losses);
  ensure_grad_buffers();
  // The rows a forward_for_backward laid out stay (the ops add their values); otherwise start empty.
  if (!sparse_prepared_) reset_sparse();
  sparse_prepared_ = false;
  for (std::size_t v = 0; v < g_.size(); ++v) reached_[v] = p.need[v];
  for (std::size_t i = 0; i < losses.size(); ++i) {
    const LossWeight& lw = losses[i];
    bool again = false;  // the same loss listed twice: the weights add
    for (std::size_t j = 0; j < i; ++j) again = again || losses[j].loss == lw.loss;
    T* g = gbuf_[lw.loss]->data();
    if (again) g[0] += static_cast<T>(lw.weight);
    else g[0] = static_cast<T>(lw.weight);
    reached_[lw.loss] = 1;
  }
  for (const Step& st : p.steps) {
    const NodeId v = st.node;
    if (st.zero_first) gbuf_[v]->fill(T(0));
    if (!st.run) continue;
    const std::size_t k = g_.node(v).inputs.size();
    Ctx<T> c;
    c.node = &g_.node(v);
    c.batch = batch_;
    c.in = std::span<const Tensor<T>* const>(in_ptrs_[v]);
    c.ids = std::span<const IdBatch* const>(id_ptrs_[v]);
    c.out = &values_[v];
    c.gout = gbuf_[v];
    c.gin = std::span<Tensor<T>* const>(p.gin.data() + st.slots, k);
    c.sparse = std::span<SparseRows<T>* const>(p.sparse.data() + st.slots, k);
    c.add = std::span<const char>(p.add.data() + st.slots, k);
    bind_rounded(v, c);
    const auto t0 = profiling_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    const double loops0 = profiling_ ? thread_loop_seconds() : 0.0, wait0 = profiling_ ? thread_wait_seconds() : 0.0;
    st.op->backward(c);
    for (std::size_t s = 0; s < k; ++s)
      if (Tensor<T>* dst = p.add_to[st.slots + s]) add_into(*dst, *p.gin[st.slots + s]);
    if (profiling_) {
      const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      profile_.backward_seconds[v] += took;
      add_thread_profile(v, took, loops0, wait0);
      ++profile_.backward_calls[v];
    }
  }
  for (NodeId q : p.zero_params) gbuf_[q]->fill(T(0));
  // Rows laid out in the forward pass by an op this backward did not run (its losses were not asked for): none.
  for (SparseRows<T>* sr : sparse_list_)
    if (sr->slots_ready) sr->clear();
  for (NodeId q : ps_->ids()) ps_->set_has_grad(q, reached_[q] != 0);
  backward_ran_ = true;
}

template <class T>
void Executor<T>::backward(NodeId loss) {
  single_loss_[0] = LossWeight{loss, 1.0};
  backward(single_loss_);
}

template <class T>
bool Executor<T>::has_grad(NodeId param) const {
  return reached_.at(param) != 0;
}

template <class T>
const Tensor<T>& Executor<T>::grad(NodeId param) const {
  const Tensor<T>& g = ps_->grad(param);
  if (!backward_ran_) throw GraphError("no gradient yet for '" + g_.node(param).name + "': run backward()");
  return g;
}

template <class T>
Tensor<T>& Executor<T>::grad_mut(NodeId param) {
  return const_cast<Tensor<T>&>(static_cast<const Executor&>(*this).grad(param));
}

template <class T>
const SparseRows<T>& Executor<T>::sparse_grad(NodeId param) const {
  return ps_->sparse_grad(param);
}

template <class T>
SparseRows<T>& Executor<T>::sparse_grad_mut(NodeId param) {
  return ps_->sparse_grad(param);
}

template class Executor<float>;
template class Executor<double>;

}  // namespace funnel
