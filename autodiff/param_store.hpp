#pragma once
/// @file
/// ParamStore<T>: the numbers of a graph's parameters, kept apart from any executor.
///
/// A graph says which parameters exist (name, shape, initializer); the store holds, per parameter, its value, its
/// gradient of the last backward pass (a dense tensor, or SparseRows for an embedding table whose every consumer
/// takes sparse gradients), whether that pass reached it, and the optimizer's state slots with the step count.
/// The model owns the store; executors borrow it (Executor<T>(graph, store)), so optimizers, checkpoints and the
/// cross-process reducer work on the store and never need an executor:
///
///   ParamStore<float> ps(g);  ps.init(seed);
///   Executor<float> ex(g, ps);  ex.forward(); ex.backward(loss);   // gradients land in ps
///   /* all-reduce ps's gradients */  opt->step(ps);                 // updates ps's values and slots
///
/// Every buffer is sized here, once: a training step allocates nothing in the store (sparse gradients reserve
/// their rows in the executor's backward, as before).
///
/// Embedding tables: each embedding table (a 2-D parameter with a sparse gradient) has a TableStorage
/// (autodiff/table_storage.hpp) that owns its rows and their optimizer slots; the store keeps the table's lookup
/// rows (value(), what the embedding ops read) and its sparse gradient at fixed addresses, and goes through the
/// storage to initialise the table, apply its gradient (Optimizer::step), make, export and import its slots. By
/// default a table is a LocalTable (the whole table in this store); ParamStoreOptions::tables makes others (e.g.
/// the row-sharded one of distributed/sharded_embedding.hpp, which never allocates the whole table), and
/// set_table() replaces one.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/graph.hpp"
#include "core/ids.hpp"
#include "core/op.hpp"
#include "autodiff/table_storage.hpp"

namespace funnel {

/// One state array: name "<param>/<slot>", the parameter's shape, row-major data.
template <class T>
struct NamedArrayT {
  std::string name;                 ///< "<param>/<slot>", e.g. "ctr_tower/dense_0/w/m"
  std::vector<std::int64_t> shape;  ///< the parameter's shape
  std::vector<T> data;              ///< the values, row-major
};
using NamedArray = NamedArrayT<float>;  ///< a state array of the float (training) path

/// An optimizer's state as named arrays, the way checkpoints carry it.
template <class T>
struct OptimizerStateT {
  std::string optimizer;  ///< "adam", "adagrad", "sgd"
  std::int64_t step = 0;  ///< number of optimizer steps so far
  std::vector<NamedArrayT<T>> arrays;  ///< empty before the first step
};
using OptimizerState = OptimizerStateT<float>;  ///< the optimizer state of the float (training) path

/// How a ParamStore is made: everything allocated (the default), or less for special uses.
struct ParamStoreOptions {
  /// Makes the storage of every embedding table (2-D parameter with a sparse gradient) of a float store; empty: each
  /// table is a LocalTable. An Error for a double store (its tables are local).
  TableStorageFactory tables;
  /// Values only (inference): no gradient arrays and no sparse-gradient row index are allocated. Nothing may run a
  /// backward pass or an optimizer over such a store; forward passes and load_checkpoint work as usual.
  bool values_only = false;
};

/// The values, gradients and optimizer state of every parameter of one graph (see the file's description), for
/// float (training) or double (gradient checks). Not synchronised: an executor's backward writes the gradients,
/// the optimizer the values and slots; run them one after the other (concurrent const reads are fine).
/// Accessors taking a NodeId throw GraphError for a node that is not a parameter of the graph.
template <class T>
class ParamStore {
 public:
  /// One entry per parameter node of `g`, values zero (call init() to draw them). `g` must outlive the store.
  explicit ParamStore(const Graph& g, const ParamStoreOptions& o = {});
  ParamStore(const ParamStore&) = delete;
  ParamStore& operator=(const ParamStore&) = delete;

  const Graph& graph() const { return g_; }  ///< the graph whose parameters these are
  const std::vector<NodeId>& ids() const { return ids_; }  ///< the parameter nodes, in graph order
  std::size_t size() const { return ids_.size(); }  ///< number of parameters
  /// True when node `id` is one of the parameters.
  bool contains(NodeId id) const { return id < index_.size() && index_[id] >= 0; }

  /// Draws every value from its node's initializer; the draw of a parameter depends on (seed, its name) only.
  /// A table's storage takes the rows it holds from its initializer's sequence (TableStorage::init).
  void init(std::uint64_t seed);

  // ---- embedding tables (see the header comment) ----
  /// True when parameter `id` is an embedding table (2-D with a sparse gradient), which has a TableStorage.
  bool is_table(NodeId id) const { return at(id).table != nullptr; }
  /// @{
  /// The storage of table `id`; an Error for a parameter that is not a table.
  TableStorage<T>& table(NodeId id);
  const TableStorage<T>& table(NodeId id) const;
  /// @}
  /// Replaces the storage of table `id` with `s` (of the table's rows and dim), bound to the same lookup tensor and
  /// gradient (their addresses do not change, so executors over the store stay valid). The old storage and its
  /// slots are freed; `s` keeps the slots it brings (none unless it made them). An Error for a parameter that is
  /// not a table or a storage of another shape.
  void set_table(NodeId id, std::unique_ptr<TableStorage<T>> s);
  /// Bytes of the values, gradients (with a sparse gradient's row index) and optimizer slots the store holds, its
  /// tables' that are held in the store (TableStorage::held_in_store) included, e.g. to check what a process keeps
  /// of a model. Storages holding their rows outside the store report them themselves (TableStorage::bytes).
  std::size_t allocated_bytes() const;
  /// @{
  /// The value of parameter `id` (or of the parameter with that full name), of the node's shape; writable in place.
  /// A table's value is its lookup rows: the whole table for a LocalTable, else what its storage makes of it.
  Tensor<T>& value(NodeId id) { return at(id).value; }
  const Tensor<T>& value(NodeId id) const { return at(id).value; }
  Tensor<T>& value(std::string_view name) { return value(g_.at(std::string(name))); }
  /// @}
  const std::string& name(NodeId id) const { return g_.node(id).name; }  ///< the parameter's full name
  std::size_t numel(NodeId id) const { return at(id).value.size(); }    ///< elements of its value as held here

  // ---- gradients of the last backward pass (written by an executor) ----
  /// True when the gradient is kept as SparseRows (an embedding table read only through sparse slots).
  bool is_sparse(NodeId id) const { return at(id).sparse_grad; }
  bool has_grad(NodeId id) const { return at(id).has_grad; }  ///< the last backward reached it
  /// Records whether the last backward reached `id` (called by the executor).
  void set_has_grad(NodeId id, bool on) { at(id).has_grad = on; }
  Tensor<T>& grad(NodeId id);                ///< dense parameters; GraphError for a sparse one
  const Tensor<T>& grad(NodeId id) const;    ///< read-only grad()
  SparseRows<T>& sparse_grad(NodeId id);     ///< sparse parameters; GraphError for a dense one
  const SparseRows<T>& sparse_grad(NodeId id) const;  ///< read-only sparse_grad()

  // ---- optimizer state ----
  /// Which optimizer's slots the store holds ("" when none), their names and the step count.
  /// @{
  const std::string& optimizer() const { return opt_name_; }
  const std::vector<std::string>& slot_names() const { return slot_names_; }
  std::int64_t optimizer_steps() const { return opt_steps_; }
  /// @}
  /// Makes room for `optimizer`'s slots, each filled with its initial value, unless the store already holds them;
  /// an Error when it holds another optimizer's (reset_optimizer() first). Allocates only the first time.
  void ensure_slots(const std::string& optimizer, const std::vector<std::string>& slots, const std::vector<T>& initial);
  /// Counts one optimizer step and returns the new (1-based) count.
  std::int64_t count_step() { return ++opt_steps_; }
  /// Slot k of parameter id: numel(id) values laid out like the value (a table's: over the rows its storage
  /// holds, TableStorage::slot_ptrs).
  T* slot(NodeId id, std::size_t k) { return slot_ptrs(id)[k]; }
  /// The slot pointers of parameter `id`, one per slot name (for optimizers' row kernels).
  T* const* slot_ptrs(NodeId id);
  /// Drops the optimizer state (no slots, step 0).
  void reset_optimizer();
  /// The state as named arrays "<param>/<slot>" (copies); empty arrays and step 0 when there is none. Tables whose
  /// storage is not held in the store are left out (their owner saves their state).
  OptimizerStateT<T> export_optimizer() const;
  /// Replaces the state with `s`, which must be `optimizer`'s with exactly `slots` for every parameter, each of the
  /// parameter's shape. Everything is checked before anything changes; errors name the array and what is wrong.
  /// An empty array list with step 0 resets the state. Arrays of tables whose storage is not held in the store are
  /// neither needed nor read (they are accepted: the storage's owner reads them).
  void import_optimizer(const std::string& optimizer, const std::vector<std::string>& slots,
                        const OptimizerStateT<T>& s);

 private:
  struct Entry {
    NodeId id = 0;
    Tensor<T> value;
    Tensor<T> grad;          ///< dense parameters
    SparseRows<T> sparse;    ///< sparse parameters
    bool sparse_grad = false;
    bool has_grad = false;
    std::unique_ptr<TableStorage<T>> table;  ///< embedding tables: where their rows live
    std::vector<std::vector<T>> slots;  ///< dense parameters (a table's are its storage's)
    std::vector<T*> slot_ptrs;
  };
  Entry& at(NodeId id);
  const Entry& at(NodeId id) const;

  /// True when the optimizer state of `e` is not the store's to export or import (a table held outside it).
  static bool state_outside(const Entry& e) { return e.table && !e.table->held_in_store(); }

  const Graph& g_;
  bool values_only_ = false;
  std::vector<NodeId> ids_;
  std::vector<int> index_;  ///< node id -> index into entries_, -1 for other nodes
  std::vector<Entry> entries_;
  std::string opt_name_;
  std::vector<std::string> slot_names_;
  std::int64_t opt_steps_ = 0;
};

extern template class ParamStore<float>;
extern template class ParamStore<double>;

}  // namespace funnel
