#include "distributed/sharded_embedding.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>

#include "core/error.hpp"
#include "distributed/data_parallel.hpp"

namespace funnel::dist {

namespace {

// Rows ≡ rank (mod n) of a table of V rows.
std::int64_t rows_of(std::int64_t V, int rank, int n) { return V > rank ? (V - rank + n - 1) / n : 0; }

}  // namespace

// ---------------------------------------------------------------- storage

RowShardedTable::RowShardedTable(std::int64_t rows, std::int64_t dim, int rank, int nranks)
    : V_(rows), dim_(dim), owned_(rows_of(rows, rank, nranks)), rank_(rank), nranks_(nranks) {
  if (nranks < 1 || rank < 0 || rank >= nranks)
    throw Error("RowShardedTable: rank " + std::to_string(rank) + " of " + std::to_string(nranks));
  values_.assign(static_cast<std::size_t>(owned_ * dim_), 0.0f);
}

void RowShardedTable::bind(Tensor<float>& lookup, SparseRows<float>* grad) {
  lookup_ = &lookup;
  grad_ = grad;
  lookup = Tensor<float>::from_shape({std::size_t{0}, static_cast<std::size_t>(dim_)});
  if (grad_) grad_->init(0, dim_);
  cap_ = 0;
}

void RowShardedTable::init(const TableRowDraw<float>& draw) {
  const auto D = static_cast<std::size_t>(dim_);
  const int N = nranks_, r = rank_;
  float* dst = values_.data();
  draw([&](std::int64_t row, const float* v) {
    if (row % N == r && D > 0) std::memcpy(dst + static_cast<std::size_t>(row / N) * D, v, D * sizeof(float));
  });
}

void RowShardedTable::apply(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) {
  rule.update_rows(values_.data(), g.values.data(), g.rows.data(), g.size(), static_cast<std::size_t>(dim_),
                   slot_ptrs(), t);
}

void RowShardedTable::apply_lookup(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) {
  throw Error("a row-sharded embedding table's gradient goes to the rows' owners "
              "(ShardedEmbeddings::exchange_gradients); it is not applied to the working rows");
}

std::size_t RowShardedTable::bytes() const {
  return TableStorage<float>::bytes() + values_.capacity() * sizeof(float);
}

void RowShardedTable::resize_working(std::int64_t rows) {
  const std::vector<std::size_t> shape{static_cast<std::size_t>(rows), static_cast<std::size_t>(dim_)};
  lookup_->resize(shape);
  lookup_->fill(0.0f);
  if (grad_) grad_->init(rows, dim_);
  cap_ = rows;
}

ParamStoreOptions row_sharded_store(int rank, int nranks) {
  ParamStoreOptions o;
  o.tables = [rank, nranks](const Graph& g, NodeId p) -> std::unique_ptr<TableStorage<float>> {
    const Node& nd = g.node(p);
    return std::make_unique<RowShardedTable>(nd.shape[0], nd.shape[1], rank, nranks);
  };
  return o;
}

// ---------------------------------------------------------------- shards

ShardedEmbeddings::ShardedEmbeddings(Communicator& c, Trainer& t)
    : ShardedEmbeddings(c, t.model(), t.optimizer(),
                        ShardInit{.checkpoint = t.options().init_dir, .load_state = !t.options().reset_optimizer}) {}

ShardedEmbeddings::ShardedEmbeddings(Communicator& c, Model& m, Optimizer<float>& opt, const ShardInit& init)
    : c_(c), m_(m), opt_(opt), rank_(c.rank()), nranks_(c.size()) {
  ParamStore<float>& ps = m.params();
  const Graph& g = ps.graph();
  // A checkpoint to read the rows of row-sharded storages from (the rest of the model is the caller's to load).
  bool any_sharded = false;
  for (NodeId p : ps.ids())
    any_sharded = any_sharded || (ps.is_table(p) && dynamic_cast<const RowShardedTable*>(&ps.table(p)) != nullptr);
  CheckpointInfo info;
  const bool from_checkpoint = any_sharded && !init.checkpoint.empty();
  if (from_checkpoint) info = read_checkpoint_info(init.checkpoint);
  const bool load_state = from_checkpoint && init.load_state && !info.optimizer_arrays.empty();
  if (load_state && info.optimizer != opt.name())
    throw Error(init.checkpoint + ": the checkpoint holds '" + info.optimizer +
                "' optimizer state, the optimizer is '" + opt.name() + "'");
  auto entry = [&](const std::vector<CheckpointParam>& list, const std::string& name) -> const CheckpointParam& {
    for (const auto& e : list)
      if (e.name == name) return e;
    throw Error(init.checkpoint + ": the checkpoint has no array '" + name + "' (the graph's table needs it)");
  };
  const std::vector<std::string> slot_names = opt.slot_names();
  std::vector<float> zeros(slot_names.size(), 0.0f);
  for (NodeId p : ps.ids()) {
    if (!ps.is_sparse(p)) continue;
    Table t;
    t.param = p;
    const Node& table_node = g.node(p);
    t.V = table_node.shape[0];
    t.dim = table_node.shape[1];
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
    TableStorage<float>& was = ps.table(p);
    if (auto* st = dynamic_cast<RowShardedTable*>(&was)) {
      // Never allocated in full: this rank's rows straight from the checkpoint, or as ParamStore::init drew them.
      if (st->rank() != rank_ || st->nranks() != nranks_)
        throw Error("--shard-embeddings: table '" + ps.name(p) + "' is stored for rank " + std::to_string(st->rank()) +
                    " of " + std::to_string(st->nranks()) + ", this is rank " + std::to_string(rank_) + " of " +
                    std::to_string(nranks_));
      if (from_checkpoint) {
        read_checkpoint_rows(init.checkpoint, entry(info.params, ps.name(p)), rank_, nranks_, st->values().data());
        if (load_state) {
          st->make_slots(slot_names.size(), zeros.data());  // (every value is read below)
          for (std::size_t k = 0; k < slot_names.size(); ++k)
            read_checkpoint_rows(init.checkpoint, entry(info.optimizer_arrays, ps.name(p) + "/" + slot_names[k]),
                                 rank_, nranks_, st->slot_ptrs()[k]);
        }
      }
      t.st = st;
    } else {
      // The store holds the table in full (made and perhaps loaded before): this rank's rows and state go into a
      // row-sharded storage that replaces it (the full copy and its state are freed).
      auto split = std::make_unique<RowShardedTable>(t.V, t.dim, rank_, nranks_);
      const float* v = was.held_values();
      float* dst = split->values().data();
      for (std::int64_t i = 0; i < t.owned; ++i)
        std::memcpy(dst + static_cast<std::size_t>(i) * D, v + static_cast<std::size_t>(global_row(i)) * D,
                    D * sizeof(float));
      // State loaded into the store (a checkpoint): keep this rank's rows of it.
      if (!ps.optimizer().empty() && ps.optimizer() == opt.name() && !ps.slot_names().empty() &&
          was.num_slots() == ps.slot_names().size()) {
        split->make_slots(ps.slot_names().size(), zeros.data());
        for (std::size_t k = 0; k < ps.slot_names().size(); ++k) {
          const float* src = was.slot_ptrs()[k];
          float* sd = split->slot_ptrs()[k];
          for (std::int64_t i = 0; i < t.owned; ++i)
            std::memcpy(sd + static_cast<std::size_t>(i) * D, src + static_cast<std::size_t>(global_row(i)) * D,
                        D * sizeof(float));
        }
      }
      t.st = split.get();
      ps.set_table(p, std::move(split));
    }
    t.acc.init(t.owned, t.dim);
    // From now on the store holds only the working rows of the current batch (grown by fetch()).
    t.st->resize_working(1);
    // Saving streams the table in chunks of about a MiB, a multiple of N rows (each rank's share the same).
    t.save_chunk = std::max<std::int64_t>(1, (std::int64_t{1} << 18) / std::max<std::int64_t>(t.dim, 1) / nranks_) *
                   nranks_;
    tables_.push_back(std::move(t));
  }
  const std::size_t PS = static_cast<std::size_t>(nranks_) * tables_.size();
  for (auto* v : {&cnt_send_, &cnt_recv_, &pos_, &fpos_}) v->resize(PS);
  for (auto* v : {&n_send_, &n_recv_, &f_send_, &f_recv_}) v->resize(static_cast<std::size_t>(nranks_));
}

void ShardedEmbeddings::set_save_chunk_rows(std::int64_t rows) {
  for (Table& t : tables_) t.save_chunk = std::max<std::int64_t>(1, rows);
}

std::size_t ShardedEmbeddings::held_bytes() const {
  std::size_t n = 0;
  for (const Table& t : tables_)
    n += t.st->bytes() + t.acc.values.capacity() * sizeof(float) + t.acc.slot.capacity() * sizeof(std::int32_t) +
         t.acc.rows.capacity() * sizeof(std::int64_t);
  return n;
}

bool ShardedEmbeddings::is_sharded(NodeId p) const {
  for (const Table& t : tables_)
    if (t.param == p) return true;
  return false;
}

const float* ShardedEmbeddings::owned_value(std::size_t k, std::int64_t i) const {
  const Table& t = tables_.at(k);
  return t.st->held_values() + static_cast<std::size_t>(i * t.dim);
}

const float* ShardedEmbeddings::owned_slot(std::size_t k, std::size_t s, std::int64_t i) const {
  const Table& t = tables_.at(k);
  if (s >= t.st->num_slots()) return nullptr;
  return t.st->slot(s).data() + static_cast<std::size_t>(i * t.dim);
}

std::size_t ShardedEmbeddings::state_elements() const {
  std::size_t n = 0;
  for (const Table& t : tables_) n += t.st->num_slots() * t.st->values().size();
  return n;
}

void ShardedEmbeddings::check_owned(const Table& t, std::int64_t id, const char* what) const {
  if (id < 0 || id >= t.V || owner(id) != rank_)
    throw CommError("rank " + std::to_string(rank_) + " of " + std::to_string(nranks_) + ": " + what + " row " +
                    std::to_string(id) + " of table '" + m_.params().name(t.param) +
                    "', which it does not own (rows ≡ " + std::to_string(rank_) + " mod " +
                    std::to_string(nranks_) + " of " + std::to_string(t.V) + ")");
}

void ShardedEmbeddings::ensure_slots() {
  const std::size_t ns = opt_.slot_names().size();
  float initial[8];
  if (ns > std::size(initial)) throw Error(std::string(opt_.name()) + " optimizer: too many state slots to shard");
  for (std::size_t k = 0; k < ns; ++k) initial[k] = opt_.slot_initial_value(k);
  for (Table& t : tables_) t.st->make_slots(ns, initial);
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
        std::memcpy(vals_send_.data() + at, t.st->held_values() + static_cast<std::size_t>(id / nranks_) * D,
                    D * sizeof(float));
      }
    }
  vals_recv_.resize(sum(f_send_));
  c_.alltoallv(vals_send_.data(), f_recv_, vals_recv_.data(), f_send_, DType::F32);
  // The working rows: grown when this batch needs more, filled in the (owner, table) order the rows came back.
  for (Table& t : tables_) {
    const auto need = static_cast<std::int64_t>(t.want.size());
    const std::int64_t cap = t.st->working_rows();
    if (need > cap) t.st->resize_working(std::min(t.V, std::max(need, cap + cap / 2)));
  }
  at = 0;
  ii = 0;
  for (std::size_t o = 0; o < P; ++o)
    for (std::size_t s = 0; s < S; ++s) {
      Table& t = tables_[s];
      const auto D = static_cast<std::size_t>(t.dim);
      float* work = t.st->working().data();
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
    t.st->apply(t.acc, opt_, step);  // the owned rows and their slots, as the optimizer's row update says
    ps.set_has_grad(t.param, false);  // done: the reducer and the optimizer's step leave the table alone
  }
  last_ += b;
  total_ += b;
  train_ += last_;  // this step's fetch and exchange
  ++steps_;
}

void ShardedEmbeddings::save(Trainer& tr, const std::string& dir, std::int64_t step, std::int64_t epoch) {
  const TrainerOptions& o = tr.options();
  save(dir, step, to_json(o.model), tr.data().train.json, epoch < 0 ? tr.start_epoch() : epoch,
       o.config.is_object() ? o.config : nlohmann::json());
}

void ShardedEmbeddings::gather_rows(const Table& t, const std::vector<float>& src, std::int64_t first,
                                    std::int64_t n, float* out) {
  const auto D = static_cast<std::size_t>(t.dim);
  const std::size_t P = static_cast<std::size_t>(nranks_);
  // Rank r's rows in [first, first + n): its local rows rows_of(first, r) .. rows_of(first + n, r).
  save_counts_.resize(P);
  for (std::size_t r = 0; r < P; ++r) {
    const int ri = static_cast<int>(r);
    save_counts_[r] = (rows_of(first + n, ri, nranks_) - rows_of(first, ri, nranks_)) * t.dim;
  }
  const std::int64_t lo = rows_of(first, rank_, nranks_);
  const bool root = rank_ == 0;
  if (root) save_buf_.resize(static_cast<std::size_t>(n) * D);
  const auto mine = static_cast<std::size_t>(save_counts_[static_cast<std::size_t>(rank_)]);
  c_.gatherv(src.data() + static_cast<std::size_t>(lo) * D, mine, root ? save_buf_.data() : nullptr, save_counts_,
             DType::F32, 0);
  if (!root || out == nullptr) return;
  // Rank r's block holds its rows in order: the j-th is table row (rows_of(first, r) + j)·N + r.
  std::size_t at = 0;
  for (std::size_t r = 0; r < P; ++r) {
    const std::int64_t lr = rows_of(first, static_cast<int>(r), nranks_);
    for (std::int64_t j = 0; j < save_counts_[r] / t.dim; ++j, at += D) {
      const std::int64_t row = (lr + j) * nranks_ + static_cast<std::int64_t>(r);
      std::memcpy(out + static_cast<std::size_t>(row - first) * D, save_buf_.data() + at, D * sizeof(float));
    }
  }
}

void ShardedEmbeddings::save(const std::string& dir, std::int64_t step, const nlohmann::json& model,
                             const nlohmann::json& data, std::int64_t epoch, const nlohmann::json& config) {
  ParamStore<float>& ps = m_.params();
  const bool root = rank_ == 0;
  // Whether the tables' optimizer state is saved: when the store holds state (rank 0's answer is everyone's).
  std::int64_t nslots = ps.optimizer().empty() ? 0 : static_cast<std::int64_t>(ps.slot_names().size());
  c_.broadcast(&nslots, 1, DType::I64, 0);
  const auto NS = static_cast<std::size_t>(nslots);
  if (NS > 0) ensure_slots();
  for (const Table& t : tables_)
    if (t.st->num_slots() < NS)
      throw CommError("rank " + std::to_string(rank_) + ": sharded optimizer state out of step with rank 0");
  // Nothing non-finite is written: every rank checks its rows first and all agree before any file is touched.
  std::int64_t bad = 0;
  for (std::size_t k = 0; k < tables_.size() && bad == 0; ++k)
    for (std::size_t s = 0; s <= NS && bad == 0; ++s) {
      const std::vector<float>& v = s == 0 ? tables_[k].st->values() : tables_[k].st->slot(s - 1);
      for (float x : v)
        if (!std::isfinite(x)) {
          bad = 1 + static_cast<std::int64_t>(k * (NS + 1) + s);
          break;
        }
    }
  const std::vector<std::int64_t> bads = c_.allgather_one(bad);
  for (std::size_t r = 0; r < bads.size(); ++r)
    if (bads[r] != 0) {
      const auto code = static_cast<std::size_t>(bads[r] - 1);
      const Table& t = tables_[code / (NS + 1)];
      const std::size_t s = code % (NS + 1);
      throw Error(dir + ": refusing to save: " +
                  (s == 0 ? "parameter '" + ps.name(t.param) + "'"
                          : "optimizer state '" + ps.name(t.param) + "/" + opt_.slot_names().at(s - 1) + "'") +
                  " holds NaN or Inf in the rows of rank " + std::to_string(r) + "; the directory is left as it was");
    }
  // The rounds of the streamed save, the same on every rank: each table's values, then each table's slots, every
  // array in chunks of save_chunk rows from row 0. Array a = k (values of table k) or T + k·NS + s (slot s).
  const std::size_t T = tables_.size();
  auto array_of = [&](std::size_t a) -> std::pair<const Table*, const std::vector<float>*> {
    if (a < T) return {&tables_[a], &tables_[a].st->values()};
    const std::size_t k = (a - T) / NS, s = (a - T) % NS;
    return {&tables_[k], &tables_[k].st->slot(s)};
  };
  const std::size_t arrays = T * (1 + NS);
  std::vector<std::int64_t> round_begin(arrays + 1, 0);
  for (std::size_t a = 0; a < arrays; ++a) {
    const Table& t = *array_of(a).first;
    round_begin[a + 1] = round_begin[a] + (t.V + t.save_chunk - 1) / t.save_chunk;
  }
  auto run_rounds = [&](std::int64_t from) {  // the rounds from `from` on, rows dropped (a rank that only sends)
    for (std::size_t a = 0; a < arrays; ++a) {
      const auto [t, src] = array_of(a);
      for (std::int64_t i = std::max<std::int64_t>(0, from - round_begin[a]); i < round_begin[a + 1] - round_begin[a];
           ++i) {
        const std::int64_t first = i * t->save_chunk;
        gather_rows(*t, *src, first, std::min(t->save_chunk, t->V - first), nullptr);
      }
    }
  };
  std::string error;
  if (!root) {
    run_rounds(0);
  } else {
    // Rank 0 writes the ordinary checkpoint: the dense parameters and their state from its store, each table's
    // array streamed, chunk by chunk gathered from the owners (it holds one chunk, never a table).
    std::int64_t done = 0;
    std::vector<StreamedArray> streams, state_streams;
    for (std::size_t a = 0; a < arrays; ++a) {
      const auto [t, src] = array_of(a);
      StreamedArray sa;
      sa.name = a < T ? ps.name(t->param) : ps.name(t->param) + "/" + opt_.slot_names().at((a - T) % NS);
      sa.shape = {t->V, t->dim};
      sa.chunk_rows = t->save_chunk;
      sa.fill = [this, a, t = t, src = src, &done, &round_begin](std::int64_t first, std::int64_t n, float* out) {
        if (first % t->save_chunk != 0 || round_begin[a] + first / t->save_chunk != done)
          throw Error("sharded save: rows " + std::to_string(first) + ".. of '" + m_.params().name(t->param) +
                      "' asked out of turn");
        gather_rows(*t, *src, first, n, out);
        ++done;
      };
      (a < T ? streams : state_streams).push_back(std::move(sa));
    }
    try {
      save_checkpoint(dir, ps, &opt_, streams, state_streams, model, data, step, epoch, config);
    } catch (const CommError&) {
      throw;  // the peers are gone or out of step: no use going on
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "the checkpoint could not be written";
      run_rounds(done);  // the other ranks are still sending their rows: take them, then everyone fails together
      c_.broadcast_string(error, 0);
      throw;
    }
  }
  error = c_.broadcast_string(error, 0);
  if (!error.empty()) throw Error(error);
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

// ---------------------------------------------------------------- strategy

RowSharded::RowSharded(Communicator& c, DataParallelOptions o)
    : DataParallel(c, o), rank_(c.rank()), nranks_(c.size()) {}

ParamStoreOptions RowSharded::store_options() const { return row_sharded_store(rank_, nranks_); }

void RowSharded::attach(Trainer& t) {
  DataParallel::attach(t);
  se_ = std::make_unique<ShardedEmbeddings>(comm(), t);
  set_sharded(se_.get());
}

ShardedEmbeddings& RowSharded::shards() {
  if (!se_) throw Error("RowSharded: not attached to a Trainer");
  return *se_;
}

std::unique_ptr<BatchSource> RowSharded::train_source(const Trainer& t) {
  return std::make_unique<ShardedSource>(comm(), shards(), DataParallel::train_source(t));
}

std::unique_ptr<BatchSource> RowSharded::eval_source(const Trainer& t) {
  std::unique_ptr<BatchSource> ev = DataParallel::eval_source(t);
  if (!ev) return nullptr;
  return std::make_unique<ShardedSource>(comm(), shards(), std::move(ev));
}

void RowSharded::save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) {
  shards().save(t, dir, step, epoch);
}

}  // namespace funnel::dist
