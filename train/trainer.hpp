#pragma once
// Training and prediction for the model zoo: batches cut from a Dataset, "compute gradients" and "apply optimizer"
// as separate steps (so gradients can be all-reduced across processes in between), whole-set evaluation.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/graph.hpp"
#include "data/dataset.hpp"
#include "models/zoo.hpp"

namespace funnel {

// A built model: graph, node handle and a float executor bound to it.
class Model {
 public:
  explicit Model(const ModelConfig& cfg);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const Graph& graph() const { return graph_; }
  const ModelHandle& handle() const { return h_; }
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
  std::unique_ptr<Executor<float>> ex_;
  std::vector<LossWeight> losses_;
  std::vector<float> last_losses_;
  std::vector<float> label_scratch_;
};

struct Predictions {
  std::vector<float> pctr, pcvr, pctcvr;
};
// Predictions for every row of `d`, in order (labels are not read).
Predictions predict(Model& m, const Dataset& d, std::int64_t batch_size);

// Throws funnel::Error when the data does not fit the model (fields, vocab, dense columns, stages).
void check_compatible(const ModelConfig& cfg, const Dataset& d, const std::string& what);

}  // namespace funnel
