#include "train/loop.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "train/strategy.hpp"

namespace funnel {

TrainResult train(Model& m, Optimizer<float>& opt, BatchSource& src, const EvalFn& eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step, ParallelStrategy* strategy) {
  LocalStrategy local;
  ParallelStrategy& st = strategy ? *strategy : local;
  src.check(m.config(), "training data");
  TrainResult res;
  const std::int64_t n = src.rows();
  if (n == 0) throw Error("training data has no rows");
  std::int64_t step = start_step;
  const std::size_t L = m.handle().losses.size();
  StepInfo info;
  info.running_losses.assign(L, 0.0);
  std::vector<float> losses(L);
  // The schedule's horizon and the rate it starts from; the configured rate is put back however the run ends.
  LrSchedule sched = o.lr_schedule;
  const double base_lr = opt.config().lr;
  if (sched.active() && sched.steps <= 0) {
    const std::int64_t per_epoch = (n + o.batch_size - 1) / std::max<std::int64_t>(o.batch_size, 1);
    sched.steps = per_epoch * o.epochs;
    if (o.max_steps > 0) sched.steps = std::min(sched.steps, o.max_steps - start_step);
  }
  struct RestoreLr {
    Optimizer<float>& opt;
    double lr;
    ~RestoreLr() { opt.set_lr(lr); }
  } restore{opt, base_lr};
  // Per-op timing of the steady steps: on after the warm-up, paused for the evaluations.
  auto& ex = m.exec();
  bool profiling = false;
  struct StopProfiling {
    Executor<float>& ex;
    ~StopProfiling() { ex.set_profiling(false); }
  } stop_profiling{ex};
  for (std::int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    if (o.max_steps > 0 && step >= o.max_steps) break;
    EpochReport rep;
    rep.epoch = epoch;
    rep.mean_losses.assign(L, 0.0);
    double seconds = 0.0;
    std::int64_t rows_done = 0;
    src.start_epoch(epoch);
    for (;;) {
      if (o.max_steps > 0 && step >= o.max_steps) break;
      st.before_step();
      if (o.profile && !profiling && step - start_step >= TrainResult::kWarmupSteps) {
        ex.reset_profile();
        reset_thread_times();
        profiling = true;
      }
      ex.set_profiling(profiling);
      const auto t0 = std::chrono::steady_clock::now();
      GradientStep g;
      g.step = step + 1;
      g.stop = hooks.stop && hooks.stop->load();
      if (sched.active()) opt.set_lr(sched.at(base_lr, step - start_step));
      auto t_batch = t0, t_grad = t0;
      try {
        g.batch = src.next(m);  // waiting for a streaming source's reader counts as training time
        t_batch = std::chrono::steady_clock::now();
        if (g.batch.local > 0) m.compute_gradients();
        t_grad = std::chrono::steady_clock::now();
      } catch (...) {
        g.error = std::current_exception();  // the strategy agrees on it (every process fails), then it is thrown
      }
      if (!g.error && g.batch.local > 0) std::copy(m.last_losses().begin(), m.last_losses().end(), losses.begin());
      else std::fill(losses.begin(), losses.end(), 0.0f);
      if (!g.error && g.batch.rows == 0) break;  // the end of the epoch (for every process)
      g.losses = losses;
      st.after_gradients(m, g);
      if (hooks.after_gradients) hooks.after_gradients(m, g);
      if (g.error) std::rethrow_exception(g.error);
      st.apply_optimizer(m, opt, g);
      const auto t_end = std::chrono::steady_clock::now();
      const double took = std::chrono::duration<double>(t_end - t0).count();
      seconds += took;
      if (step - start_step >= TrainResult::kWarmupSteps) {
        res.steady_seconds += took;
        res.steady_rows += g.batch.rows;
        ++res.steady_steps;
        res.steady_batch_seconds += std::chrono::duration<double>(t_batch - t0).count();
        res.steady_gradient_seconds += std::chrono::duration<double>(t_grad - t_batch).count();
        res.steady_update_seconds += std::chrono::duration<double>(t_end - t_grad).count();
      }
      ++step;
      ++rep.steps;
      rows_done += g.batch.rows;
      for (std::size_t i = 0; i < L; ++i) {
        rep.mean_losses[i] += g.losses[i];
        info.running_losses[i] =
            step == start_step + 1 ? g.losses[i] : 0.98 * info.running_losses[i] + 0.02 * g.losses[i];
      }
      info.step = step;
      info.epoch = epoch;
      info.rows_done = rows_done;
      info.rows_total = n;
      info.rows_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
      st.after_step(info);
      if (hooks.on_step) hooks.on_step(info);
      if (o.save_every > 0 && step % o.save_every == 0 && hooks.save) {
        st.before_save();
        hooks.save(step, epoch);
      }
      if (st.stop_after_step(g, hooks.stop)) {
        res.stopped = true;
        break;
      }
    }
    for (auto& v : rep.mean_losses) v = rep.steps ? v / static_cast<double>(rep.steps) : 0.0;
    rep.samples_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
    ex.set_profiling(false);
    if (eval && !res.stopped && rep.steps > 0) {
      try {
        rep.eval = eval(m);
        rep.has_eval = true;
      } catch (const EvalInterrupted&) {
        res.stopped = true;
        res.stopped_in_eval = true;
      }
    }
    res.steps = step;
    if (rep.steps > 0) {
      res.epochs.push_back(rep);
      if (hooks.on_epoch) hooks.on_epoch(rep);
    }
    if (res.stopped || (o.max_steps > 0 && step >= o.max_steps)) break;
  }
  res.steps = step;
  if (profiling && res.steady_steps > 0) {
    const auto& pr = ex.profile();
    const double per = 1e3 / static_cast<double>(res.steady_steps);
    for (std::size_t v = 0; v < pr.forward_seconds.size(); ++v) {
      if (pr.forward_calls[v] == 0 && pr.backward_calls[v] == 0) continue;
      const Node& nd = m.graph().node(static_cast<NodeId>(v));
      res.profile.push_back(
          {nd.name, nd.op, per * pr.forward_seconds[v], per * pr.backward_seconds[v], per * pr.serial_seconds[v],
                             per * pr.wait_seconds[v]});
    }
    const ThreadTimes tt = thread_times();
    res.profile_loop_ms = per * tt.loop_seconds;
    res.profile_wait_ms = per * tt.wait_seconds;
    for (double b : tt.busy_seconds) res.profile_thread_busy_ms.push_back(per * b);
    std::stable_sort(res.profile.begin(), res.profile.end(), [](const OpTime& a, const OpTime& b) {
      return a.forward_ms + a.backward_ms > b.forward_ms + b.backward_ms;
    });
  }
  return res;
}

TrainResult train(Model& m, Optimizer<float>& opt, const Dataset& data, const Dataset* eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step) {
  if (eval) check_compatible(m.config(), *eval, "evaluation data");
  DatasetSource src(data, o.batch_size, o.shuffle, o.seed);
  EvalFn ev;
  const EvalHooks eh{hooks.stop, hooks.on_eval_batch};
  if (eval)
    ev = [&](Model& mm) {
      DatasetSource es(*eval, o.eval_batch_size);
      return evaluate(mm, es, {}, eh);
    };
  return train(m, opt, src, ev, o, hooks, start_step);
}

void forward_each_batch(Model& m, BatchSource& src, const std::vector<NodeId>& targets,
                        const std::function<void(const std::vector<const float*>&, std::int64_t)>& out) {
  auto& ex = m.exec();
  std::vector<const float*> cols(targets.size());
  src.start_epoch(0);
  for (;;) {
    const BatchRows b = src.next(m);
    if (b.rows == 0) break;
    if (b.local == 0) continue;
    ex.forward(targets);
    for (std::size_t k = 0; k < targets.size(); ++k) cols[k] = ex.value(targets[k]).data();
    out(cols, b.local);
  }
}

FunnelMetrics evaluate(Model& m, BatchSource& src, const std::function<void(StreamingFunnelMetrics&)>& combine,
                       const EvalHooks& hooks) {
  src.check(m.config(), "evaluation data");
  const ModelHandle& h = m.handle();
  const std::size_t S = h.stage_probs.size();
  // Targets: p(reach stage s) for every stage, then p(stage s | stage s-1).
  std::vector<NodeId> targets(h.stage_probs);
  targets.insert(targets.end(), h.cond_probs.begin(), h.cond_probs.end());
  auto& ex = m.exec();
  StreamingFunnelMetrics acc;
  EvalProgress prog;
  prog.rows_total = src.rows();
  const auto t0 = std::chrono::steady_clock::now();
  StreamingFunnelMetrics::Batch b;
  forward_each_batch(m, src, targets, [&](const std::vector<const float*>& p, std::int64_t n) {
    b.n = n;
    b.reach.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(S));
    b.cond.assign(p.begin() + static_cast<std::ptrdiff_t>(S), p.end());
    b.labels.resize(S);
    b.entire.assign(S, nullptr);
    for (std::size_t s = 0; s < S; ++s) {
      b.labels[s] = ex.input(h.labels[s]).data();  // the labels the source bound
      b.entire[s] = src.entire(static_cast<std::int64_t>(s));
    }
    b.users = src.users();
    acc.add(b);
    ++prog.batches;
    prog.rows_done += n;
    if (hooks.on_batch) {
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      prog.rows_per_sec = sec > 0 ? static_cast<double>(prog.rows_done) / sec : 0.0;
      hooks.on_batch(prog);
    }
    if (hooks.stop && hooks.stop->load()) throw EvalInterrupted();
  });
  if (combine) combine(acc);
  return acc.result();
}

FunnelMetrics evaluate(Model& m, const Dataset& d, std::int64_t batch_size) {
  DatasetSource src(d, batch_size);
  return evaluate(m, src);
}

std::vector<std::vector<float>> predict_nodes(Model& m, const Dataset& d, std::int64_t batch_size,
                                              const std::vector<NodeId>& nodes) {
  DatasetSource src(d, batch_size);
  src.check(m.config(), "prediction data");
  std::vector<std::vector<float>> out(nodes.size());
  for (auto& c : out) c.reserve(static_cast<std::size_t>(d.rows()));
  forward_each_batch(m, src, nodes, [&](const std::vector<const float*>& v, std::int64_t n) {
    for (std::size_t k = 0; k < nodes.size(); ++k) out[k].insert(out[k].end(), v[k], v[k] + n);
  });
  return out;
}

Predictions predict(Model& m, const Dataset& d, std::int64_t batch_size) {
  Predictions p;
  std::vector<NodeId> nodes;
  for (const auto& c : m.handle().columns) {
    p.names.push_back(c.name);
    nodes.push_back(c.node);
  }
  p.columns = predict_nodes(m, d, batch_size, nodes);
  return p;
}

void split_tail(const Dataset& all, double fraction, Dataset& head, Dataset& tail) {
  const std::int64_t n = all.rows();
  const std::int64_t k = std::clamp<std::int64_t>(static_cast<std::int64_t>(static_cast<double>(n) * fraction), 1, n - 1);
  const std::int64_t cut = n - k;
  auto part = [&](Dataset& out, std::int64_t lo, std::int64_t hi) {
    out = Dataset{};
    out.num_fields = all.num_fields;
    out.num_stages = all.num_stages;
    out.num_dense = all.num_dense;
    out.vocab = all.vocab;
    out.field_names = all.field_names;
    out.dense_names = all.dense_names;
    const std::int64_t F = all.num_fields, S = all.num_stages, D = all.num_dense;
    const auto b = all.offsets[static_cast<std::size_t>(lo * F)], e = all.offsets[static_cast<std::size_t>(hi * F)];
    out.offsets.clear();
    for (std::int64_t i = lo * F; i <= hi * F; ++i) out.offsets.push_back(all.offsets[static_cast<std::size_t>(i)] - b);
    out.ids.assign(all.ids.begin() + b, all.ids.begin() + e);
    out.weights.assign(all.weights.begin() + b, all.weights.begin() + e);
    out.dense.assign(all.dense.begin() + lo * D, all.dense.begin() + hi * D);
    out.labels.assign(all.labels.begin() + lo * S, all.labels.begin() + hi * S);
    if (!all.true_prob.empty()) out.true_prob.assign(all.true_prob.begin() + lo * S, all.true_prob.begin() + hi * S);
    if (!all.entire_labels.empty())
      out.entire_labels.assign(all.entire_labels.begin() + lo * S, all.entire_labels.begin() + hi * S);
    if (!all.user_keys.empty()) out.user_keys.assign(all.user_keys.begin() + lo, all.user_keys.begin() + hi);
    if (all.has_blocks()) {
      // Only the shared blocks the part's rows use, renumbered in order of first use.
      std::vector<std::int32_t> remap(static_cast<std::size_t>(all.num_blocks()), -1);
      out.block_offsets.assign(1, 0);
      out.row_block.reserve(static_cast<std::size_t>(hi - lo));
      for (std::int64_t r = lo; r < hi; ++r) {
        const std::int32_t blk = all.row_block[static_cast<std::size_t>(r)];
        if (blk >= 0 && remap[static_cast<std::size_t>(blk)] < 0) {
          remap[static_cast<std::size_t>(blk)] = static_cast<std::int32_t>(out.num_blocks());
          const auto bo = static_cast<std::size_t>(blk * F);
          const auto bb = all.block_offsets[bo], be = all.block_offsets[bo + static_cast<std::size_t>(F)];
          const auto base = static_cast<std::int64_t>(out.block_ids.size());
          for (std::int64_t f = 1; f <= F; ++f)
            out.block_offsets.push_back(all.block_offsets[bo + static_cast<std::size_t>(f)] - bb + base);
          out.block_ids.insert(out.block_ids.end(), all.block_ids.begin() + bb, all.block_ids.begin() + be);
          out.block_weights.insert(out.block_weights.end(), all.block_weights.begin() + bb,
                                   all.block_weights.begin() + be);
        }
        out.row_block.push_back(blk >= 0 ? remap[static_cast<std::size_t>(blk)] : -1);
      }
    }
  };
  part(head, 0, cut);
  part(tail, cut, n);
}

}  // namespace funnel
