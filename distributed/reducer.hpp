#pragma once
/// @file
/// Reducer: turns each rank's gradients of its part of a global batch into the gradient of the whole batch, the
/// same bits on every rank, so every replica applies the identical optimizer update.
///
/// Dense gradients (every parameter with a gradient that is not an embedding table's SparseRows) and any extra
/// numbers the caller adds (e.g. the batch losses) travel in one fused float buffer, summed with
/// Communicator::sum_identical. Sparse gradients (SparseRows: touched rows + their values) are all-gathered —
/// row ids and values of every rank in rank order — and each rank merges them in the same order, so the merged
/// rows and sums are identical everywhere. Each rank scales its contribution by `weight` (its rows / global
/// rows): the losses are batch means, so Σ_r weight_r · grad_r is the gradient of the global batch's mean.
///
/// Compared with one process on the whole batch only the summation order differs (per-rank partial sums added
/// in rank order instead of one running sum), i.e. float rounding.
///
/// Sharded optimizer (reduce_and_apply, what data-parallel training uses): the reduce-scatter leaves each rank the
/// whole batch's gradient of one contiguous slice of the fused buffer only; the rank applies the optimizer to the
/// (parameter, element range) pieces of its slice (Optimizer::begin_step + update_dense_range), then the ranks
/// all-gather the updated parameter VALUES (the same bytes the gradients' all-gather moved), so every replica
/// ends with the same bits while each rank ran the dense optimizer on 1/N of the elements. Sparse rows are merged
/// as above and applied on every rank. Each rank's dense optimizer slots (Adam's moments, ...) are then current
/// in its own slice only: gather_optimizer_state() makes them whole on every rank (before a checkpoint).
#include <cstdint>
#include <span>
#include <vector>

#include "autodiff/param_store.hpp"
#include "distributed/comm.hpp"
#include "train/optimizer.hpp"

namespace funnel::dist {

/// CPU seconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID): the per-step timings of the reducer and the loop.
double thread_cpu();

/// Payload of this rank in the last step, in bytes unless named rows (with one rank: what a rank would send for
/// that batch).
struct ReduceBytes {
  std::uint64_t dense = 0;   ///< fused dense buffer handed to the reduction (dense gradients + extra), bytes
  std::uint64_t sparse = 0;  ///< row ids + values + counts this rank contributed to the all-gathers, bytes
  std::uint64_t sparse_rows = 0;         ///< embedding rows this rank contributed
  std::uint64_t merged_sparse_rows = 0;  ///< rows after the merge (the union over ranks)
};

/// Reduces each rank's gradients into the whole global batch's, identically on every rank (see the file comment),
/// and optionally runs the dense optimizer sharded across the ranks. Every method that communicates is a
/// collective: every rank of the communicator calls it at the same point of its step, with the same parameters.
/// One Reducer per ParamStore; not thread-safe (one training thread uses it).
class Reducer {
 public:
  /// A reducer over `c`, which must outlive it. Nothing is set up until the first reduction.
  explicit Reducer(Communicator& c) : c_(c) {}

  /// Reduce the gradients of the last backward pass, held in the store `ps`, in place: afterwards every dense
  /// gradient and every embedding table's SparseRows hold Σ_r weight_r · grad_r, the same bits on every rank.
  /// `weight`: this rank's share of the global batch (its rows / the global rows). `extra` (same length on every
  /// rank and at every call; a longer one may throw CommError) is summed alongside, unscaled, and overwritten with
  /// the sum. has_grads = false: this
  /// rank had no rows this step and contributes zeros (its gradient buffers are overwritten with the sum all the
  /// same). The parameter list is fixed at the first call, which must follow a backward pass on every rank. With
  /// one rank and weight 1 nothing moves (only last_bytes() is counted). Throws what the communicator throws when
  /// a collective fails (CommError).
  void reduce(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads = true);

  /// The sharded step, in place of reduce() followed by opt.step(ps): reduce_owned, apply_owned, gather_values.
  /// Afterwards every rank holds the same updated parameter values and the summed `extra`; this rank's dense
  /// optimizer slots are current in its own pieces only (gather_optimizer_state). Arguments as for reduce();
  /// `opt` must be the optimizer of `ps`, the same kind and configuration on every rank.
  void reduce_and_apply(ParamStore<float>& ps, Optimizer<float>& opt, float weight, std::span<float> extra,
                        bool has_grads = true) {
    reduce_owned(ps, weight, extra, has_grads);
    apply_owned(ps, opt);
    gather_values(ps, extra);
  }
  /// Its three phases (timed apart by DataParallel), each called on every rank in this order: reduce_owned reduces
  /// the dense gradients by reduce-scatter — afterwards the store's dense gradients hold the whole batch's sum in
  /// this rank's pieces only — and the sparse rows as in reduce(); apply_owned runs the optimizer on this rank's
  /// pieces and on every merged sparse row (no communication; timed in last_dense_cpu_seconds and
  /// last_sparse_cpu_seconds); gather_values all-gathers the updated values (and `extra`, summed) so every rank
  /// holds all of them. Arguments as for reduce_and_apply.
  ///@{
  void reduce_owned(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads = true);
  void apply_owned(ParamStore<float>& ps, Optimizer<float>& opt);
  void gather_values(ParamStore<float>& ps, std::span<float> extra);
  ///@}

  /// After sharded steps on several ranks each rank's dense optimizer slots are current in its own pieces only;
  /// this all-gathers them (one all-gather per slot, collective: every rank calls it at the same point) so every
  /// rank holds the whole state, as one process would. Nothing to do (and no communication) when the state is
  /// already whole. Allocates a buffer of dense_floats() once.
  void gather_optimizer_state(ParamStore<float>& ps);
  /// True when the dense optimizer slots are current only in this rank's pieces.
  bool optimizer_state_partial() const { return partial_state_; }

  /// One piece of this rank's slice: elements [begin, end) of dense parameter `param`.
  struct Piece {
    NodeId param = 0;  ///< the dense parameter (its node in the model's graph)
    /// The element range [begin, end) of the flattened parameter.
    ///@{
    std::size_t begin = 0, end = 0;
    ///@}
  };
  /// The pieces this rank's optimizer updates in a sharded step (known after the first reduction): this rank's
  /// slice of the fused buffer (Communicator::slice_of) cut at the parameters' boundaries; with one rank, every
  /// dense parameter whole.
  const std::vector<Piece>& owned_pieces() const { return pieces_; }
  /// Dense parameter elements the optimizer updated in this rank's last apply_owned.
  std::uint64_t last_optimizer_elements() const { return last_elements_; }
  /// Dense parameter elements of the whole model (every rank's pieces together; known after the first reduction).
  std::uint64_t dense_elements() const { return dense_elements_; }
  /// CPU seconds of the calling thread in the last apply_owned spent on the dense pieces.
  double last_dense_cpu_seconds() const { return last_dense_cpu_; }
  /// CPU seconds of the calling thread in the last apply_owned spent on the sparse (embedding) rows.
  double last_sparse_cpu_seconds() const { return last_sparse_cpu_; }

  /// What this rank contributed in the last reduction (reduce or reduce_owned).
  const ReduceBytes& last_bytes() const { return last_; }
  /// Wall time of the last step's sparse exchange (all-gather of the embedding rows and their merge), seconds.
  double last_sparse_seconds() const { return last_sparse_seconds_; }
  /// Number of floats in the fused dense buffer (dense gradients + extra; 0 before the first reduction).
  std::size_t dense_floats() const { return fused_.size(); }

 private:
  void setup(ParamStore<float>& ps, std::size_t extra);
  void pack(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads);
  void exchange_sparse(ParamStore<float>& ps, float weight, bool has_grads);
  void count_local(ParamStore<float>& ps);
  Communicator& c_;
  bool ready_ = false;
  std::vector<NodeId> dense_, sparse_;
  std::vector<std::size_t> offset_;  // of each dense_ parameter in fused_
  std::vector<Piece> pieces_;
  std::vector<std::size_t> piece_offset_;  // of each piece's parameter in fused_
  std::uint64_t dense_elements_ = 0, last_elements_ = 0;
  double last_dense_cpu_ = 0, last_sparse_cpu_ = 0, last_sparse_seconds_ = 0;
  bool partial_state_ = false;
  std::vector<float> fused_, state_;
  std::vector<std::int64_t> counts_, all_counts_, gather_counts_;
  std::vector<std::int64_t> rows_, all_rows_;
  std::vector<float> vals_, all_vals_;
  ReduceBytes last_;
};

}  // namespace funnel::dist
