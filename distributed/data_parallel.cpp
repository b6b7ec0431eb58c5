#include "distributed/data_parallel.hpp"

#include "core/hash.hpp"

#include "distributed/sharded_embedding.hpp"  // [shard hook]

#include <algorithm>
#include <string>

#include "core/error.hpp"
#include "core/hash.hpp"
#include <chrono>
#include <ctime>
#include <cstring>
#include <numeric>

namespace funnel::dist {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

DataParallel::DataParallel(Communicator& c, Model& m, DataParallelOptions o) : c_(c), m_(m), o_(o), reducer_(c) {
  losses_.assign(m.handle().losses.size(), 0.0f);
  extra_.assign(losses_.size(), 0.0f);
}

// Where a step's time goes, as seen from the hooks: [step start, exchange) computing (binding the batch, forward,
// backward), the exchange, then [exchange end, on_step) the optimizer.
void DataParallel::start_clock() {
  mark_ = Clock::now();
  cpu_mark_ = thread_cpu();
}

void DataParallel::exchange(Model& m, GradientStep& g, Optimizer<float>* opt) {
  stats_.compute_seconds += since(mark_);
  stats_.compute_cpu_seconds += thread_cpu() - cpu_mark_;
  if (g.batch.rows == 0 && !g.error) return;  // the end of the epoch, alike on every rank
  const auto t0 = Clock::now();
  std::string error, node;
  if (g.error) {
    try {
      std::rethrow_exception(g.error);
    } catch (const NonFiniteError& e) {
      error = e.what();
      node = e.node;
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
  } else if (steps_ == 0 && g.batch.local == 0) {
    // The reducer learns the parameter list from the first backward pass on every rank.
    error = "no rows for this rank in the first batch (" + std::to_string(g.batch.rows) + " rows for " +
            std::to_string(c_.size()) + " ranks): use a batch size of at least the number of ranks" +
            " (with a streamed cache: a cache of at least as many chunks as ranks)";
  }
  // Agreement: [stop requested anywhere, 1 + highest failing rank].
  std::int64_t flags[2] = {g.stop ? 1 : 0, error.empty() ? 0 : c_.rank() + 1};
  c_.allreduce(flags, 2, DType::I64, ReduceOp::Max);
  stats_.wait_seconds += since(t0);
  if (flags[1] != 0) {
    const int bad = static_cast<int>(flags[1] - 1);
    const std::string msg = c_.broadcast_string(error, bad);
    const std::string bad_node = c_.broadcast_string(node, bad);
    const std::string bad_host = c_.broadcast_string(c_.host(), bad);
    stats_.comm_seconds += since(t0);
    throw RemoteError(bad, bad_host, bad_node,
                      "rank " + std::to_string(bad) + " of " + std::to_string(c_.size()) + " (host " + bad_host +
                          "): " + msg);
  }
  g.stop = flags[0] != 0;
  g.stop_agreed = true;

  const bool mine = g.batch.local > 0;
  const float weight = static_cast<float>(static_cast<double>(g.batch.local) / static_cast<double>(g.batch.rows));
  for (std::size_t i = 0; i < extra_.size(); ++i) extra_[i] = mine ? weight * g.losses[i] : 0.0f;
  if (sharded_) sharded_->exchange_gradients(weight, mine);  // [shard hook] tables to their owners, updated there
  if (opt && o_.shard_optimizer) {
    reducer_.reduce_owned(m.params(), weight, extra_, mine);
    stats_.comm_seconds += since(t0);
    const auto t1 = Clock::now();
    const double cpu1 = thread_cpu();
    reducer_.apply_owned(m.params(), *opt);
    stats_.optimizer_seconds += since(t1);
    stats_.optimizer_cpu_seconds += thread_cpu() - cpu1;
    stats_.optimizer_elements += reducer_.last_optimizer_elements();
    stats_.optimizer_dense_cpu_seconds += reducer_.last_dense_cpu_seconds();
    stats_.optimizer_sparse_cpu_seconds += reducer_.last_sparse_cpu_seconds();
    const auto t2 = Clock::now();
    reducer_.gather_values(m.params(), extra_);
    stats_.comm_seconds += since(t2);
    g.optimizer_applied = true;
  } else {
    reducer_.reduce(m.params(), weight, extra_, mine);
    stats_.comm_seconds += since(t0);
  }
  std::copy(extra_.begin(), extra_.end(), losses_.begin());
  std::copy(extra_.begin(), extra_.end(), g.losses.begin());
  ++steps_;
  ++stats_.steps;
  stats_.sparse_seconds += reducer_.last_sparse_seconds();
  const auto& b = reducer_.last_bytes();
  stats_.dense_bytes += b.dense;
  stats_.sparse_bytes += b.sparse;
  stats_.sparse_rows += b.sparse_rows;
  stats_.merged_rows += b.merged_sparse_rows;
  mark_ = Clock::now();
}

void DataParallel::sync_optimizer_state() { reducer_.gather_optimizer_state(m_.params()); }

TrainHooks DataParallel::hooks(const TrainHooks& user, Optimizer<float>* opt) {
  TrainHooks h = user;
  h.after_gradients = [this, user, opt](Model& m, GradientStep& g) {
    exchange(m, g, opt);
    if (user.after_gradients) user.after_gradients(m, g);
  };
  if (user.save)
    h.save = [this, user](std::int64_t step, std::int64_t epoch) {
      sync_optimizer_state();  // every rank calls save at the same step; rank 0 writes the whole state
      user.save(step, epoch);
    };
  h.on_step = [this, user](const StepInfo& i) {
    stats_.optimizer_seconds += since(mark_);
    if (o_.check_every > 0 && steps_ % o_.check_every == 0) check_replicas(steps_);
    if (user.on_step) user.on_step(i);
    start_clock();
  };
  return h;
}

bool DataParallel::step(const Dataset& d, std::span<const std::int64_t> rows, Optimizer<float>& opt,
                        bool stop_requested) {
  DatasetSource src(d, rows, 0, c_.rank(), c_.size());
  std::atomic<bool> stop{stop_requested};
  TrainHooks user;
  user.stop = &stop;
  TrainOptions o;
  o.batch_size = static_cast<std::int64_t>(rows.size());
  start_clock();
  const bool stopped = train(m_, opt, src, {}, o, hooks(user, &opt), 0).stopped;
  sync_optimizer_state();
  return stopped;
}

FunnelMetrics DataParallel::evaluate(BatchSource& mine) {
  return funnel::evaluate(m_, mine, [this](StreamingFunnelMetrics& acc) {
    acc.merge([this](std::vector<unsigned char>& bytes) {
      const std::vector<std::int64_t> counts = c_.allgather_one(static_cast<std::int64_t>(bytes.size()));
      std::int64_t total = 0;
      for (auto n : counts) total += n;
      std::vector<unsigned char> all(static_cast<std::size_t>(total));
      c_.allgatherv(bytes.data(), bytes.size(), all.data(), counts, DType::Byte);
      bytes.swap(all);
    });
  });
}

std::uint64_t DataParallel::param_hash() {
  std::uint64_t h = kFnv1a64Offset;
  const ParamStore<float>& ps = m_.params();
  for (NodeId p : ps.ids()) {
    if (sharded_ && sharded_->is_sharded(p)) continue;  // [shard hook]
    const Tensor<float>& t = ps.value(p);
    h = fnv1a64(t.data(), t.size() * sizeof(float), h);
  }
  return h;
}

void DataParallel::check_replicas(std::int64_t step) {
  const std::vector<std::uint64_t> all = c_.allgather_one(param_hash());
  ++stats_.hash_checks;
  std::string differ;
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw ReplicaMismatch("replica check at step " + std::to_string(step) + ": the parameters of rank(s) " + differ +
                          " differ from rank 0's");
}

AgreedSource::AgreedSource(Communicator& c, std::unique_ptr<BatchSource> mine) : c_(c), mine_(std::move(mine)) {
  rows_ = c_.allreduce_one(mine_->rows(), ReduceOp::Sum);
}

BatchRows AgreedSource::next(Model& m) {
  BatchRows b;
  std::exception_ptr error;
  try {
    b = mine_->next(m);
  } catch (...) {
    error = std::current_exception();  // agreed below, then rethrown: the other ranks meet it in the exchange
  }
  std::int64_t v[2] = {b.local, error ? 1 : 0};
  c_.allreduce(v, 2, DType::I64, ReduceOp::Sum);
  if (error) std::rethrow_exception(error);
  // A failure elsewhere: a batch of at least one row, so that this rank goes to the exchange that reports it.
  return {std::max<std::int64_t>(v[0], v[1] > 0 ? 1 : 0), b.local};
}

TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, BatchSource& train,
                                BatchSource* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step) {
  EvalFn ev;
  if (eval) {
    eval->check(m.config(), "evaluation data");
    ev = [&dp, eval](Model&) { return dp.evaluate(*eval); };
  }
  dp.start_clock();
  TrainResult r = funnel::train(m, opt, train, ev, o, dp.hooks(hooks, &opt), start_step);
  dp.sync_optimizer_state();  // rank 0 saves the whole state after this (callers write checkpoints on rank 0)
  return r;
}

TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, const Dataset& data,
                                const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step) {
  Communicator& c = dp.comm();
  DatasetSource src(data, o.batch_size, o.shuffle, o.seed, c.rank(), c.size());
  std::unique_ptr<DatasetSource> ev;
  if (eval) ev = std::make_unique<DatasetSource>(*eval, o.eval_batch_size, false, 1, c.rank(), c.size());
  return train_data_parallel(dp, m, opt, src, ev.get(), o, hooks, start_step);
}

void check_same_config(Communicator& c, const nlohmann::json& config) {
  if (c.size() < 2) return;
  const std::string text = config.dump();
  const std::uint64_t h = fnv1a64(text);
  std::uint64_t lo = h, hi = h;
  c.allreduce(&lo, 1, DType::U64, ReduceOp::Min);
  c.allreduce(&hi, 1, DType::U64, ReduceOp::Max);
  if (lo != hi)
    throw Error("rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size()) +
                ": the ranks were started with different configurations (hashes of the effective configuration "
                "differ), so their replicas would diverge; start every rank with the same flags. This rank's: " +
                text);
}

FunnelMetrics evaluate_sharded(Communicator& c, Model& m, const Dataset& d, std::int64_t batch_size) {
  // This rank's contiguous share of the rows, in order.
  const std::int64_t n = d.rows();
  std::vector<std::int64_t> rows(static_cast<std::size_t>(n * (c.rank() + 1) / c.size() - n * c.rank() / c.size()));
  std::iota(rows.begin(), rows.end(), n * c.rank() / c.size());
  DatasetSource mine(d, rows, batch_size);
  DataParallel dp(c, m);
  return dp.evaluate(mine);
}

}  // namespace funnel::dist
