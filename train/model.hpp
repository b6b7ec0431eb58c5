#pragma once
// A built model ready to train and predict: graph, handle and a float executor; batches cut from a Dataset,
// "compute gradients" and "apply optimizer" as separate steps (so gradients can be all-reduced across processes in
// between), predictions for a whole data set.
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

// A built model: graph, node handle, the parameter store it owns and a float executor that borrows the store.
class Model {
 public:
  // `store` e.g. with a table storage factory (what a row-sharded strategy asks for): the embedding tables'
  // storages keep their rows (autodiff/table_storage.hpp), the whole tables are never allocated here.
  explicit Model(const ModelConfig& cfg, const ParamStoreOptions& store = {});
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const Graph& graph() const { return graph_; }
  const ModelHandle& handle() const { return h_; }
  ParamStore<float>& params() { return *store_; }
  const ParamStore<float>& params() const { return *store_; }
  Executor<float>& exec() { return *ex_; }

  // Copy rows of `d` into the executor's inputs (ids, dense, labels).
  void bind(const Dataset& d, std::span<const std::int64_t> rows);
  // Forward + backward over the weighted losses of the bound batch; returns the loss values.
  void compute_gradients();
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

// One value per row for each of the model's prediction columns (ModelHandle::columns).
struct Predictions {
  std::vector<std::string> names;               // column names, in the model's order
  std::vector<std::vector<float>> columns;      // columns[k][row]
  const std::vector<float>& column(std::string_view name) const;  // Error listing the names when absent
  std::int64_t rows() const { return columns.empty() ? 0 : static_cast<std::int64_t>(columns[0].size()); }
};
// (predict(): train/loop.hpp)

// Throws funnel::Error when the data does not fit the model (fields, vocab, dense columns, stages).
void check_compatible(const ModelConfig& cfg, const Dataset& d, const std::string& what);

}  // namespace funnel
