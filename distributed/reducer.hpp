#pragma once
// Reducer: turns each rank's gradients of its part of a global batch into the gradient of the whole batch, the
// same bits on every rank, so every replica applies the identical optimizer update.
//
// Dense gradients (every parameter with a gradient that is not an embedding table's SparseRows) and any extra
// numbers the caller adds (e.g. the batch losses) travel in one fused float buffer, summed with
// Communicator::sum_identical. Sparse gradients (SparseRows: touched rows + their values) are all-gathered —
// row ids and values of every rank in rank order — and each rank merges them in the same order, so the merged
// rows and sums are identical everywhere. Each rank scales its contribution by `weight` (its rows / global
// rows): the losses are batch means, so Σ_r weight_r · grad_r is the gradient of the global batch's mean.
//
// Compared with one process on the whole batch only the summation order differs (per-rank partial sums added
// in rank order instead of one running sum), i.e. float rounding.
#include <cstdint>
#include <span>
#include <vector>

#include "autodiff/param_store.hpp"
#include "distributed/comm.hpp"

namespace funnel::dist {

struct ReduceBytes {
  // Payload of this rank in the last step (with one rank: what a rank would send for that batch).
  std::uint64_t dense = 0;   // fused dense buffer handed to the reduction
  std::uint64_t sparse = 0;  // row ids + values + counts this rank contributed to the all-gathers
  std::uint64_t sparse_rows = 0;         // rows this rank contributed
  std::uint64_t merged_sparse_rows = 0;  // rows after the merge (the union over ranks)
};

class Reducer {
 public:
  explicit Reducer(Communicator& c) : c_(c) {}

  // Reduce the gradients of the last backward pass, held in the store `ps`, in place. `extra` (same length on every rank) is summed
  // alongside, unscaled. has_grads = false: this rank had no rows this step and contributes zeros (its gradient
  // buffers are overwritten with the sum all the same). The parameter list is fixed at the first call, which
  // must follow a backward pass on every rank.
  void reduce(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads = true);

  const ReduceBytes& last_bytes() const { return last_; }
  // Number of floats in the fused dense buffer (dense gradients + extra).
  std::size_t dense_floats() const { return fused_.size(); }

 private:
  void setup(ParamStore<float>& ps, std::size_t extra);
  Communicator& c_;
  bool ready_ = false;
  std::vector<NodeId> dense_, sparse_;
  std::vector<float> fused_;
  std::vector<std::int64_t> counts_, all_counts_, gather_counts_;
  std::vector<std::int64_t> rows_, all_rows_;
  std::vector<float> vals_, all_vals_;
  ReduceBytes last_;
};

}  // namespace funnel::dist
