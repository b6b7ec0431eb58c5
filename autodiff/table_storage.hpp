#pragma once
/// @file
/// TableStorage<T>: where the rows of one embedding table live and how they are initialised, looked up, updated
/// and saved.
///
/// A ParamStore holds one storage object per embedding table (a 2-D parameter whose every consumer takes a sparse
/// gradient). The store keeps, per table, two buffers at fixed addresses that executors borrow: the *lookup rows*
/// (the tensor the embedding ops read, ParamStore::value) and the sparse gradient the backward pass writes. The
/// storage decides what the lookup rows are and owns the rest of the table: its authoritative rows, its optimizer
/// slots, the rows its initializer gives it and how a gradient is applied. Implementations:
///
///   - LocalTable (this file, what a store makes unless told otherwise): the whole table is the lookup tensor and
///     its slots are beside it; checkpoints save and load it with the store's other arrays (held_in_store()).
///   - dist::RowShardedTable (distributed/sharded_embedding.hpp): this process's rows ≡ rank (mod N) and their
///     slots; the lookup tensor is a working copy of the rows of the bound batch, filled by ShardedEmbeddings.
///   - MappedTableStorage (serving/mapped_table.hpp): the table memory-mapped read-only from a checkpoint's file.
///
/// Row spaces: a storage *holds* held_rows() rows (authoritative values and optimizer slots, held_values() and
/// slot_ptrs()), held row i being table row table_row(i). apply() takes a gradient over held rows; apply_lookup()
/// takes the gradient of the lookup rows (what a backward pass writes), which only a storage whose lookup rows are
/// its held rows can apply in place. A store is made with a TableStorageFactory (ParamStoreOptions::tables) to get
/// other storages; a storage may also be replaced later (ParamStore::set_table), the lookup buffers staying put.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/graph.hpp"
#include "core/op.hpp"

namespace funnel {

/// The row update of an optimizer, as a table storage applies it to the rows it holds (Optimizer<T> is one).
template <class T>
class RowUpdateRule {
 public:
  virtual ~RowUpdateRule() = default;
  /// Updates `rows` rows: row k of `g` (g + k·dim) is the gradient of row idx[k] of `p` and of every slot buffer
  /// (p and each slots[s] point at row 0; the idx are distinct), with the 1-based optimizer step number `t`.
  virtual void update_rows(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                           T* const* slots, std::int64_t t) = 0;
};

/// Receives one row of a table: its table row number and its dim values.
template <class T>
using TableRowSink = std::function<void(std::int64_t row, const T* values)>;
/// Runs a table's initializer: calls the sink once per table row, rows 0, 1, …, rows−1 in order (time O(rows·dim),
/// memory one row). A storage keeps the rows it holds: they are the bits a whole-table initialisation gives.
template <class T>
using TableRowDraw = std::function<void(const TableRowSink<T>& sink)>;

/// Where the rows of one embedding table live (see the file comment). Not synchronised, like the store.
template <class T>
class TableStorage {
 public:
  virtual ~TableStorage() = default;

  /// The kind of storage: "local", "row-sharded", "mapped".
  virtual const char* kind() const = 0;
  /// Rows of the whole table (its vocabulary size).
  virtual std::int64_t rows() const = 0;
  /// Values per row (the embedding dimension).
  virtual std::int64_t dim() const = 0;

  /// Called by the store when it installs the storage: `lookup` is the tensor the executor's lookups read and
  /// `grad` the sparse gradient a backward pass writes (null in a values-only store). Both stay at their address
  /// for the store's lifetime; the storage sizes them (a LocalTable to rows() × dim(), others as they need).
  virtual void bind(Tensor<T>& lookup, SparseRows<T>* grad) = 0;
  /// True when the whole table is the lookup tensor and the slots are this storage's: a checkpoint saves and loads
  /// it with the store's other arrays and ParamStore::export_optimizer includes its slots. False: the storage's
  /// owner writes and reads its rows (row-sharded: streamed by ShardedEmbeddings::save; mapped: read-only).
  virtual bool held_in_store() const = 0;

  /// Takes this storage's rows from the table's initializer (ParamStore::init).
  virtual void init(const TableRowDraw<T>& draw) = 0;
  /// Rows this process holds (authoritative values and optimizer state).
  virtual std::int64_t held_rows() const = 0;
  /// The table row of held row `i`, 0 <= i < held_rows().
  virtual std::int64_t table_row(std::int64_t i) const = 0;
  /// The held rows, held_rows() × dim() values, row-major.
  virtual const T* held_values() const = 0;

  /// Applies `g`, a gradient over held rows (g.rows are held-row indices), with `rule` at step `t`: each row and
  /// its slots change as the rule says, other rows stay as they are.
  virtual void apply(const SparseRows<T>& g, RowUpdateRule<T>& rule, std::int64_t t) = 0;
  /// Applies the gradient of the lookup rows (what the last backward pass wrote). An Error for a storage whose
  /// lookup rows are not its held rows (a row-sharded table: its gradients go to their owners).
  virtual void apply_lookup(const SparseRows<T>& g, RowUpdateRule<T>& rule, std::int64_t t) = 0;

  /// Makes `n` optimizer slots over the held rows, slot k filled with initial[k]; a storage that holds `n` slots
  /// already keeps them (e.g. read from a checkpoint). Allocates only when it makes them.
  virtual void make_slots(std::size_t n, const T* initial);
  /// Frees the optimizer slots.
  virtual void drop_slots();
  /// Number of optimizer slots held (0 before make_slots).
  virtual std::size_t num_slots() const { return slots_.size(); }
  /// The slot buffers, num_slots() pointers, each to held_rows() × dim() values (for RowUpdateRule::update_rows).
  virtual T* const* slot_ptrs() { return slot_ptrs_.data(); }
  /// Bytes this storage holds beyond the store's lookup tensor and gradient (its own rows, slots and scratch).
  virtual std::size_t bytes() const;

 protected:
  std::vector<std::vector<T>> slots_;  ///< the optimizer slots over the held rows (make_slots)
  std::vector<T*> slot_ptrs_;          ///< slots_[k].data()
};

/// The default storage: the whole table in this process, in the store's lookup tensor (see the file comment).
template <class T>
class LocalTable final : public TableStorage<T> {
 public:
  /// A table of `rows` × `dim` values (zero once bound).
  LocalTable(std::int64_t rows, std::int64_t dim) : rows_(rows), dim_(dim) {}
  const char* kind() const override { return "local"; }  ///< "local"
  std::int64_t rows() const override { return rows_; }   ///< rows of the table
  std::int64_t dim() const override { return dim_; }     ///< values per row
  /// Sizes `lookup` to the table (zeros) and `grad` to its rows.
  void bind(Tensor<T>& lookup, SparseRows<T>* grad) override;
  bool held_in_store() const override { return true; }  ///< true: the lookup tensor is the table
  void init(const TableRowDraw<T>& draw) override;  ///< every row, into the lookup tensor
  std::int64_t held_rows() const override { return rows_; }  ///< every row
  std::int64_t table_row(std::int64_t i) const override { return i; }  ///< held row i is table row i
  const T* held_values() const override { return v_ ? v_->data() : nullptr; }  ///< the lookup tensor's data
  /// The rule over the touched rows, in place in the lookup tensor.
  void apply(const SparseRows<T>& g, RowUpdateRule<T>& rule, std::int64_t t) override;
  /// The same as apply(): the lookup rows are the held rows.
  void apply_lookup(const SparseRows<T>& g, RowUpdateRule<T>& rule, std::int64_t t) override { apply(g, rule, t); }

 private:
  std::int64_t rows_ = 0, dim_ = 0;
  Tensor<T>* v_ = nullptr;
};

/// Makes the storage of embedding table `table` (a parameter node of `g`) for a float store; ParamStoreOptions
/// carries one to make a store whose tables live elsewhere than in the store (e.g. dist::row_sharded_store).
using TableStorageFactory = std::function<std::unique_ptr<TableStorage<float>>(const Graph& g, NodeId table)>;

extern template class TableStorage<float>;
extern template class TableStorage<double>;
extern template class LocalTable<float>;
extern template class LocalTable<double>;

}  // namespace funnel
