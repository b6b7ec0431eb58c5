#pragma once
/// @file
/// Row-sharded embedding tables for data-parallel training (`mpirun -np N funnel train --shard-embeddings`).
///
/// Rank r of N owns the rows ≡ r (mod N) of every embedding table (every parameter whose gradient is SparseRows)
/// and the optimizer state of those rows; nobody else updates them or keeps their state. Per training step:
///   1. fetch (ShardedSource, after the batch is bound): each rank sends the distinct ids its part of the batch
///      needs, per table, to their owners (MPI_Alltoall of counts, MPI_Alltoallv of ids) and receives the rows
///      (MPI_Alltoallv of values), which it writes into its working copy of the table;
///   2. forward and backward as usual (the table gradient is SparseRows: the touched rows);
///   3. exchange_gradients (the DataParallel hook, after the agreement on stop/error and before the dense
///      reduction): every touched row's gradient, scaled by this rank's share of the batch, goes to the row's owner
///      (all-to-all); the owner adds the contributions of ranks 0, 1, …, N-1 in that order and applies the
///      optimizer to its own rows. The table is then marked as having no gradient, so the reducer and the
///      optimizer's step leave it alone; dense parameters keep the replicated path (Reducer).
/// The merge adds the same numbers in the same order as the replicated reducer's all-gather merge, and the
/// optimizer's row update is the same arithmetic, so a sharded run gives the replicated run's bits.
///
/// Storage: each table's rows live in a RowShardedTable, the table's storage in the parameter store
/// (autodiff/table_storage.hpp): this rank's rows with their optimizer slots, and the store's lookup tensor as the
/// working copy below. The store initialises it (ParamStore::init) and the gradient exchange applies the merged
/// gradient through it (TableStorage::apply); checkpoints stream it (save()).
///
/// Memory (what makes a table larger than one machine's share fit): each rank holds its owned rows (≈ V/N × dim
/// values, authoritative) with their optimizer state (≈ 1/N of the table's), and in the parameter store a working copy
/// of only the rows its current batch reads: fetch() sorts the batch's distinct ids, puts row want[j] at working row j
/// and rewrites the batch's ids to those working rows, so the embedding op and its sparse gradient work on that small
/// table (it grows to the largest batch seen). No step of a run holds a whole table:
///   - building: a store made with row_sharded_store() (what the RowSharded strategy asks for, what
///     `funnel train --shard-embeddings` uses) makes each table a RowShardedTable and never allocates it whole;
///     ParamStore::init runs the initializer's generator over the whole table (O(V·dim) time) and each rank keeps
///     rows ≡ rank (mod N): init()'s bits;
///   - --init: each rank streams each table's .npy file (and its optimizer state's) once in ~1 MiB chunks, checking
///     header, shape and the manifest's checksum on the way, and keeps its rows (read_checkpoint_rows);
///   - saving: rank 0 writes the ordinary checkpoint, each table's file streamed (StreamedArray): a chunk of about
///     a MiB of rows at a time, gathered from the owners (MPI_Gatherv), checksummed and appended.
/// A store that does hold a table in full when the ShardedEmbeddings is made (a LocalTable, e.g. loaded by
/// load_checkpoint) is split up: each rank copies its rows and state into a RowShardedTable that replaces the
/// table's storage (ParamStore::set_table), and the full copy is freed at once.
/// Measured (docs/distributed.md; tools/shard_memory.sh): peak resident memory per rank at -np 2 with a 4M × 18 table
/// and Adam, train + save: 484 / 483 MB sharded against 1,719 (rank 0, writing) / 895 MB replicated.
///
/// A sharded model's store is no longer a model on its own: forward passes must go through a ShardedSource (which
/// fetches), and its tables' values are the working rows only. Use save() for checkpoints.
///
/// Checkpoints: save() writes the ordinary full-table checkpoint (loads on any rank count, also 1) as above, with
/// save_checkpoint's lock and atomicity (temporary directory, then one swap); a failure on rank 0 (disk full, a bad
/// target) still takes every rank's rows, then every rank throws the same error. A NaN or Inf in any rank's rows
/// refuses the save before anything is written.
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "distributed/comm.hpp"
#include "distributed/data_parallel.hpp"
#include "train/batch_source.hpp"
#include "train/loop.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

namespace funnel::dist {

/// Payload this rank handed to the all-to-alls (bytes to other ranks; what it sends to itself is not counted).
struct ShardBytes {
  std::uint64_t counts = 0;  ///< per-(rank, table) counts of the fetch and of the gradient exchange
  std::uint64_t ids = 0;     ///< ids asked for
  std::uint64_t rows = 0;    ///< rows served to other ranks
  std::uint64_t grads = 0;   ///< gradient rows (ids + values) sent to their owners
  std::uint64_t total() const { return counts + ids + rows + grads; }  ///< every kind together
  /// Adds `o` kind by kind.
  ShardBytes& operator+=(const ShardBytes& o) {
    counts += o.counts;
    ids += o.ids;
    rows += o.rows;
    grads += o.grads;
    return *this;
  }
};

/// One embedding table's storage in a row-sharded run (see the file comment): this rank's rows ≡ rank (mod N),
/// authoritative, with their optimizer slots; the store's lookup tensor is a working copy of the rows of the bound
/// batch, sized and filled by ShardedEmbeddings. Never holds the whole table.
class RowShardedTable final : public TableStorage<float> {
 public:
  /// Rank `rank` of `nranks`'s share of a `rows` × `dim` table (zeros until initialised or read).
  RowShardedTable(std::int64_t rows, std::int64_t dim, int rank, int nranks);
  const char* kind() const override { return "row-sharded"; }  ///< "row-sharded"
  std::int64_t rows() const override { return V_; }             ///< rows of the whole table
  std::int64_t dim() const override { return dim_; }            ///< values per row
  /// Makes the lookup tensor an empty working copy (0 × dim) and the gradient one of no rows.
  void bind(Tensor<float>& lookup, SparseRows<float>* grad) override;
  bool held_in_store() const override { return false; }  ///< false: ShardedEmbeddings saves and reads its rows
  /// Keeps this rank's rows of the initializer's sequence.
  void init(const TableRowDraw<float>& draw) override;
  std::int64_t held_rows() const override { return owned_; }  ///< rows ≡ rank (mod N)
  /// Held row i is table row i·N + rank.
  std::int64_t table_row(std::int64_t i) const override { return i * nranks_ + rank_; }
  const float* held_values() const override { return values_.data(); }  ///< the owned rows
  /// The merged gradient of owned rows (ShardedEmbeddings::exchange_gradients), with the rule's row update.
  void apply(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) override;
  /// An Error: the gradient of the working rows goes to the rows' owners (ShardedEmbeddings::exchange_gradients).
  void apply_lookup(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) override;
  /// The owned rows, their slots and the working copy's size.
  std::size_t bytes() const override;

  int rank() const { return rank_; }      ///< the rank whose rows these are
  int nranks() const { return nranks_; }  ///< ranks the table is spread over
  /// The owned rows (held_rows() × dim), writable: filled from a checkpoint or another storage.
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }  ///< read-only values()
  /// Optimizer slot k over the owned rows (k < num_slots()).
  const std::vector<float>& slot(std::size_t k) const { return this->slots_.at(k); }
  /// Resizes the working copy (the store's lookup tensor and gradient) to `rows` rows, zero-filled.
  void resize_working(std::int64_t rows);
  std::int64_t working_rows() const { return cap_; }  ///< rows of the working copy
  Tensor<float>& working() { return *lookup_; }        ///< the working copy (the store's lookup tensor)

 private:
  std::int64_t V_ = 0, dim_ = 0, owned_ = 0;
  int rank_ = 0, nranks_ = 1;
  std::vector<float> values_;
  Tensor<float>* lookup_ = nullptr;
  SparseRows<float>* grad_ = nullptr;
  std::int64_t cap_ = 0;
};

/// Store options whose embedding tables are RowShardedTable storages of rank `rank` of `nranks` (never allocated
/// whole): what RowSharded::store_options gives, for a Model to be sharded by a ShardedEmbeddings.
ParamStoreOptions row_sharded_store(int rank, int nranks);
/// row_sharded_store over the ranks of `c`.
inline ParamStoreOptions row_sharded_store(Communicator& c) { return row_sharded_store(c.rank(), c.size()); }

/// Where the rows of RowShardedTable storages come from when the ShardedEmbeddings is made: a checkpoint, or (none
/// given) the rows ParamStore::init drew.
struct ShardInit {
  std::string checkpoint;  ///< this checkpoint's arrays (the rest of the model is loaded by load_checkpoint)
  bool load_state = true;  ///< with checkpoint: also the tables' optimizer state, when it has some
};

/// Every embedding table of a model spread by rows over the ranks (see the file comment).
class ShardedEmbeddings {
 public:
  /// Shards every embedding table of `m`. A table whose storage is a LocalTable (held in full): this rank's rows
  /// (and their optimizer state, when the store holds `opt`'s state, e.g. from a checkpoint) are copied into a
  /// RowShardedTable that replaces it. A table whose storage is a RowShardedTable (row_sharded_store): its rows are
  /// read as `init` says, or kept as ParamStore::init drew them. Every rank must make it at the same point, with
  /// the same model. An Error when a table is read by anything but embedding ops on ids inputs.
  ShardedEmbeddings(Communicator& c, Model& m, Optimizer<float>& opt, const ShardInit& init = {});
  /// For a Trainer (its store made with row_sharded_store, or not): its --init checkpoint and --reset-optimizer.
  ShardedEmbeddings(Communicator& c, Trainer& t);

  int owner(std::int64_t row) const { return static_cast<int>(row % nranks_); }  ///< the rank that owns table row `row`
  std::size_t num_tables() const { return tables_.size(); }  ///< embedding tables sharded
  NodeId table(std::size_t k) const { return tables_[k].param; }  ///< the parameter of table k
  bool is_sharded(NodeId p) const;  ///< parameter `p` is one of the sharded tables
  /// Rows of table k this rank owns, and the table row of owned row i (i·N + rank).
  std::int64_t owned_rows(std::size_t k) const { return tables_[k].owned; }
  std::int64_t global_row(std::int64_t i) const { return i * nranks_ + rank_; }  ///< table row of owned row i
  /// Owned row i of table k (dim values), and slot `s` of its optimizer state (null before the first step).
  const float* owned_value(std::size_t k, std::int64_t i) const;
  const float* owned_slot(std::size_t k, std::size_t s, std::int64_t i) const;  ///< slot s of owned row i
  /// Optimizer state values this rank holds for the tables (owned rows × dim × slots).
  std::size_t state_elements() const;
  /// Rows of table k's working copy in the store (room for the distinct ids of one batch, grown as needed).
  std::int64_t working_rows(std::size_t k) const { return tables_[k].st->working_rows(); }
  /// The storage of table k.
  const RowShardedTable& storage(std::size_t k) const { return *tables_[k].st; }
  /// Bytes this rank holds for the tables outside the store: owned rows, their optimizer state, the merged gradient.
  std::size_t held_bytes() const;
  /// Rows per chunk when save() streams a table (default: about a MiB, a multiple of N), e.g. to test many chunks.
  void set_save_chunk_rows(std::int64_t rows);

  /// Collective. Writes the rows of the batch bound in the model into the store's working copy of every table,
  /// from their owners. has_batch = false: this rank has no rows bound this time (it only serves the others).
  void fetch(bool has_batch);
  /// Collective, after a backward pass (has_grads = false: this rank computed none this step). Sends each touched
  /// row's gradient × weight to its owner; owners merge in rank order and update their rows with step number `t`
  /// (the number begin_step gives this step). Leaves the tables without a gradient in the store.
  void exchange_gradients(float weight, bool has_grads, std::int64_t t);
  /// exchange_gradients with t = the store's optimizer step count + 1 (the loop's optimizer step comes next).
  void exchange_gradients(float weight, bool has_grads);

  /// Collective: rank 0 writes the whole model as an ordinary checkpoint (save_checkpoint's format: it loads on
  /// any rank count, also in one process), each table streamed chunk by chunk from its owners (see the header
  /// comment). Returns on every rank once the checkpoint is in place; on a failure every rank throws.
  void save(const std::string& dir, std::int64_t step, const nlohmann::json& model, const nlohmann::json& data,
            std::int64_t epoch = 0, const nlohmann::json& config = nullptr);
  /// The same with Trainer::save's contents.
  void save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch = -1);

  const ShardBytes& last_bytes() const { return last_; }    ///< of the last fetch (+ exchange, in training)
  const ShardBytes& total_bytes() const { return total_; }  ///< every fetch and exchange so far
  const ShardBytes& train_bytes() const { return train_; }  ///< training steps only (fetch + exchange)
  std::int64_t steps() const { return steps_; }              ///< exchanges so far

 private:
  struct Table {
    NodeId param = 0;
    std::int64_t V = 0, dim = 0, owned = 0;
    std::vector<NodeId> id_nodes;
    RowShardedTable* st = nullptr;            ///< the table's storage in the store: owned rows, slots, working copy
    SparseRows<float> acc;                    ///< merged gradient, by owned (local) row
    std::vector<std::int64_t> want;           ///< distinct ids of the bound batch, sorted: working row j = want[j]
    std::int64_t save_chunk = 1;              ///< rows per chunk of a streamed save
  };
  /// Collective (one round of a save): rows [first, first + n) of `src` (table t's values or a slot), each rank
  /// sending the ones it owns; on rank 0 they land in `out` (n × dim, may be null to drop them).
  void gather_rows(const Table& t, const std::vector<float>& src, std::int64_t first, std::int64_t n, float* out);
  void ensure_slots();
  void check_owned(const Table& t, std::int64_t id, const char* what) const;
  /// Counts per (destination rank, table) → send/recv element counts of one all-to-all round.
  void exchange_counts(ShardBytes& b);

  Communicator& c_;
  Model& m_;
  Optimizer<float>& opt_;
  int rank_ = 0, nranks_ = 1;
  std::vector<Table> tables_;
  std::vector<std::int64_t> cnt_send_, cnt_recv_, pos_, fpos_;  ///< nranks × tables
  std::vector<std::int64_t> n_send_, n_recv_, f_send_, f_recv_;  ///< nranks
  std::vector<std::int64_t> ids_send_, ids_recv_, work_send_;  ///< work_send_: the working row of each id asked
  std::vector<float> vals_send_, vals_recv_;
  std::vector<std::int64_t> save_counts_;
  std::vector<float> save_buf_;
  ShardBytes last_, total_, train_;
  std::int64_t steps_ = 0;
};

/// A batch source whose every batch, once bound, has its embedding rows fetched (ShardedEmbeddings::fetch). Each
/// call is one round in which every rank takes part: a rank whose own source has ended keeps serving the others
/// until every rank's has, so sources that end at different batches (an evaluation share) are fine.
class ShardedSource : public BatchSource {
 public:
  /// Over this rank's own source `mine`, fetching rows from `se`'s owners.
  ShardedSource(Communicator& c, ShardedEmbeddings& se, std::unique_ptr<BatchSource> mine);
  /// This rank's own source's check.
  void check(const ModelConfig& cfg, const std::string& what) const override { mine_->check(cfg, what); }
  std::int64_t rows() const override { return mine_->rows(); }  ///< this rank's own source's
  void start_epoch(std::int64_t epoch) override { mine_->start_epoch(epoch); }  ///< this rank's own source's
  BatchRows next(Model& m) override;  ///< the next batch, its rows fetched (collective)
  const float* conversion_entire() const override { return mine_->conversion_entire(); }  ///< this rank's own source's
  const float* entire(std::int64_t stage) const override { return mine_->entire(stage); }  ///< this rank's own source's
  const std::int64_t* users() const override { return mine_->users(); }  ///< this rank's own source's

 private:
  Communicator& c_;
  ShardedEmbeddings& se_;
  std::unique_ptr<BatchSource> mine_;
};

/// train_data_parallel (distributed/data_parallel.hpp) with sharded tables: `dp` gets `se` as its hook, the sources
/// are wrapped in ShardedSource (the evaluation's too).
TrainResult train_sharded(DataParallel& dp, ShardedEmbeddings& se, Model& m, Optimizer<float>& opt,
                          std::unique_ptr<BatchSource> train, std::unique_ptr<BatchSource> eval,
                          const TrainOptions& o, const TrainHooks& hooks, std::int64_t start_step = 0);
/// The same on in-memory data (each rank its part of every global batch, as train_data_parallel).
TrainResult train_sharded(DataParallel& dp, ShardedEmbeddings& se, Model& m, Optimizer<float>& opt,
                          const Dataset& train, const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                          std::int64_t start_step = 0);
/// Row-sharded embedding tables as a parallelism strategy (train/strategy.hpp, registered as "row-sharded", what
/// `funnel train --shard-embeddings` runs): the Trainer's store makes each table a RowShardedTable, never allocated
/// whole (store_options), every rank draws or reads only its rows (ParamStore::init, attach: ShardedEmbeddings), every batch's rows are fetched from their owners
/// (ShardedSource), their gradients go to the owners (the DataParallel shard hook) and checkpoints are streamed
/// from the owners (ShardedEmbeddings::save). The dense parameters take the replicated path (DataParallel).
class RowSharded : public DataParallel {
 public:
  /// Over the ranks of `c`; the tables are sharded when attached to a Trainer.
  explicit RowSharded(Communicator& c, DataParallelOptions o = {});
  std::string name() const override { return "row-sharded"; }  ///< "row-sharded"
  /// row_sharded_store(): each embedding table's storage is a RowShardedTable holding this rank's rows.
  ParamStoreOptions store_options() const override;
  /// Shards the Trainer's tables: its --init checkpoint and --reset-optimizer (collective).
  void attach(Trainer& t) override;
  /// DataParallel's share, each batch's rows fetched (ShardedSource).
  std::unique_ptr<BatchSource> train_source(const Trainer& t) override;
  /// DataParallel's share of the evaluation data, each batch's rows fetched.
  std::unique_ptr<BatchSource> eval_source(const Trainer& t) override;
  /// Rank 0 writes the ordinary checkpoint, every table streamed from its owners (collective).
  void save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) override;
  /// The shards (after attach).
  ShardedEmbeddings& shards();

 private:
  int rank_ = 0, nranks_ = 1;
  std::unique_ptr<ShardedEmbeddings> se_;
};

}  // namespace funnel::dist
