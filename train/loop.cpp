#include "train/loop.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>

#include "core/error.hpp"

namespace funnel {

TrainResult train(Model& m, Optimizer<float>& opt, const Dataset& data, const Dataset* eval, const TrainOptions& o,
                  const TrainHooks& hooks, std::int64_t start_step) {
  check_compatible(m.config(), data, "training data");
  if (eval) check_compatible(m.config(), *eval, "evaluation data");
  if (o.batch_size <= 0) throw Error("batch size must be positive");
  TrainResult res;
  const std::int64_t n = data.rows();
  if (n == 0) throw Error("training data has no rows");
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
      auto t0 = std::chrono::steady_clock::now();
      std::span<const std::int64_t> rows(order.data() + start, static_cast<std::size_t>(end - start));
      m.bind(data, rows);
      m.compute_gradients();
      opt.step(m.exec());
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++step;
      ++rep.steps;
      rows_done += end - start;
      const auto& ls = m.last_losses();
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
      if (hooks.stop && hooks.stop->load()) {
        res.stopped = true;
        break;
      }
    }
    for (auto& v : rep.mean_losses) v = rep.steps ? v / static_cast<double>(rep.steps) : 0.0;
    rep.samples_per_sec = seconds > 0 ? static_cast<double>(rows_done) / seconds : 0.0;
    if (eval && !res.stopped && rep.steps > 0) {
      rep.eval = evaluate(m, *eval, o.eval_batch_size);
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

FunnelMetrics evaluate(Model& m, const Dataset& d, std::int64_t batch_size) {
  // The funnel's first two stages by role: p(click), p(conversion | click), p(click and conversion).
  const ModelHandle& h = m.handle();
  const auto p = predict_nodes(m, d, batch_size, {h.stage_probs[0], h.cond_probs[1], h.stage_probs[1]});
  const std::int64_t n = d.rows();
  std::vector<float> click(static_cast<std::size_t>(n)), ctcvr(static_cast<std::size_t>(n));
  for (std::int64_t r = 0; r < n; ++r) {
    click[static_cast<std::size_t>(r)] = d.label(r, 0);
    ctcvr[static_cast<std::size_t>(r)] = d.label(r, 1);
  }
  std::vector<float> entire;
  if (d.has_truth()) {
    entire.resize(static_cast<std::size_t>(n));
    for (std::int64_t r = 0; r < n; ++r)
      entire[static_cast<std::size_t>(r)] = d.entire_labels[static_cast<std::size_t>(r * d.num_stages + 1)];
  }
  FunnelInputs in;
  in.pctr = p[0];
  in.pcvr = p[1];
  in.pctcvr = p[2];
  in.click = click;
  in.ctcvr = ctcvr;
  in.conversion_entire = entire;
  return evaluate_funnel(in);
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
