#pragma once
// Optimizers: SGD (optional momentum), Adagrad and Adam, applied to the parameters of an Executor after a
// backward pass. Computing gradients and applying them are separate steps, so gradients can be reduced across
// processes in between (Executor::grad_mut / sparse_grad_mut).
//
//   auto opt = make_optimizer<float>("adam", cfg);
//   ex.forward(); ex.backward(loss); /* all-reduce */ opt->step(ex);
//
// Every parameter with ex.has_grad(p) is updated in place. Sparse gradients (embedding tables) are applied
// lazily, row by row: only touched rows change, and the optimizer state of untouched rows is left as it is
// (Adam like torch.optim.SparseAdam: moments of untouched rows are not decayed; bias correction uses the global
// step count). Optional L2 weight decay adds wd·p to the gradient (for sparse parameters on touched rows only).
//
// State (moments, accumulators) is allocated for every parameter of the executor at the first step; later steps
// do not allocate. It can be exported and imported as named arrays "<param>/<slot>" (e.g. "emb/table/adam_m")
// plus the step count, which is how checkpoints carry it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/executor.hpp"

namespace funnel {

struct OptimizerConfig {
  double lr = 0.01;
  double weight_decay = 0.0;  // L2: g += weight_decay · p
  double momentum = 0.0;      // sgd: v = momentum·v + g; p -= lr·v (no buffer when 0)
  double beta1 = 0.9;         // adam
  double beta2 = 0.999;       // adam
  double eps = 1e-8;          // adam and adagrad denominators
  double initial_accumulator = 0.0;  // adagrad: starting value of Σg²
};

// The config as JSON (for manifests) and back; unknown or ill-typed keys are Errors naming the key.
nlohmann::json to_json(const OptimizerConfig& c);
OptimizerConfig optimizer_config_from_json(const nlohmann::json& j);

// One state array: name "<param>/<slot>", the parameter's shape, row-major data.
template <class T>
struct NamedArrayT {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<T> data;
};
using NamedArray = NamedArrayT<float>;

template <class T>
struct OptimizerStateT {
  std::string optimizer;  // "adam", "adagrad", "sgd"
  std::int64_t step = 0;  // number of step() calls so far
  std::vector<NamedArrayT<T>> arrays;  // empty before the first step
};
using OptimizerState = OptimizerStateT<float>;

template <class T>
class Optimizer {
 public:
  explicit Optimizer(const OptimizerConfig& cfg);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* name() const = 0;
  // Names of the per-parameter state slots ("adam_m", "adam_v"); empty for plain SGD.
  virtual std::vector<std::string> slot_names() const = 0;

  // Apply the gradients of the last backward pass to every parameter that has one. The first call binds the
  // optimizer to the executor's graph and allocates state; later calls must use an executor of the same graph.
  void step(Executor<T>& ex);

  std::int64_t steps() const { return step_; }
  const OptimizerConfig& config() const { return cfg_; }
  void set_lr(double lr) { cfg_.lr = lr; }  // e.g. for a schedule

  // Export the state (copies). Before the first step (and without an import) the array list is empty.
  OptimizerStateT<T> export_state() const;
  // Replace the state with `s`, for the parameters of `g` (the graph of the executors step() will see). Every
  // parameter needs every slot, with the parameter's shape; unknown arrays, a missing array, a wrong shape or
  // another optimizer's state are Errors naming what is wrong. An empty array list with step 0 resets the state.
  void import_state(const Graph& g, const OptimizerStateT<T>& s);

 protected:
  // Update one dense parameter: p, g and the slot buffers hold n elements. `t` is the 1-based step count.
  virtual void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) = 0;
  // Update `rows` touched rows of a (· × dim) table: row k of the gradient (g + k·dim) belongs to table row
  // idx[k]; p and the slots point at row 0 of the full table.
  virtual void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                             T* const* slots, std::int64_t t) = 0;
  virtual T initial_slot_value(std::size_t /*slot*/) const { return T(0); }

  OptimizerConfig cfg_;

 private:
  struct ParamState {
    NodeId id = 0;
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<std::vector<T>> slots;
    std::vector<T*> slot_ptrs;
  };
  void allocate(const Graph& g);
  const Graph* graph_ = nullptr;
  std::int64_t step_ = 0;
  std::vector<ParamState> state_;
  std::vector<int> index_;  // node id -> index into state_, -1 for non-parameters
};

template <class T>
class Sgd final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "sgd"; }
  std::vector<std::string> slot_names() const override;

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
};

template <class T>
class Adagrad final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "adagrad"; }
  std::vector<std::string> slot_names() const override { return {"adagrad_sum"}; }

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
  T initial_slot_value(std::size_t) const override { return static_cast<T>(this->cfg_.initial_accumulator); }
};

template <class T>
class Adam final : public Optimizer<T> {
 public:
  using Optimizer<T>::Optimizer;
  const char* name() const override { return "adam"; }
  std::vector<std::string> slot_names() const override { return {"adam_m", "adam_v"}; }

 protected:
  void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) override;
  void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                     T* const* slots, std::int64_t t) override;
};

// "adam" | "adagrad" | "sgd"; anything else is an Error listing the known names. Also checks the config
// (lr > 0, 0 <= betas < 1, eps > 0, momentum >= 0, weight_decay >= 0).
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, const OptimizerConfig& cfg);
std::vector<std::string> optimizer_names();

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template class Sgd<float>;
extern template class Sgd<double>;
extern template class Adagrad<float>;
extern template class Adagrad<double>;
extern template class Adam<float>;
extern template class Adam<double>;
extern template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const std::string&, const OptimizerConfig&);
extern template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const std::string&,
                                                                          const OptimizerConfig&);

}  // namespace funnel
