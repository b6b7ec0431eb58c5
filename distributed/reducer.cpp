#include "distributed/reducer.hpp"

#include <algorithm>
#include <cstring>
#include <chrono>
#include <ctime>

namespace funnel::dist {

double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void Reducer::setup(ParamStore<float>& ps, std::size_t extra) {
  std::size_t n = 0;
  for (NodeId p : ps.ids()) {
    if (!ps.has_grad(p)) continue;
    if (ps.is_sparse(p)) {
      sparse_.push_back(p);
    } else {
      dense_.push_back(p);
      offset_.push_back(n);
      n += ps.numel(p);
    }
  }
  dense_elements_ = n;
  fused_.resize(n + extra);
  counts_.resize(sparse_.size());
  all_counts_.resize(sparse_.size() * static_cast<std::size_t>(c_.size()));
  gather_counts_.resize(static_cast<std::size_t>(c_.size()));
  // This rank's slice of the fused buffer, cut at the parameters' boundaries (the extra values are nobody's piece).
  const auto [lo, hi] = c_.slice_of(fused_.size(), c_.rank());
  for (std::size_t k = 0; k < dense_.size(); ++k) {
    const std::size_t b = std::max(lo, offset_[k]), e = std::min(hi, offset_[k] + ps.numel(dense_[k]));
    if (b < e) {
      pieces_.push_back({dense_[k], b - offset_[k], e - offset_[k]});
      piece_offset_.push_back(offset_[k]);
    }
  }
  ready_ = true;
}

void Reducer::count_local(ParamStore<float>& ps) {
  // One rank, whole batch: the gradients already are the result. Count what a rank would send (to measure the
  // payload of a rank whose share of a bigger job's batch is this batch).
  last_.dense = fused_.size() * sizeof(float);
  last_.sparse = sparse_.size() * sizeof(std::int64_t);
  last_.sparse_rows = 0;
  for (NodeId p : sparse_) {
    const SparseRows<float>& sg = ps.sparse_grad(p);
    last_.sparse_rows += sg.rows.size();
    last_.sparse += sg.rows.size() * sizeof(std::int64_t) + sg.values.size() * sizeof(float);
  }
  last_.merged_sparse_rows = last_.sparse_rows;
}

void Reducer::pack(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads) {
  for (std::size_t k = 0; k < dense_.size(); ++k) {
    const Tensor<float>& g = ps.grad(dense_[k]);
    float* dst = fused_.data() + offset_[k];
    if (has_grads) {
      const float* src = g.data();
      for (std::size_t i = 0; i < g.size(); ++i) dst[i] = weight * src[i];
    } else {
      std::fill(dst, dst + g.size(), 0.0f);
    }
  }
  std::copy(extra.begin(), extra.end(), fused_.end() - static_cast<std::ptrdiff_t>(extra.size()));
  last_.dense = fused_.size() * sizeof(float);
}

void Reducer::reduce(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads) {
  if (!ready_) setup(ps, extra.size());
  if (fused_.size() < extra.size()) throw CommError("Reducer: the extra values changed length");
  if (c_.size() == 1 && weight == 1.0f) return count_local(ps);
  pack(ps, weight, extra, has_grads);
  c_.sum_identical(fused_);
  for (std::size_t k = 0; k < dense_.size(); ++k) {
    Tensor<float>& g = ps.grad(dense_[k]);
    std::memcpy(g.data(), fused_.data() + offset_[k], g.size() * sizeof(float));
  }
  std::copy(fused_.end() - static_cast<std::ptrdiff_t>(extra.size()), fused_.end(), extra.begin());
  exchange_sparse(ps, weight, has_grads);
}

void Reducer::reduce_owned(ParamStore<float>& ps, float weight, std::span<float> extra, bool has_grads) {
  if (!ready_) setup(ps, extra.size());
  if (fused_.size() < extra.size()) throw CommError("Reducer: the extra values changed length");
  if (c_.size() == 1 && weight == 1.0f) return count_local(ps);  // this rank's pieces are every parameter
  pack(ps, weight, extra, has_grads);
  c_.reduce_scatter(fused_);
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& q = pieces_[i];
    std::memcpy(ps.grad(q.param).data() + q.begin, fused_.data() + piece_offset_[i] + q.begin,
                (q.end - q.begin) * sizeof(float));
  }
  exchange_sparse(ps, weight, has_grads);
}

void Reducer::apply_owned(ParamStore<float>& ps, Optimizer<float>& opt) {
  const double c0 = thread_cpu();
  const std::int64_t t = opt.begin_step(ps);
  last_elements_ = 0;
  for (const Piece& q : pieces_) {
    opt.update_dense_range(ps, q.param, q.begin, q.end, t);
    last_elements_ += q.end - q.begin;
  }
  const double c1 = thread_cpu();
  for (NodeId p : sparse_) opt.update_sparse_rows(ps, p, t);
  last_dense_cpu_ = c1 - c0;
  last_sparse_cpu_ = thread_cpu() - c1;
  if (c_.size() > 1) partial_state_ = true;
}

void Reducer::gather_values(ParamStore<float>& ps, std::span<float> extra) {
  if (c_.size() == 1) return;  // the values and `extra` are already everyone's
  for (std::size_t i = 0; i < pieces_.size(); ++i) {
    const Piece& q = pieces_[i];
    std::memcpy(fused_.data() + piece_offset_[i] + q.begin, ps.value(q.param).data() + q.begin,
                (q.end - q.begin) * sizeof(float));
  }
  c_.allgather_slices(fused_);
  for (std::size_t k = 0; k < dense_.size(); ++k) {
    Tensor<float>& v = ps.value(dense_[k]);
    std::memcpy(v.data(), fused_.data() + offset_[k], v.size() * sizeof(float));
  }
  std::copy(fused_.end() - static_cast<std::ptrdiff_t>(extra.size()), fused_.end(), extra.begin());
}

void Reducer::gather_optimizer_state(ParamStore<float>& ps) {
  if (!partial_state_) return;
  partial_state_ = false;
  const std::size_t slots = ps.slot_names().size();
  if (slots == 0) return;
  state_.assign(fused_.size(), 0.0f);
  for (std::size_t s = 0; s < slots; ++s) {
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      const Piece& q = pieces_[i];
      std::memcpy(state_.data() + piece_offset_[i] + q.begin, ps.slot(q.param, s) + q.begin,
                  (q.end - q.begin) * sizeof(float));
    }
    c_.allgather_slices(state_);
    for (std::size_t k = 0; k < dense_.size(); ++k)
      std::memcpy(ps.slot(dense_[k], s), state_.data() + offset_[k], ps.numel(dense_[k]) * sizeof(float));
  }
}

void Reducer::exchange_sparse(ParamStore<float>& ps, float weight, bool has_grads) {
  // ---- sparse: all-gather rows and values, merge in rank order ----
  last_.sparse = last_.sparse_rows = last_.merged_sparse_rows = 0;
  last_sparse_seconds_ = 0;
  if (sparse_.empty()) return;
  const auto start = std::chrono::steady_clock::now();
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
  last_sparse_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace funnel::dist
