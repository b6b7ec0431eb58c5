#include "distributed/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>

namespace funnel::dist {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

std::span<const std::int64_t> shard_of(std::span<const std::int64_t> rows, int r, int n) {
  const auto N = static_cast<std::size_t>(n), R = static_cast<std::size_t>(r);
  const std::size_t q = rows.size() / N, extra = rows.size() % N;
  const std::size_t begin = R * q + std::min(R, extra);
  const std::size_t len = q + (R < extra ? 1 : 0);
  return rows.subspan(begin, len);
}

DataParallel::DataParallel(Communicator& c, Model& m, DataParallelOptions o) : c_(c), m_(m), o_(o), reducer_(c) {
  losses_.assign(m.handle().losses.size(), 0.0f);
  extra_.assign(losses_.size(), 0.0f);
}

bool DataParallel::step(const Dataset& d, std::span<const std::int64_t> rows, Optimizer<float>& opt,
                        bool stop_requested) {
  // Decided alike on every rank (same global batch), so no rank waits alone in a collective.
  if (steps_ == 0 && rows.size() < static_cast<std::size_t>(c_.size()))
    throw Error("the first global batch has " + std::to_string(rows.size()) + " rows for " +
                std::to_string(c_.size()) + " ranks: use a batch size of at least the number of ranks");
  const auto mine = shard_of(rows, c_.rank(), c_.size());
  auto t0 = Clock::now();
  std::string error, node;
  if (!mine.empty()) {
    try {
      m_.bind(d, mine);
      m_.compute_gradients();
    } catch (const NonFiniteError& e) {
      error = e.what();
      node = e.node;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  stats_.compute_seconds += since(t0);
  t0 = Clock::now();

  // Agreement: [stop requested anywhere, 1 + highest failing rank].
  std::int64_t flags[2] = {stop_requested ? 1 : 0, error.empty() ? 0 : c_.rank() + 1};
  c_.allreduce(flags, 2, DType::I64, ReduceOp::Max);
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

  const float weight = static_cast<float>(static_cast<double>(mine.size()) / static_cast<double>(rows.size()));
  const auto& local = m_.last_losses();
  for (std::size_t i = 0; i < extra_.size(); ++i) extra_[i] = mine.empty() ? 0.0f : weight * local[i];
  reducer_.reduce(m_.exec(), weight, extra_, !mine.empty());
  std::copy(extra_.begin(), extra_.end(), losses_.begin());
  stats_.comm_seconds += since(t0);

  opt.step(m_.exec());
  ++steps_;
  ++stats_.steps;
  const auto& b = reducer_.last_bytes();
  stats_.dense_bytes += b.dense;
  stats_.sparse_bytes += b.sparse;
  stats_.sparse_rows += b.sparse_rows;
  stats_.merged_rows += b.merged_sparse_rows;
  if (o_.check_every > 0 && steps_ % o_.check_every == 0) check_replicas(steps_);
  return flags[0] != 0;
}

std::uint64_t DataParallel::param_hash() {
  std::uint64_t h = 1469598103934665603ull;
  auto& ex = m_.exec();
  for (NodeId p : ex.params()) {
    const Tensor<float>& t = ex.param(p);
    const auto* bytes = reinterpret_cast<const unsigned char*>(t.data());
    const std::size_t n = t.size() * sizeof(float);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= bytes[i];
      h *= 1099511628211ull;
    }
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

TrainResult train_data_parallel(DataParallel& dp, Model& m, Optimizer<float>& opt, const Dataset& data,
                                const Dataset* eval, const TrainOptions& o, const TrainHooks& hooks,
                                std::int64_t start_step) {
  check_compatible(m.config(), data, "training data");
  if (eval) check_compatible(m.config(), *eval, "evaluation data");
  if (o.batch_size <= 0) throw Error("batch size must be positive");
  TrainResult res;
  const std::int64_t n = data.rows();
  if (n == 0) throw Error("training data has no rows");
  // The same order as funnel::train: identical on every rank (same seed), so the global batches are too.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + 17);
  std::int64_t step = start_step;
  const std::size_t L = m.handle().losses.size();
  StepInfo info;
  info.running_losses.assign(L, 0.0);
  for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    if (o.shuffle) std::shuffle(order.begin(), order.end(), rng);
    EpochReport rep;
    rep.epoch = epoch;
    rep.mean_losses.assign(L, 0.0);
    double seconds = 0.0;
    std::int64_t rows_done = 0;
    for (std::int64_t start = 0; start < n; start += o.batch_size) {
      if (o.max_steps > 0 && step >= o.max_steps) break;
      const std::int64_t end = std::min(n, start + o.batch_size);
      auto t0 = Clock::now();
      std::span<const std::int64_t> rows(order.data() + start, static_cast<std::size_t>(end - start));
      const bool stop = dp.step(data, rows, opt, hooks.stop && hooks.stop->load());
      seconds += since(t0);
      ++step;
      ++rep.steps;
      rows_done += end - start;
      const auto& ls = dp.losses();
      for (std::size_t i = 0; i < L; ++i) {
        rep.mean_losses[i] += ls[i];
        info.running_losses[i] = step == start_step + 1 ? ls[i] : 0.98 * info.running_losses[i] + 0.02 * ls[i];
      }
      info.step = step;
      info.epoch = epoch;
      info.rows_done = rows_done;
      info.rows_total = n;
      info.rows_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
      if (hooks.on_step) hooks.on_step(info);
      if (o.save_every > 0 && step % o.save_every == 0 && hooks.save) hooks.save(step, epoch);
      if (stop) {
        res.stopped = true;
        break;
      }
    }
    for (auto& v : rep.mean_losses) v = rep.steps ? v / static_cast<double>(rep.steps) : 0.0;
    rep.samples_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
    if (eval && !res.stopped && rep.steps > 0) {
      rep.eval = evaluate_sharded(dp.comm(), m, *eval, o.eval_batch_size);
      rep.has_eval = true;
    }
    res.steps = step;
    if (rep.steps > 0) {
      res.epochs.push_back(rep);
      if (hooks.on_epoch) hooks.on_epoch(rep);
    }
    if (res.stopped || (o.max_steps > 0 && step >= o.max_steps)) break;
  }
  res.steps = step;
  return res;
}

FunnelMetrics evaluate_sharded(Communicator& c, Model& m, const Dataset& d, std::int64_t batch_size) {
  check_compatible(m.config(), d, "evaluation data");
  const std::int64_t n = d.rows();
  const int P = c.size();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(P));
  std::int64_t lo = 0, hi = 0;
  for (int r = 0; r < P; ++r) {
    const std::int64_t b = n * r / P, e = n * (r + 1) / P;
    counts[static_cast<std::size_t>(r)] = 3 * (e - b);
    if (r == c.rank()) lo = b, hi = e;
  }
  // This rank's scores, interleaved per row: pctr, pcvr, pctcvr.
  std::vector<float> mine(static_cast<std::size_t>(3 * (hi - lo)));
  const auto& h = m.handle();
  const std::vector<NodeId> targets{h.pctr, h.pcvr, h.pctcvr};
  std::vector<std::int64_t> rows;
  auto& ex = m.exec();
  for (std::int64_t start = lo; start < hi; start += batch_size) {
    const std::int64_t end = std::min(hi, start + batch_size);
    rows.resize(static_cast<std::size_t>(end - start));
    std::iota(rows.begin(), rows.end(), start);
    m.bind(d, rows);
    ex.forward(targets);
    for (std::size_t k = 0; k < 3; ++k) {
      const float* v = ex.value(targets[k]).data();
      for (std::int64_t i = 0; i < end - start; ++i) mine[static_cast<std::size_t>(3 * (start - lo + i)) + k] = v[i];
    }
  }
  std::vector<float> all(static_cast<std::size_t>(3 * n));
  c.allgatherv(mine.data(), mine.size(), all.data(), counts, DType::F32);
  std::vector<float> pctr(static_cast<std::size_t>(n)), pcvr(pctr.size()), pctcvr(pctr.size());
  std::vector<float> click(pctr.size()), ctcvr(pctr.size()), entire;
  for (std::int64_t r = 0; r < n; ++r) {
    const auto u = static_cast<std::size_t>(r);
    pctr[u] = all[3 * u];
    pcvr[u] = all[3 * u + 1];
    pctcvr[u] = all[3 * u + 2];
    click[u] = d.label(r, 0);
    ctcvr[u] = d.label(r, 1);
  }
  if (d.has_truth()) {
    entire.resize(pctr.size());
    for (std::int64_t r = 0; r < n; ++r)
      entire[static_cast<std::size_t>(r)] = d.entire_labels[static_cast<std::size_t>(r * d.num_stages + 1)];
  }
  FunnelInputs in;
  in.pctr = pctr;
  in.pcvr = pcvr;
  in.pctcvr = pctcvr;
  in.click = click;
  in.ctcvr = ctcvr;
  in.conversion_entire = entire;
  return evaluate_funnel(in);
}

}  // namespace funnel::dist
