#pragma once
/// @file
// Optimizers, applied to the parameters of a ParamStore after a backward pass; each is one file registered by
// name (train/optimizer_adam.cpp, optimizer_adagrad.cpp, optimizer_sgd.cpp: Adam, Adagrad, SGD with optional
// momentum; a user's own the same way, see OptimizerDef). Computing gradients and applying them are separate steps, so gradients can be reduced across
// processes in between (on the store: ParamStore::grad / sparse_grad).
//
//   auto opt = make_optimizer<float>("adam", cfg);
//   ex.forward(); ex.backward(loss); /* all-reduce store's gradients */ opt->step(store);
//
// An optimizer is an update rule and its config; its state (slots and step count) lives in the store, so
// checkpoints and the cross-process code find everything there. Every parameter with store.has_grad(p) is
// updated in place. Sparse gradients (embedding tables) are applied
// lazily, row by row: only touched rows change, and the optimizer state of untouched rows is left as it is
// (Adam like torch.optim.SparseAdam: moments of untouched rows are not decayed; bias correction uses the global
// step count). Optional L2 weight decay adds wd·p to the gradient (for sparse parameters on touched rows only).
//
// State (moments, accumulators) is allocated in the store for every parameter at the first step; later steps
// do not allocate. It is exported and imported as named arrays "<param>/<slot>" (e.g. "emb/table/adam_m") plus
// the step count (ParamStore::export_optimizer, Optimizer::import_state), which is how checkpoints carry it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autodiff/executor.hpp"
#include "autodiff/param_store.hpp"

namespace funnel {

/// The knobs of every optimizer (each reads the ones it uses).
struct OptimizerConfig {
  double lr = 0.01;           ///< learning rate
  double weight_decay = 0.0;  ///< L2: g += weight_decay · p
  double momentum = 0.0;      ///< sgd: v = momentum·v + g; p -= lr·v (no buffer when 0)
  double beta1 = 0.9;         ///< adam
  double beta2 = 0.999;       ///< adam
  double eps = 1e-8;          ///< adam and adagrad denominators
  double initial_accumulator = 0.0;  ///< adagrad: starting value of Σg²
};

/// The config as JSON (for manifests).
nlohmann::json to_json(const OptimizerConfig& c);
/// The config from JSON; unknown or ill-typed keys are Errors naming the key.
OptimizerConfig optimizer_config_from_json(const nlohmann::json& j);

/// An update rule and its config; its state (slots, step count) lives in the ParamStore. Subclasses (one file
/// each, registered with FUNNEL_REGISTER_OPTIMIZER) give the name, the slots and the dense and sparse updates.
/// Embedding tables are updated through their storage (TableStorage::apply), which calls back update_rows().
template <class T>
class Optimizer : public RowUpdateRule<T> {
 public:
  /// An optimizer with config `cfg` (checked by make_optimizer).
  explicit Optimizer(const OptimizerConfig& cfg);
  ~Optimizer() override = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// The registered name ("adam"), also the name of the state in stores and checkpoints.
  virtual const char* name() const = 0;
  /// Names of the per-parameter state slots ("adam_m", "adam_v"); empty for plain SGD.
  virtual std::vector<std::string> slot_names() const = 0;

  /// Apply the gradients of the last backward pass to every parameter of the store that has one. The first step
  /// on a store allocates this optimizer's slots in it; a store holding another optimizer's state is an Error.
  void step(ParamStore<T>& s);
  /// step() on the executor's store.
  void step(Executor<T>& ex) { step(ex.store()); }

  /// A step in pieces, for callers that update parts of the parameters (e.g. each process its slice of the dense
  /// parameters): begin_step counts the step and returns its 1-based number; then update a range of a dense
  /// parameter's elements, or a sparse parameter's touched rows, with that number.
  std::int64_t begin_step(ParamStore<T>& s);
  /// Elements [begin, end) of the dense parameter `p`, with step number `t` from begin_step.
  void update_dense_range(ParamStore<T>& s, NodeId p, std::size_t begin, std::size_t end, std::int64_t t);
  /// The touched rows of the sparse parameter `p` (an embedding table), with step number `t` from begin_step:
  /// its storage applies the gradient (TableStorage::apply_lookup), calling update_rows().
  void update_sparse_rows(ParamStore<T>& s, NodeId p, std::int64_t t);
  /// Rows of a table as its storage holds them: row k of `g` (rows × dim) updates row idx[k] of `p` and of every
  /// slot buffer (all `dim` values a row; idx distinct), with step number `t` from begin_step. Rows are split over
  /// the threads (each row's update is independent, so the bits do not depend on the split).
  void update_rows(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim, T* const* slots,
                   std::int64_t t) override;
  /// The value slot k starts at (0, or Adagrad's initial accumulator).
  T slot_initial_value(std::size_t k) const { return initial_slot_value(k); }

  /// The config.
  const OptimizerConfig& config() const { return cfg_; }
  /// Changes the learning rate (e.g. for a schedule).
  void set_lr(double lr) { cfg_.lr = lr; }

  /// Replace the store's optimizer state with `s` (this optimizer's kind, every parameter with every slot in the
  /// parameter's shape); errors name what is wrong and leave the store as it was. An empty array list with step 0
  /// resets the state.
  void import_state(ParamStore<T>& store, const OptimizerStateT<T>& s);

 protected:
  /// Update one dense parameter: p, g and the slot buffers hold n elements. `t` is the 1-based step count.
  virtual void update_dense(T* p, const T* g, std::size_t n, T* const* slots, std::int64_t t) = 0;
  /// Update `rows` touched rows of a (· × dim) table: row k of the gradient (g + k·dim) belongs to table row
  /// idx[k]; p and the slots point at row 0 of the full table.
  virtual void update_sparse(T* p, const T* g, const std::int64_t* idx, std::size_t rows, std::size_t dim,
                             T* const* slots, std::int64_t t) = 0;
  /// The value a slot starts at (0 unless overridden).
  virtual T initial_slot_value(std::size_t /*slot*/) const { return T(0); }

  OptimizerConfig cfg_;  ///< the config the updates read
};

/// One registered optimizer: one file defines its Optimizer subclass (name, slots, update) and registers it with
/// FUNNEL_REGISTER_OPTIMIZER, which is all `--optimizer NAME`, its help and make_optimizer need:
///
///     FUNNEL_REGISTER_OPTIMIZER(adam, funnel::Adam, .name = "adam", .help = "Adam: ...", .default_lr = 0.002);
///
/// A user's own optimizer in a project built against the installed funnel registers the same way.
struct OptimizerDef {
  std::string name{};        ///< "adam": the value of --optimizer and the name in checkpoints
  std::string help{};        ///< one line for --help
  double default_lr = 0.01;  ///< the --lr default when this optimizer is chosen
  /// Makes the float32 optimizer (training).
  std::function<std::unique_ptr<Optimizer<float>>(const OptimizerConfig&)> make_float{};
  /// Makes the float64 optimizer (gradient checks, tests).
  std::function<std::unique_ptr<Optimizer<double>>(const OptimizerConfig&)> make_double{};
  int order = 100;  ///< place in --help's list, lower first (funnel's own: 0..99), then registration order
};

/// Registers `def`; an Error on an empty name, a missing factory or a name already taken.
void register_optimizer(OptimizerDef def);
/// The registered optimizer `name`, or null.
const OptimizerDef* find_optimizer(std::string_view name);
/// Every registered optimizer, by OptimizerDef::order, then registration order.
std::vector<const OptimizerDef*> optimizer_defs();
/// The registered names, sorted alphabetically ("adagrad", "adam", "sgd").
std::vector<std::string> optimizer_names();

/// Registers an optimizer at static-initialisation time (see FUNNEL_REGISTER_OPTIMIZER).
struct OptimizerRegistrar {
  /// Registers `def`; prints the error and aborts if registration fails.
  explicit OptimizerRegistrar(OptimizerDef def);
};

/// `def` with make_float and make_double set to construct `Opt<float>` and `Opt<double>` from the config.
template <template <class> class Opt>
OptimizerDef with_optimizer_factories(OptimizerDef def) {
  def.make_float = [](const OptimizerConfig& c) -> std::unique_ptr<Optimizer<float>> {
    return std::make_unique<Opt<float>>(c);
  };
  def.make_double = [](const OptimizerConfig& c) -> std::unique_ptr<Optimizer<double>> {
    return std::make_unique<Opt<double>>(c);
  };
  return def;
}

/// Registers the optimizer class template `Class` (an Optimizer<T> subclass constructible from an OptimizerConfig)
/// with the OptimizerDef fields given as designated initialisers (.name, .help, .default_lr, .order).
#define FUNNEL_REGISTER_OPTIMIZER(ident, Class, ...)                                   \
  static const ::funnel::OptimizerRegistrar funnel_optimizer_registrar_##ident{       \
      ::funnel::with_optimizer_factories<Class>(::funnel::OptimizerDef{__VA_ARGS__})}

/// The registered optimizer `name` with config `cfg`; an unknown name is an Error listing the known names. Also
/// checks the config (lr > 0, 0 <= betas < 1, eps > 0, momentum >= 0, weight_decay >= 0).
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const std::string& name, const OptimizerConfig& cfg);

extern template class Optimizer<float>;
extern template class Optimizer<double>;
/// The instantiations train/optimizer.cpp compiles: make_optimizer for float (training) and double (gradient
/// checks).
///@{
extern template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const std::string&, const OptimizerConfig&);
extern template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const std::string&,
                                                                          const OptimizerConfig&);
///@}

}  // namespace funnel
