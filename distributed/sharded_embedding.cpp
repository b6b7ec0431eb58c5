#include "distributed/sharded_embedding.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "distributed/data_parallel.hpp"

namespace funnel::dist {

namespace {

// Rows ≡ rank (mod n) of a table of V rows.
std::int64_t rows_of(std::int64_t V, int rank, int n) { return V > rank ? (V - rank + n - 1) / n : 0; }

}  // namespace

ShardedEmbeddings::ShardedEmbeddings(Communicator& c, Model& m, Optimizer<float>& opt)
    : c_(c), m_(m), opt_(opt), rank_(c.rank()), nranks_(c.size()) {
  ParamStore<float>& ps = m.params();
  const Graph& g = ps.graph();
  for (NodeId p : ps.ids()) {
    if (!ps.is_sparse(p)) continue;
    Table t;
    t.param = p;
    const Tensor<float>& v = ps.value(p);
    t.V = static_cast<std::int64_t>(v.shape()[0]);
    t.dim = static_cast<std::int64_t>(v.shape()[1]);
    for (const Graph::Use& u : g.uses(p)) {
      const Node& nd = g.node(u.consumer);
      if (nd.op != "embedding" || u.slot != 0 || nd.inputs.size() < 2 ||
          g.node(nd.inputs[1]).kind != NodeKind::Ids)
        throw Error("--shard-embeddings: table '" + ps.name(p) + "' is read by node '" + nd.name + "' (op " + nd.op +
                    "); only embedding lookups of ids inputs can read a sharded table");
      if (std::find(t.id_nodes.begin(), t.id_nodes.end(), nd.inputs[1]) == t.id_nodes.end())
        t.id_nodes.push_back(nd.inputs[1]);
    }
    // The lookups are remapped to the working rows of the batch, so an ids input may feed this table only.
    for (NodeId n : t.id_nodes)
      for (NodeId c : g.consumers(n)) {
        const Node& nd = g.node(c);
        if (nd.op != "embedding" || nd.inputs.size() < 2 || nd.inputs[0] != p || nd.inputs[1] != n)
          throw Error("--shard-embeddings: ids input '" + g.node(n).name + "' of table '" + ps.name(p) +
                      "' is also read by node '" + nd.name + "' (op " + nd.op +
                      "); a sharded table needs ids inputs of its own");
      }
    t.owned = rows_of(t.V, rank_, nranks_);
    const auto D = static_cast<std::size_t>(t.dim);
    t.values.resize(static_cast<std::size_t>(t.owned) * D);
    for (std::int64_t i = 0; i < t.owned; ++i)
      std::memcpy(t.values.data() + static_cast<std::size_t>(i) * D,
                  v.data() + static_cast<std::size_t>(global_row(i)) * D, D * sizeof(float));
    // State loaded into the store (a checkpoint): keep this rank's rows of it.
    if (!ps.optimizer().empty() && ps.optimizer() == opt.name() && !ps.slot_names().empty()) {
      for (std::size_t k = 0; k < ps.slot_names().size(); ++k) {
        const float* src = ps.slot(p, k);
        std::vector<float>& dst = t.slots.emplace_back(t.values.size());
        for (std::int64_t i = 0; i < t.owned; ++i)
          std::memcpy(dst.data() + static_cast<std::size_t>(i) * D, src + static_cast<std::size_t>(global_row(i)) * D,
                      D * sizeof(float));
      }
      for (auto& s : t.slots) t.slot_ptrs.push_back(s.data());
    }
    ps.keep_slots_elsewhere(p);
    t.acc.init(t.owned, t.dim);
    // From now on the store holds only the working rows of the current batch (grown by fetch()).
    resize_working(t, 1);
    tables_.push_back(std::move(t));
  }
  const std::size_t PS = static_cast<std::size_t>(nranks_) * tables_.size();
  for (auto* v : {&cnt_send_, &cnt_recv_, &pos_, &fpos_}) v->resize(PS);
  for (auto* v : {&n_send_, &n_recv_, &f_send_, &f_recv_}) v->resize(static_cast<std::size_t>(nranks_));
}

bool ShardedEmbeddings::is_sharded(NodeId p) const {
  for (const Table& t : tables_)
    if (t.param == p) return true;
  return false;
}

const float* ShardedEmbeddings::owned_value(std::size_t k, std::int64_t i) const {
  const Table& t = tables_.at(k);
  return t.values.data() + static_cast<std::size_t>(i * t.dim);
}

const float* ShardedEmbeddings::owned_slot(std::size_t k, std::size_t s, std::int64_t i) const {
  const Table& t = tables_.at(k);
  if (s >= t.slots.size()) return nullptr;
  return t.slots[s].data() + static_cast<std::size_t>(i * t.dim);
}

std::size_t ShardedEmbeddings::state_elements() const {
  std::size_t n = 0;
  for (const Table& t : tables_)
    for (const auto& s : t.slots) n += s.size();
  return n;
}

void ShardedEmbeddings::check_owned(const Table& t, std::int64_t id, const char* what) const {
  if (id < 0 || id >= t.V || owner(id) != rank_)
    throw CommError("rank " + std::to_string(rank_) + " of " + std::to_string(nranks_) + ": " + what + " row " +
                    std::to_string(id) + " of table '" + m_.params().name(t.param) +
                    "', which it does not own (rows ≡ " + std::to_string(rank_) + " mod " +
                    std::to_string(nranks_) + " of " + std::to_string(t.V) + ")");
}

void ShardedEmbeddings::resize_working(Table& t, std::int64_t rows) {
  ParamStore<float>& ps = m_.params();
  Tensor<float>& w = ps.value(t.param);
  const std::vector<std::size_t> shape{static_cast<std::size_t>(rows), static_cast<std::size_t>(t.dim)};
  w.resize(shape);
  w.fill(0.0f);
  ps.sparse_grad(t.param).init(rows, t.dim);
  t.cap = rows;
}

void ShardedEmbeddings::ensure_slots() {
  const std::size_t ns = opt_.slot_names().size();
  for (Table& t : tables_) {
    if (t.slots.size() == ns) continue;
    t.slots.clear();
    t.slot_ptrs.clear();
    for (std::size_t k = 0; k < ns; ++k) t.slots.emplace_back(t.values.size(), opt_.slot_initial_value(k));
    for (auto& s : t.slots) t.slot_ptrs.push_back(s.data());
  }
}

// cnt_send_[o*S + s] (ids or rows of table s for rank o) → cnt_recv_ by MPI_Alltoall. Then n_send_/n_recv_ = the
// element counts per rank, pos_ = where each (rank, table) block starts in the send buffer (rank-major, then table),
// fpos_ = the same for dim floats per element, f_send_/f_recv_ = float counts per rank.
void ShardedEmbeddings::exchange_counts(ShardBytes& b) {
  const std::size_t S = tables_.size(), P = static_cast<std::size_t>(nranks_);
  c_.alltoall(cnt_send_.data(), S, cnt_recv_.data(), DType::I64);
  b.counts += S * (P - 1) * sizeof(std::int64_t);
  std::int64_t off = 0, foff = 0;
  for (std::size_t o = 0; o < P; ++o) {
    n_send_[o] = n_recv_[o] = f_send_[o] = f_recv_[o] = 0;
    for (std::size_t s = 0; s < S; ++s) {
      const std::int64_t ns = cnt_send_[o * S + s], nr = cnt_recv_[o * S + s], D = tables_[s].dim;
      pos_[o * S + s] = off;
      fpos_[o * S + s] = foff;
      off += ns;
      foff += ns * D;
      n_send_[o] += ns;
      n_recv_[o] += nr;
      f_send_[o] += ns * D;
      f_recv_[o] += nr * D;
    }
  }
}

namespace {
std::size_t sum(const std::vector<std::int64_t>& v) {
  std::int64_t n = 0;
  for (auto x : v) n += x;
  return static_cast<std::size_t>(n);
}
}  // namespace

void ShardedEmbeddings::fetch(bool has_batch) {
  const std::size_t S = tables_.size(), P = static_cast<std::size_t>(nranks_);
  ShardBytes b;
  if (S == 0) {
    last_ = b;
    return;
  }
  Executor<float>& ex = m_.exec();
  std::string bad;  // an id out of range: reported after this round's collectives
  // The distinct ids of the bound batch per table, sorted: id want[j] goes to working row j.
  std::fill(cnt_send_.begin(), cnt_send_.end(), 0);
  for (std::size_t s = 0; s < S; ++s) {
    Table& t = tables_[s];
    t.want.clear();
    if (!has_batch) continue;
    for (NodeId n : t.id_nodes) {
      const IdBatch& ib = ex.ids(n);
      for (std::size_t k = 0; k < ib.ids.size(); ++k) {
        const std::int64_t id = ib.ids[k];
        if (id >= 0 && id < t.V) {
          t.want.push_back(id);
        } else if (bad.empty()) {
          std::size_t cell = 0;
          while (cell + 1 < ib.offsets.size() && ib.offsets[cell + 1] <= static_cast<std::int64_t>(k)) ++cell;
          const auto F = static_cast<std::size_t>(std::max<std::int64_t>(ib.fields, 1));
          bad = "ids input '" + m_.graph().node(n).name + "': row " + std::to_string(cell / F) + ", field " +
                std::to_string(cell % F) + ": id " + std::to_string(id) + " is out of range for table '" +
                m_.params().name(t.param) + "' of " + std::to_string(t.V) + " rows";
        }
      }
    }
    std::sort(t.want.begin(), t.want.end());
    t.want.erase(std::unique(t.want.begin(), t.want.end()), t.want.end());
    for (std::int64_t id : t.want) ++cnt_send_[static_cast<std::size_t>(owner(id)) * S + s];
  }
  exchange_counts(b);
  ids_send_.resize(sum(n_send_));
  work_send_.resize(ids_send_.size());
  for (std::size_t s = 0; s < S; ++s)
    for (std::size_t j = 0; j < tables_[s].want.size(); ++j) {
      const std::int64_t id = tables_[s].want[j];
      const auto at = static_cast<std::size_t>(pos_[static_cast<std::size_t>(owner(id)) * S + s]++);
      ids_send_[at] = id;
      work_send_[at] = static_cast<std::int64_t>(j);
    }
  ids_recv_.resize(sum(n_recv_));
  c_.alltoallv(ids_send_.data(), n_send_, ids_recv_.data(), n_recv_, DType::I64);

  // Serve: the rows asked of this rank, in the order asked (rank by rank, table by table); the replies travel
  // the other way, so the float counts swap roles.
  vals_send_.resize(sum(f_recv_));
  std::size_t at = 0, ii = 0;
  for (std::size_t r = 0; r < P; ++r)
    for (std::size_t s = 0; s < S; ++s) {
      const Table& t = tables_[s];
      const auto D = static_cast<std::size_t>(t.dim);
      for (std::int64_t k = 0; k < cnt_recv_[r * S + s]; ++k, ++ii, at += D) {
        const std::int64_t id = ids_recv_[ii];
        check_owned(t, id, "was asked for");
        std::memcpy(vals_send_.data() + at, t.values.data() + static_cast<std::size_t>(id / nranks_) * D,
                    D * sizeof(float));
      }
    }
  vals_recv_.resize(sum(f_send_));
  c_.alltoallv(vals_send_.data(), f_recv_, vals_recv_.data(), f_send_, DType::F32);
  // The working rows: grown when this batch needs more, filled in the (owner, table) order the rows came back.
  for (Table& t : tables_) {
    const auto need = static_cast<std::int64_t>(t.want.size());
    if (need > t.cap) resize_working(t, std::min(t.V, std::max(need, t.cap + t.cap / 2)));
  }
  at = 0;
  ii = 0;
  for (std::size_t o = 0; o < P; ++o)
    for (std::size_t s = 0; s < S; ++s) {
      Table& t = tables_[s];
      const auto D = static_cast<std::size_t>(t.dim);
      float* work = m_.params().value(t.param).data();
      for (std::int64_t k = 0; k < cnt_send_[o * S + s]; ++k, ++ii, at += D)
        std::memcpy(work + static_cast<std::size_t>(work_send_[ii]) * D, vals_recv_.data() + at, D * sizeof(float));
    }
  // The lookups read the working rows: every id becomes its row's index in `want`.
  for (Table& t : tables_)
    for (NodeId n : has_batch ? t.id_nodes : std::vector<NodeId>{})
      for (std::int64_t& id : ex.ids(n).ids)
        if (id >= 0 && id < t.V) id = std::lower_bound(t.want.begin(), t.want.end(), id) - t.want.begin();
  for (std::size_t o = 0; o < P; ++o) {
    if (o == static_cast<std::size_t>(rank_)) continue;
    b.ids += static_cast<std::uint64_t>(n_send_[o]) * sizeof(std::int64_t);
    b.rows += static_cast<std::uint64_t>(f_recv_[o]) * sizeof(float);
  }
  last_ = b;
  total_ += b;
  if (!bad.empty()) throw Error(bad);
}

void ShardedEmbeddings::exchange_gradients(float weight, bool has_grads) {
  exchange_gradients(weight, has_grads, m_.params().optimizer_steps() + 1);
}

void ShardedEmbeddings::exchange_gradients(float weight, bool has_grads, std::int64_t step) {
  const std::size_t S = tables_.size(), P = static_cast<std::size_t>(nranks_);
  if (S == 0) return;
  ParamStore<float>& ps = m_.params();
  ShardBytes b;
  std::fill(cnt_send_.begin(), cnt_send_.end(), 0);
  auto mine = [&](const Table& t) { return has_grads && ps.has_grad(t.param); };
  for (std::size_t s = 0; s < S; ++s)
    if (mine(tables_[s]))
      for (std::int64_t w : ps.sparse_grad(tables_[s].param).rows)  // working rows of the last fetch
        ++cnt_send_[static_cast<std::size_t>(owner(tables_[s].want[static_cast<std::size_t>(w)])) * S + s];
  exchange_counts(b);
  // Rows and their values × weight (as the replicated reducer scales them), grouped by owner then table, each
  // group in the gradient's row order.
  ids_send_.resize(sum(n_send_));
  vals_send_.resize(sum(f_send_));
  for (std::size_t s = 0; s < S; ++s) {
    const Table& t = tables_[s];
    if (!mine(t)) continue;
    const SparseRows<float>& sg = ps.sparse_grad(t.param);
    const auto D = static_cast<std::size_t>(t.dim);
    for (std::size_t k = 0; k < sg.rows.size(); ++k) {
      const std::int64_t id = t.want[static_cast<std::size_t>(sg.rows[k])];
      const std::size_t blk = static_cast<std::size_t>(owner(id)) * S + s;
      ids_send_[static_cast<std::size_t>(pos_[blk]++)] = id;
      float* dst = vals_send_.data() + fpos_[blk];
      fpos_[blk] += static_cast<std::int64_t>(D);
      const float* src = sg.row_at(k);
      for (std::size_t j = 0; j < D; ++j) dst[j] = weight * src[j];
    }
  }
  ids_recv_.resize(sum(n_recv_));
  c_.alltoallv(ids_send_.data(), n_send_, ids_recv_.data(), n_recv_, DType::I64);
  vals_recv_.resize(sum(f_recv_));
  c_.alltoallv(vals_send_.data(), f_send_, vals_recv_.data(), f_recv_, DType::F32);
  for (std::size_t o = 0; o < P; ++o)
    if (o != static_cast<std::size_t>(rank_))
      b.grads += static_cast<std::uint64_t>(n_send_[o]) * sizeof(std::int64_t) +
                 static_cast<std::uint64_t>(f_send_[o]) * sizeof(float);

  // Merge in rank order (rank 0's contribution first), as the replicated reducer does: the same sums, bit for bit.
  for (Table& t : tables_) t.acc.clear();
  std::size_t rat = 0, vat = 0;
  for (std::size_t r = 0; r < P; ++r)
    for (std::size_t s = 0; s < S; ++s) {
      Table& t = tables_[s];
      const auto D = static_cast<std::size_t>(t.dim);
      for (std::int64_t k = 0; k < cnt_recv_[r * S + s]; ++k, ++rat, vat += D) {
        const std::int64_t id = ids_recv_[rat];
        check_owned(t, id, "was sent the gradient of");
        // (index() first: it may grow the values, so their address is taken after it.)
        const std::int32_t slot = t.acc.index(id / nranks_);
        float* dst = t.acc.values.data() + static_cast<std::size_t>(slot) * D;
        const float* src = vals_recv_.data() + vat;
        for (std::size_t j = 0; j < D; ++j) dst[j] += src[j];
      }
    }
  ensure_slots();
  for (Table& t : tables_) {
    opt_.update_rows(t.values.data(), t.acc.values.data(), t.acc.rows.data(), t.acc.size(),
                     static_cast<std::size_t>(t.dim), t.slot_ptrs.data(), step);
    ps.set_has_grad(t.param, false);  // done: the reducer and the optimizer's step leave the table alone
  }
  last_ += b;
  total_ += b;
  train_ += last_;  // this step's fetch and exchange
  ++steps_;
}

void ShardedEmbeddings::gather(ParamStore<float>* full, std::vector<NamedArray>* state) {
  const std::size_t P = static_cast<std::size_t>(nranks_);
  const bool root = rank_ == 0;
  ParamStore<float>& ps = m_.params();
  // Whether any state exists (every rank makes its slots at the same step, so rank 0's answer is everyone's).
  std::int64_t nslots = static_cast<std::int64_t>(tables_.empty() ? 0 : tables_[0].slots.size());
  c_.broadcast(&nslots, 1, DType::I64, 0);
  std::vector<float> buf;
  std::vector<std::int64_t> counts(P);
  for (const Table& t : tables_) {
    const auto D = static_cast<std::size_t>(t.dim);
    for (std::size_t r = 0; r < P; ++r) counts[r] = rows_of(t.V, static_cast<int>(r), nranks_) * t.dim;
    if (root) buf.resize(static_cast<std::size_t>(t.V) * D);
    // Rank r's block holds its rows r, r+N, … in order: row i of the block is table row i·N + r.
    auto scatter_into = [&](float* full) {
      std::size_t at = 0;
      for (std::size_t r = 0; r < P; ++r)
        for (std::int64_t i = 0; i < rows_of(t.V, static_cast<int>(r), nranks_); ++i, at += D)
          std::memcpy(full + static_cast<std::size_t>(i * nranks_ + static_cast<std::int64_t>(r)) * D,
                      buf.data() + at, D * sizeof(float));
    };
    c_.gatherv(t.values.data(), t.values.size(), root ? buf.data() : nullptr, counts, DType::F32, 0);
    if (root && full) scatter_into(full->value(t.param).data());
    for (std::size_t k = 0; k < static_cast<std::size_t>(nslots); ++k) {
      if (t.slots.size() != static_cast<std::size_t>(nslots))
        throw CommError("rank " + std::to_string(rank_) + ": sharded optimizer state out of step with rank 0");
      c_.gatherv(t.slots[k].data(), t.slots[k].size(), root ? buf.data() : nullptr, counts, DType::F32, 0);
      if (root && state) {
        NamedArray a;
        a.name = ps.name(t.param) + "/" + opt_.slot_names().at(k);
        a.shape = {t.V, t.dim};
        a.data.resize(buf.size());
        scatter_into(a.data.data());
        state->push_back(std::move(a));
      }
    }
  }
}

void ShardedEmbeddings::save(Trainer& tr, const std::string& dir, std::int64_t step) {
  const TrainerOptions& o = tr.options();
  save(dir, step, to_json(o.model), tr.data().train.json, 0, o.config.is_object() ? o.config : nlohmann::json());
}

void ShardedEmbeddings::save(const std::string& dir, std::int64_t step, const nlohmann::json& model,
                             const nlohmann::json& data, std::int64_t epoch, const nlohmann::json& config) {
  // Rank 0 makes a store of the whole model for the writer: the dense parameters' values and state as they are,
  // the tables gathered from their owners (so rank 0 holds every table in full while it writes).
  ParamStore<float>& ps = m_.params();
  std::unique_ptr<ParamStore<float>> whole;
  if (rank_ == 0) {
    whole = std::make_unique<ParamStore<float>>(ps.graph());
    for (NodeId p : ps.ids())
      if (!is_sharded(p)) std::memcpy(whole->value(p).data(), ps.value(p).data(), ps.numel(p) * sizeof(float));
  }
  std::vector<NamedArray> tables_state;
  gather(whole.get(), &tables_state);
  if (rank_ != 0) return;
  ParamStore<float>& full = *whole;
  OptimizerState st = ps.export_optimizer();  // without the tables (their state is kept here)
  if (!st.optimizer.empty()) {
    for (auto& a : tables_state) st.arrays.push_back(std::move(a));
    opt_.import_state(full, st);
  }
  save_checkpoint(dir, full, &opt_, model, data, step, epoch, config);
}

// ---------------------------------------------------------------- source

ShardedSource::ShardedSource(Communicator& c, ShardedEmbeddings& se, std::unique_ptr<BatchSource> mine)
    : c_(c), se_(se), mine_(std::move(mine)) {}

BatchRows ShardedSource::next(Model& m) {
  BatchRows b;
  std::exception_ptr error;
  try {
    b = mine_->next(m);
  } catch (...) {
    error = std::current_exception();  // still take part in this round, then rethrow
  }
  for (;;) {
    const bool active = error || b.rows > 0;
    if (c_.allreduce_one<std::int64_t>(active ? 1 : 0, ReduceOp::Max) == 0) return b;  // every rank has ended
    se_.fetch(!error && b.local > 0);
    if (error) std::rethrow_exception(error);
    if (active) return b;
    // This rank's source has ended, another's has not: serve its rows, then ask again.
  }
}

// ---------------------------------------------------------------- training

TrainResult train_sharded(DataParallel& dp, ShardedEmbeddings& se, Model& m, Optimizer<float>& opt,
                          std::unique_ptr<BatchSource> train, std::unique_ptr<BatchSource> eval,
                          const TrainOptions& o, const TrainHooks& hooks, std::int64_t start_step) {
  Communicator& c = dp.comm();
  dp.set_sharded(&se);
  ShardedSource src(c, se, std::move(train));
  std::unique_ptr<ShardedSource> ev;
  if (eval) ev = std::make_unique<ShardedSource>(c, se, std::move(eval));
  return train_data_parallel(dp, m, opt, src, ev.get(), o, hooks, start_step);
}

TrainResult train_sharded(DataParallel& dp, ShardedEmbeddings& se, Model& m, Optimizer<float>& opt,
                          const Dataset& data, const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                          std::int64_t start_step) {
  Communicator& c = dp.comm();
  auto src = std::make_unique<DatasetSource>(data, o.batch_size, o.shuffle, o.seed, c.rank(), c.size());
  std::unique_ptr<BatchSource> ev;
  if (eval) ev = std::make_unique<DatasetSource>(*eval, o.eval_batch_size, false, 1, c.rank(), c.size());
  return train_sharded(dp, se, m, opt, std::move(src), std::move(ev), o, hooks, start_step);
}

TrainResult train_sharded(Communicator& c, Trainer& t, ShardedEmbeddings& se, const TrainHooks& hooks,
                          const DataParallelOptions& o) {
  DataParallel dp(c, t.model(), o);
  const int r = c.rank(), n = c.size();
  std::unique_ptr<BatchSource> src = t.train_source(r, n);
  if (t.data().streamed()) src = std::make_unique<AgreedSource>(c, std::move(src));
  return train_sharded(dp, se, t.model(), t.optimizer(), std::move(src), t.eval_source(r, n), t.loop_options(),
                       hooks, t.start_step());
}

}  // namespace funnel::dist
