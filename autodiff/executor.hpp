#pragma once
/// @file
/// Executor<T>: runs a Graph forward and backward on values of one scalar type, float to train, double to check
/// gradients. The parameters' numbers (values, gradients, optimizer state) live in a ParamStore<T> that the executor
/// borrows (Executor(g, store)): the model owns the store, and optimizers, checkpoints and the cross-process reducer
/// work on it. Executor(g) alone makes a private store, for tests and one-off checks. Buffers are sized once per batch size and reused, so a
/// steady-state step (same batch size, same losses) does not allocate.
///
/// Backward runs the op VJPs in reverse topological order from one loss, a weighted sum of losses, or a chosen
/// subset. Nodes that reach no requested loss, or depend on no parameter, are pruned. Where a node fans out,
/// gradients accumulate, by the engine's rule (core/op.hpp), decided once per plan: the first gradient to reach a
/// node is written straight into its buffer, each later one into a scratch buffer that the executor adds in (or,
/// for an op that accumulates_into() that slot, in place with beta 1). Ops are looked up once, when the executor
/// is built; their attributes were parsed when the graph was. Embedding tables whose every consumer takes sparse
/// gradients get SparseRows.
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "core/graph.hpp"
#include "core/ids.hpp"
#include "core/op.hpp"
#include "autodiff/param_store.hpp"

namespace funnel {

/// One term of the weighted sum of losses that backward() differentiates.
struct LossWeight {
  NodeId loss;          ///< a scalar node (usually marked as a loss)
  double weight = 1.0;  ///< its factor in the sum
};

/// Runs one Graph forward and backward on one batch at a time (see the file's description). T is float (training,
/// serving) or double (gradient checks). Holds per-node buffers and cached plans, so it is not thread-safe: use one
/// executor per thread (they may share a const Graph, not a store being written). Errors: shape or kind mismatches
/// throw GraphError naming the node; a NaN or Inf in a forward value throws NonFiniteError (see set_check_finite).
template <class T>
class Executor {
 public:
  /// Borrows `store`, which must be made for `g` (the same object) and outlive the executor.
  Executor(const Graph& g, ParamStore<T>& store);
  /// With a private store.
  explicit Executor(const Graph& g);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const Graph& graph() const { return g_; }  ///< the graph it runs

  // ---- parameters: shorthands for the store's ----
  /// @{
  /// The parameter store (borrowed or private).
  ParamStore<T>& store() { return *ps_; }
  const ParamStore<T>& store() const { return *ps_; }
  /// @}
  /// Draws every parameter from its initializer (ParamStore::init).
  void init_params(std::uint64_t seed) { ps_->init(seed); }
  /// @{
  /// The value of parameter `id` (or of the parameter with that full name), writable in place.
  Tensor<T>& param(NodeId id) { return ps_->value(id); }
  Tensor<T>& param(const std::string& name) { return param(g_.at(name)); }
  /// @}
  const std::vector<NodeId>& params() const { return ps_->ids(); }  ///< the parameters, in graph order

  // ---- a batch ----
  /// Sizes every batch-dependent buffer for b rows; does nothing when b is unchanged.
  void set_batch(std::int64_t b);
  std::int64_t batch() const { return batch_; }  ///< the current batch size (0 before set_batch)
  /// The buffer of an Input node, already sized for the batch: fill it in place.
  /// @{
  Tensor<T>& input(NodeId id);
  Tensor<T>& input(const std::string& name) { return input(g_.at(name)); }
  /// @}
  /// @{
  /// The IdBatch of an Ids node, to fill for the batch (IdBatch::reset with the batch size, then push/end_cell).
  IdBatch& ids(NodeId id);
  IdBatch& ids(const std::string& name) { return ids(g_.at(name)); }
  /// @}

  // ---- running ----
  void forward();                                    ///< every node
  void forward(const std::vector<NodeId>& targets);  ///< only what the targets need
  /// forward(targets) when backward() follows on the same batch: ops that can lay out their sparse gradients' rows
  /// do it now (Op::prepares_sparse, e.g. embedding's id-to-row slots, overlapped with its lookups), and the next
  /// backward() uses that layout.
  void forward_for_backward(const std::vector<NodeId>& targets);
  /// @{
  /// A node's value from the last forward pass (valid until the next set_batch or forward).
  const Tensor<T>& value(NodeId id) const { return *vbuf_.at(id); }
  const Tensor<T>& value(const std::string& name) const { return value(g_.at(name)); }
  /// @}
  /// A scalar node's value.
  T scalar(NodeId id) const { return values_.at(id).data()[0]; }

  /// Backward from a weighted sum of losses (the forward pass must have run). Gradients of the last call
  /// replace those of the one before.
  void backward(const std::vector<LossWeight>& losses);
  void backward(NodeId loss);  ///< backward from one loss with weight 1

  // ---- gradients of the last backward (the parameters' are in the store) ----
  bool has_grad(NodeId param) const;  ///< reached by a requested loss (structurally)
  /// True when the parameter's gradient is kept as SparseRows (an embedding table; see has_sparse_grad).
  bool is_sparse(NodeId param) const { return sparse_of_.at(param) != nullptr; }
  const Tensor<T>& grad(NodeId param) const;  ///< dense parameters
  Tensor<T>& grad_mut(NodeId param);          ///< e.g. to reduce across processes in place
  const Tensor<T>& grad(const std::string& name) const { return grad(g_.at(name)); }  ///< grad() by full name
  /// @{
  /// The sparse gradient of an embedding table (is_sparse), read-only or writable.
  const SparseRows<T>& sparse_grad(NodeId param) const;
  SparseRows<T>& sparse_grad_mut(NodeId param);
  /// @}
  /// Gradient of any node reached by the last backward (e.g. for tests and the dot tool).
  const Tensor<T>& node_grad(NodeId id) const { return *gbuf_.at(id); }

  /// NaN/Inf in a forward output throws NonFiniteError naming the node (on by default).
  void set_check_finite(bool on) { check_finite_ = on; }

  // ---- where the time goes ----
  /// Wall time of each op node's forward and backward calls, summed since the last reset_profile() (off by
  /// default; when on, two clock reads per op call). Indexed by NodeId; nodes that never ran stay at 0.
  struct Profile {
    std::vector<double> forward_seconds;   ///< per node: seconds in its forward calls
    std::vector<double> backward_seconds;  ///< per node: seconds in its backward calls (with fan-out adds)
    /// Per node: the part of its forward and backward seconds spent outside loops that ran on more than one thread
    /// (core/parallel.hpp ThreadTimes): serial work, during which the other threads wait.
    std::vector<double> serial_seconds;
    /// Per node: the part of its seconds in which the calling thread, done with its share of a parallel loop,
    /// waited for the other threads (the loops' imbalance).
    std::vector<double> wait_seconds;
    std::vector<std::int64_t> forward_calls;   ///< per node: forward calls timed
    std::vector<std::int64_t> backward_calls;  ///< per node: backward calls timed
  };
  /// Turns the per-op timing on or off, and with it the thread pool's timing (set_thread_timing); the sums are kept
  /// (reset_profile zeroes them).
  void set_profiling(bool on);
  bool profiling() const { return profiling_; }  ///< whether op calls are being timed
  void reset_profile();  ///< zeroes the sums
  const Profile& profile() const { return profile_; }  ///< the sums so far

 private:
  /// One op of a backward pass.
  struct Step {
    NodeId node = 0;
    const Op* op = nullptr;
    bool zero_first = false;  ///< reached only through slots that pass no gradient: its own gradient is zero
    bool run = false;         ///< some input slot takes a gradient
    std::size_t slots = 0;    ///< where this step's input slots start in Plan::gin, sparse, add and add_to
  };
  struct Plan {
    std::vector<NodeId> order;  ///< forward: nodes to run, in the order to run them
    std::vector<char> need;     ///< backward: node needs a gradient
    std::vector<Step> steps;    ///< backward: the ops to run, in reverse topological order
    /// Per step and input slot: the buffer the op writes (the input's gradient or a scratch buffer), the sparse
    /// accumulator, whether the op adds in place (Ctx::add), and for a scratch buffer the gradient to add it to.
    std::vector<Tensor<T>*> gin;
    std::vector<SparseRows<T>*> sparse;
    std::vector<char> add;
    std::vector<Tensor<T>*> add_to;
    std::vector<NodeId> zero_params;  ///< dense parameters no step writes: their gradient is zero
  };
  void setup();
  const Plan& forward_plan(const std::vector<NodeId>& targets);
  const Plan& backward_plan(const std::vector<LossWeight>& losses);
  Tensor<T>* scratch(NodeId u, std::size_t k);
  void run_forward(const Plan& p, bool prepare_sparse = false);
  void ensure_grad_buffers();
  void check_inputs(NodeId v) const;
  void bind_rounded(NodeId v, Ctx<T>& c);

  const Graph& g_;
  std::unique_ptr<ParamStore<T>> owned_;  ///< Executor(g) only
  ParamStore<T>* ps_;  ///< its ids() are the parameters, in graph order (the executor keeps no copy)
  std::int64_t batch_ = 0;
  bool check_finite_ = true;
  bool profiling_ = false;
  // Per op node, per input: the SparseRows a forward_for_backward hands the op (prepares_sparse), else empty.
  std::vector<std::vector<SparseRows<T>*>> fwd_sparse_;
  bool sparse_prepared_ = false;  // the last forward was forward_for_backward: backward keeps its layout
  void reset_sparse();  // forgets the touched rows, and reserves for the bound batch's ids
  Profile profile_;
  // Adds an op call's time outside multi-thread loops and its waits inside them, from the pool's sums before it.
  void add_thread_profile(NodeId v, double took, double loops0, double wait0);
  bool backward_ran_ = false;
  /// Per node: its value and gradient buffer (a parameter's are in the store, every other node's in values_ and
  /// grads_), and for a sparse parameter its SparseRows (else nullptr).
  std::vector<Tensor<T>*> vbuf_;
  std::vector<Tensor<T>*> gbuf_;
  std::vector<SparseRows<T>*> sparse_of_;
  std::vector<SparseRows<T>*> sparse_list_;
  std::vector<Tensor<T>> values_;
  std::vector<Tensor<T>> grads_;
  /// The buffers of the batch size before the current one (see set_batch).
  std::vector<Tensor<T>> spare_values_;
  std::vector<Tensor<T>> spare_grads_;
  std::vector<IdBatch> ids_;
  std::vector<char> grad_sized_;
  std::vector<char> reached_;  ///< per node: reached by the last backward
  std::vector<const Op*> ops_;  ///< per node: its op (nullptr for leaves), looked up once
  /// Per node: its forward output gets the NaN/Inf check (not for an op that keeps_finite() fed only by ops).
  std::vector<char> check_;
  /// --precision bf16 (float only): per op node that reads a dense parameter in a gemm_operand() slot, the pointers
  /// handed to it as Ctx::rounded (that parameter's copy in rounded_, nullptr for other slots; empty for other
  /// nodes). A copy is remade at its first use in each forward pass (pass_ counts them, rounded_pass_ records it),
  /// so it is rounded once per step and never outlives a change of the parameter between passes.
  std::vector<std::vector<const Tensor<T>*>> rnd_ptrs_;
  std::vector<Tensor<T>> rounded_;
  std::vector<std::uint64_t> rounded_pass_;
  std::uint64_t pass_ = 1;  ///< rounded_pass_ starts at 0: no copy is fresh before the first pass
  /// Per node, the input pointer arrays handed to the op (sized once).
  std::vector<std::vector<const Tensor<T>*>> in_ptrs_;
  std::vector<std::vector<const IdBatch*>> id_ptrs_;
  /// Scratch gradient buffers of accumulating slots, made when a plan first needs them (a deque: their addresses
  /// stay put); the k-th of node u is scratch_[scratch_index_[{u, k}]]. Spares as for values_ (see set_batch).
  std::deque<Tensor<T>> scratch_;
  std::deque<Tensor<T>> spare_scratch_;
  std::vector<NodeId> scratch_node_;
  std::map<std::pair<NodeId, std::size_t>, std::size_t> scratch_index_;
  Plan full_plan_;
  std::map<std::vector<NodeId>, Plan> fwd_plans_;
  std::map<std::vector<NodeId>, Plan> bwd_plans_;
  std::vector<NodeId> bwd_key_;  ///< scratch, reused
  std::vector<LossWeight> single_loss_{LossWeight{0, 1.0}};
};

extern template class Executor<float>;
extern template class Executor<double>;

}  // namespace funnel
