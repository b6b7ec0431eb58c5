#include "distributed/reducer.hpp"

#include <algorithm>
#include <cstring>

namespace funnel::dist {

void Reducer::setup(ParamStore<float>& ps, std::size_t extra) {
  std::size_t n = 0;
  for (NodeId p : ps.ids()) {
    if (!ps.has_grad(p)) continue;
    if (ps.is_sparse(p)) {
      sparse_.push_back(p);
    } else {
      dense_.push_back(p);
      n += ps.numel(p);
    }
  }
  fused_.resize(n + extra);
  counts_.resize(sparse_.size());
  all_counts_.resize(sparse_.size() * static_cast<std::size_t>(c_.size()));
  gather_counts_.resize(static_cast<std::size_t>(c_.size()));
  ready_ = true;
}

void Reducer::reduce(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads) {
  if (!ready_) setup(ps, extra.size());
  if (fused_.size() < extra.size()) throw CommError("Reducer: the extra values changed length");
  const std::size_t extra_at = fused_.size() - extra.size();
  if (c_.size() == 1 && weight == 1.0f) {
    // One rank, whole batch: the gradients already are the result. Count what a rank would send (to measure
    // the payload of a rank whose share of a bigger job's batch is this batch).
    last_.dense = fused_.size() * sizeof(float);
    last_.sparse = sparse_.size() * sizeof(std::int64_t);
    last_.sparse_rows = 0;
    for (NodeId p : sparse_) {
      const SparseRows<float>& sg = ps.sparse_grad(p);
      last_.sparse_rows += sg.rows.size();
      last_.sparse += sg.rows.size() * sizeof(std::int64_t) + sg.values.size() * sizeof(float);
    }
    last_.merged_sparse_rows = last_.sparse_rows;
    return;
  }

  // ---- dense: one fused buffer ----
  std::size_t off = 0;
  for (NodeId p : dense_) {
    Tensor<float>& g = ps.grad(p);
    const std::size_t n = g.size();
    float* dst = fused_.data() + off;
    if (has_grads) {
      const float* src = g.data();
      for (std::size_t i = 0; i < n; ++i) dst[i] = weight * src[i];
    } else {
      std::fill(dst, dst + n, 0.0f);
    }
    off += n;
  }
  std::copy(extra.begin(), extra.end(), fused_.begin() + static_cast<std::ptrdiff_t>(extra_at));
  c_.sum_identical(fused_);
  off = 0;
  for (NodeId p : dense_) {
    Tensor<float>& g = ps.grad(p);
    std::memcpy(g.data(), fused_.data() + off, g.size() * sizeof(float));
    off += g.size();
  }
  std::copy(fused_.begin() + static_cast<std::ptrdiff_t>(extra_at), fused_.end(), extra.begin());
  last_.dense = fused_.size() * sizeof(float);

  // ---- sparse: all-gather rows and values, merge in rank order ----
  last_.sparse = last_.sparse_rows = last_.merged_sparse_rows = 0;
  if (sparse_.empty()) return;
  rows_.clear();
  vals_.clear();
  for (std::size_t s = 0; s < sparse_.size(); ++s) {
    const SparseRows<float>& sg = ps.sparse_grad(sparse_[s]);
    counts_[s] = has_grads ? static_cast<std::int64_t>(sg.rows.size()) : 0;
    if (!has_grads) continue;
    rows_.insert(rows_.end(), sg.rows.begin(), sg.rows.end());
    const std::size_t at = vals_.size();
    vals_.resize(at + sg.values.size());
    for (std::size_t i = 0; i < sg.values.size(); ++i) vals_[at + i] = weight * sg.values[i];
  }
  const std::size_t S = sparse_.size(), P = static_cast<std::size_t>(c_.size());
  std::fill(gather_counts_.begin(), gather_counts_.end(), static_cast<std::int64_t>(S));
  c_.allgatherv(counts_.data(), S, all_counts_.data(), gather_counts_, DType::I64);
  // all_counts_[r*S + s] = rows of sparse parameter s on rank r.
  std::int64_t total = 0;
  for (std::size_t r = 0; r < P; ++r) {
    std::int64_t k = 0;
    for (std::size_t s = 0; s < S; ++s) k += all_counts_[r * S + s];
    gather_counts_[r] = k;
    total += k;
  }
  all_rows_.resize(static_cast<std::size_t>(total));
  c_.allgatherv(rows_.data(), rows_.size(), all_rows_.data(), gather_counts_, DType::I64);
  // Values: dims differ per table, so count floats per rank.
  std::vector<std::int64_t>& vcounts = gather_counts_;
  std::int64_t vtotal = 0;
  for (std::size_t r = 0; r < P; ++r) {
    std::int64_t k = 0;
    for (std::size_t s = 0; s < S; ++s) k += all_counts_[r * S + s] * ps.sparse_grad(sparse_[s]).dim;
    vcounts[r] = k;
    vtotal += k;
  }
  all_vals_.resize(static_cast<std::size_t>(vtotal));
  c_.allgatherv(vals_.data(), vals_.size(), all_vals_.data(), vcounts, DType::F32);

  for (std::size_t s = 0; s < S; ++s) ps.sparse_grad(sparse_[s]).clear();
  std::size_t ri = 0, vi = 0;
  for (std::size_t r = 0; r < P; ++r) {
    for (std::size_t s = 0; s < S; ++s) {
      SparseRows<float>& sg = ps.sparse_grad(sparse_[s]);
      const auto dim = static_cast<std::size_t>(sg.dim);
      for (std::int64_t k = 0; k < all_counts_[r * S + s]; ++k, ++ri, vi += dim) {
        const std::int32_t slot = sg.index(all_rows_[ri]);
        float* dst = sg.values.data() + static_cast<std::size_t>(slot) * dim;
        const float* src = all_vals_.data() + vi;
        for (std::size_t j = 0; j < dim; ++j) dst[j] += src[j];
      }
    }
  }
  for (std::size_t s = 0; s < S; ++s) last_.merged_sparse_rows += ps.sparse_grad(sparse_[s]).rows.size();
  last_.sparse_rows = rows_.size();
  last_.sparse = S * sizeof(std::int64_t) + rows_.size() * sizeof(std::int64_t) + vals_.size() * sizeof(float);
}

}  // namespace funnel::dist
