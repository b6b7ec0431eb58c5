#pragma once
/// @file
/// A built model ready to train and predict: graph, handle and a float executor; batches cut from a Dataset,
/// "compute gradients" and "apply optimizer" as separate steps (so gradients can be all-reduced across processes in
/// between), predictions for a whole data set.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/graph.hpp"
#include "data/dataset.hpp"
#include "models/model.hpp"

namespace funnel {

/// A built model: graph, node handle, the parameter store it owns and a float executor that borrows the store.
/// Not thread-safe: one thread binds, runs and updates a Model (several models may run in parallel).
class Model {
 public:
  /// Builds the registered model cfg.kind (models/model.hpp) into a new graph and allocates its parameter store
  /// (values zero: ParamStore::init or a checkpoint sets them) and executor. `store` e.g. with a table storage
  /// factory (what a row-sharded strategy asks for): the embedding tables' storages keep their rows
  /// (autodiff/table_storage.hpp), the whole tables are never allocated here. Throws GraphError on an unknown model
  /// or a bad option.
  explicit Model(const ModelConfig& cfg, const ParamStoreOptions& store = {});
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }  ///< the configuration it was built from
  const Graph& graph() const { return graph_; }  ///< the model's graph (owned)
  const ModelHandle& handle() const { return h_; }  ///< its nodes: inputs, labels, losses, prediction columns
  /// The parameter store (owned): values, gradients and optimizer state.
  ///@{
  ParamStore<float>& params() { return *store_; }
  const ParamStore<float>& params() const { return *store_; }
  ///@}
  Executor<float>& exec() { return *ex_; }  ///< the float executor over the store (to bind inputs and run)

  /// Copy rows of `d` (row indices, in that order) into the executor's inputs (ids, dense, labels) and sets the
  /// batch size to rows.size(). `d` must fit the model (check_compatible).
  void bind(const Dataset& d, std::span<const std::int64_t> rows);
  /// Forward + backward over the weighted losses of the bound batch: the gradients (replacing the previous call's)
  /// are left in params() for an optimizer to apply, and the loss values in last_losses().
  void compute_gradients();
  /// The loss values of the last compute_gradients, one per model loss (ModelHandle::losses order), unweighted.
  const std::vector<float>& last_losses() const { return last_losses_; }

 private:
  ModelConfig cfg_;
  Graph graph_;
  ModelHandle h_;
  std::unique_ptr<ParamStore<float>> store_;
  std::unique_ptr<Executor<float>> ex_;
  std::vector<LossWeight> losses_;
  std::vector<float> last_losses_;
  std::vector<float> label_scratch_;
};

/// One value per row for each of the model's prediction columns (ModelHandle::columns).
struct Predictions {
  std::vector<std::string> names;               ///< column names, in the model's order (e.g. pctr, pcvr, pctcvr)
  std::vector<std::vector<float>> columns;      ///< columns[k][row]: probabilities
  /// The column called `name`; throws funnel::Error listing the names when absent.
  const std::vector<float>& column(std::string_view name) const;
  /// Rows predicted (0 when there is no column).
  std::int64_t rows() const { return columns.empty() ? 0 : static_cast<std::int64_t>(columns[0].size()); }
};
// (predict(): train/loop.hpp)

/// Throws funnel::Error (`<what> does not fit the model: ...`) when the data does not fit the model: a different
/// number of fields, dense columns or funnel stages, or ids that need more than cfg.vocab embedding rows.
void check_compatible(const ModelConfig& cfg, const Dataset& d, const std::string& what);

}  // namespace funnel
