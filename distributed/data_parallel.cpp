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

DataParallel::DataParallel(Communicator& c, Model& m, DataParallelOptions o) : c_(c), m_(&m), o_(o), reducer_(c) {
  losses_.assign(m.handle().losses.size(), 0.0f);
  extra_.assign(losses_.size(), 0.0f);
}

DataParallel::DataParallel(Communicator& c, DataParallelOptions o) : c_(c), o_(o), reducer_(c) {}

Model& DataParallel::model() {
  if (!m_) throw Error("DataParallel: no model (attach it to a Trainer first)");
  return *m_;
}

void DataParallel::attach(Trainer& t) {
  m_ = &t.model();
  losses_.assign(m_->handle().losses.size(), 0.0f);
  extra_.assign(losses_.size(), 0.0f);
}

std::unique_ptr<BatchSource> DataParallel::train_source(const Trainer& t) {
  // In memory: every rank its part of each global batch. Streamed: every rank its own chunks, batch sizes agreed.
  std::unique_ptr<BatchSource> src = t.train_source(c_.rank(), c_.size());
  if (t.data().streamed()) src = std::make_unique<AgreedSource>(c_, std::move(src));
  return src;
}

std::unique_ptr<BatchSource> DataParallel::eval_source(const Trainer& t) { return t.eval_source(c_.rank(), c_.size()); }

void DataParallel::save(Trainer& t, const std::string& dir, std::int64_t step, std::int64_t epoch) {
  sync_optimizer_state();
  if (lead()) t.write_checkpoint(dir, step, epoch);
}

// Where a step's time goes, as seen from the hooks: [step start, exchange) computing (binding the batch, forward,
// backward), the exchange, then [exchange end, on_step) the optimizer.
void DataParallel::start_clock() {
  mark_ = Clock::now();
  cpu_mark_ = thread_cpu();
}

void DataParallel::after_gradients(Model& m, GradientStep& g) {
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

  mine_ = g.batch.local > 0;
  const float weight = static_cast<float>(static_cast<double>(g.batch.local) / static_cast<double>(g.batch.rows));
  for (std::size_t i = 0; i < extra_.size(); ++i) extra_[i] = mine_ ? weight * g.losses[i] : 0.0f;
  if (sharded_) sharded_->exchange_gradients(weight, mine_);  // [shard hook] tables to their owners, updated there
  if (o_.shard_optimizer) {
    reducer_.reduce_owned(m.params(), weight, extra_, mine_);
    stats_.comm_seconds += since(t0);
  } else {
    reducer_.reduce(m.params(), weight, extra_, mine_);
    stats_.comm_seconds += since(t0);
    std::copy(extra_.begin(), extra_.end(), losses_.begin());
    std::copy(extra_.begin(), extra_.end(), g.losses.begin());
  }
  mark_ = Clock::now();
}

void DataParallel::apply_optimizer(Model& m, Optimizer<float>& opt, GradientStep& g) {
  if (o_.shard_optimizer) {
    const auto t1 = Clock::now();
    const double cpu1 = thread_cpu();
    reducer_.apply_owned(m.params(), opt);
    stats_.optimizer_seconds += since(t1);
    stats_.optimizer_cpu_seconds += thread_cpu() - cpu1;
    stats_.optimizer_elements += reducer_.last_optimizer_elements();
    stats_.optimizer_dense_cpu_seconds += reducer_.last_dense_cpu_seconds();
    stats_.optimizer_sparse_cpu_seconds += reducer_.last_sparse_cpu_seconds();
    const auto t2 = Clock::now();
    reducer_.gather_values(m.params(), extra_);
    stats_.comm_seconds += since(t2);
    std::copy(extra_.begin(), extra_.end(), losses_.begin());
    std::copy(extra_.begin(), extra_.end(), g.losses.begin());
  } else {
    opt.step(m.params());  // timed as optimizer time by after_step (from mark_)
  }
  ++steps_;
  ++stats_.steps;
  stats_.sparse_seconds += reducer_.last_sparse_seconds();
  const auto& b = reducer_.last_bytes();
  stats_.dense_bytes += b.dense;
  stats_.sparse_bytes += b.sparse;
  stats_.sparse_rows += b.sparse_rows;
  stats_.merged_rows += b.merged_sparse_rows;
  if (o_.shard_optimizer) mark_ = Clock::now();
}

void DataParallel::sync_optimizer_state() { reducer_.gather_optimizer_state(model().params()); }

void DataParallel::after_step(const StepInfo&) {
  stats_.optimizer_seconds += since(mark_);
  if (o_.check_every > 0 && steps_ % o_.check_every == 0) check_replicas(steps_);
}

FunnelMetrics DataParallel::evaluate(Model&, BatchSource& mine, const EvalHooks&) { return evaluate(mine); }

bool DataParallel::step(const Dataset& d, std::span<const std::int64_t> rows, Optimizer<float>& opt,
                        bool stop_requested) {
  DatasetSource src(d, rows, 0, c_.rank(), c_.size());
  std::atomic<bool> stop{stop_requested};
  TrainHooks user;
  user.stop = &stop;
  TrainOptions o;
  o.batch_size = static_cast<std::int64_t>(rows.size());
  before_training();
  const bool stopped = train(model(), opt, src, {}, o, user, 0, this).stopped;
  after_training();
  return stopped;
}

FunnelMetrics DataParallel::evaluate(BatchSource& mine) {
  return funnel::evaluate(model(), mine, [this](StreamingFunnelMetrics& acc) {
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
  const ParamStore<float>& ps = model().params();
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
  dp.before_training();
  TrainResult r = funnel::train(m, opt, train, ev, o, hooks, start_step, &dp);
  dp.after_training();  // rank 0 saves the whole state after this (callers write checkpoints on rank 0)
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
