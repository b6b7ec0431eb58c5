// funnel train: train a registered model (ESMM by default) on synthetic or real data, report the paper's metrics.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <string>

#include <optional>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/files.hpp"
#include "core/signals.hpp"
#include "train/checkpoint.hpp"
#include "cli/common.hpp"
#include "cli/plots.hpp"
#include "cli/progress.hpp"
#include "cli/train_flags.hpp"
#include "train/strategy.hpp"

namespace funnel::cli {
namespace {

// The --profile table: where a steady step's time went, and the ops that took most of it.
std::string format_profile(const TrainResult& r) {
  const double steps = static_cast<double>(r.steady_steps);
  const double batch = 1e3 * r.steady_batch_seconds / steps, grad = 1e3 * r.steady_gradient_seconds / steps,
               update = 1e3 * r.steady_update_seconds / steps, total = batch + grad + update;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line,
                "profile: %lld steady steps, %.2f ms each (%d threads): batch %.2f, forward+backward %.2f, "
                "optimizer and hooks %.2f\n",
                static_cast<long long>(r.steady_steps), total, num_threads(), batch, grad, update);
  out += line;
  // Where the threads wait: everything outside the parallel loops runs on the training thread (thread 0) alone.
  if (r.profile_thread_busy_ms.size() > 1) {
    std::snprintf(line, sizeof line,
                  "threads: %.2f ms of each step in parallel loops, %.2f ms outside them (thread 0 alone)\n",
                  r.profile_loop_ms, total - r.profile_loop_ms);
    out += line;
    for (std::size_t t = 0; t < r.profile_thread_busy_ms.size(); ++t) {
      const double busy = r.profile_thread_busy_ms[t];
      if (t == 0)
        std::snprintf(line, sizeof line, "  thread 0: runs chunks %.2f ms, waits for the others %.2f ms\n", busy,
                      r.profile_wait_ms);
      else
        std::snprintf(line, sizeof line, "  thread %zu: runs chunks %.2f ms, idle %.2f ms\n", t, busy, total - busy);
      out += line;
    }
  }
  std::snprintf(line, sizeof line, "  %-34s %-18s %9s %9s %9s %9s %7s\n", "node", "op", "fwd ms", "bwd ms",
                "serial", "waits", "share");
  out += line;
  constexpr std::size_t kShown = 15;
  double rest_f = 0, rest_b = 0, rest_s = 0, rest_w = 0;
  for (std::size_t i = 0; i < r.profile.size(); ++i) {
    const OpTime& t = r.profile[i];
    if (i >= kShown) {
      rest_f += t.forward_ms;
      rest_b += t.backward_ms;
      rest_s += t.serial_ms;
      rest_w += t.wait_ms;
      continue;
    }
    std::snprintf(line, sizeof line, "  %-34s %-18s %9.3f %9.3f %9.3f %9.3f %6.1f%%\n", t.node.c_str(),
                  t.op.c_str(), t.forward_ms, t.backward_ms, t.serial_ms, t.wait_ms,
                  total > 0 ? 100.0 * (t.forward_ms + t.backward_ms) / total : 0.0);
    out += line;
  }
  if (r.profile.size() > kShown) {
    const std::string more = "(" + std::to_string(r.profile.size() - kShown) + " more ops)";
    std::snprintf(line, sizeof line, "  %-34s %-18s %9.3f %9.3f %9.3f %9.3f %6.1f%%\n", more.c_str(), "", rest_f,
                  rest_b, rest_s, rest_w, total > 0 ? 100.0 * (rest_f + rest_b) / total : 0.0);
    out += line;
  }
  return out;
}

int run_train(int argc, char** argv) {
  Flags f(argc, argv, train_flag_specs());
  RunOptions ro = train_run_options(f);
  const TrainerOptions& so = ro.trainer;
  // Under mpirun (a build with the MPI layer): data parallel over the ranks; rank 0 alone prints and writes.
  Communicator& comm = process_communicator();
  const int ranks = comm.size();
  const bool lead = comm.rank() == 0;
  check_same_config(comm, ro.trainer.config);  // before any data is read
  // Started by mpirun as several processes, but this build has no MPI layer: every process would train alone on
  // all the data and write the same outputs. Refuse before anything is read or written.
  if (const int launched = launcher_process_count(); ranks == 1 && launched > 1)
    throw UsageError("started by an MPI launcher as one of " + std::to_string(launched) +
                     " processes, but this funnel was built without MPI (FUNNEL_MPI=OFF): each process would train "
                     "alone; rebuild with MPI (libopenmpi-dev) or run it without the launcher");
  StrategyOptions strategy;
  apply_options(strategy_option_table(), f, strategy);
  const std::int64_t check_every = strategy.check_every;
  const bool shard = f.has("shard-embeddings");
  // The parallelism strategy (train/strategy.hpp), by name: the MPI layer registers the distributed ones.
  // Sharded: the model never allocates the tables; each rank draws or reads only its rows.
  const std::string strategy_name = shard ? "row-sharded" : ranks > 1 || check_every > 0 ? "replicated" : "local";
  if (!has_strategy(strategy_name))
    throw UsageError(std::string(shard ? "--shard-embeddings" : "--check-replicas") +
                     " needs a build with MPI (FUNNEL_MPI)");
  // Every output target is checked (and the checkpoint directory locked) before any data is read.
  if (so.train.save_every > 0 && !f.has("save")) throw UsageError("--save-every needs --save DIR");
  std::vector<std::string> inputs = dataset_spec_inputs(ro.data.train);
  for (const auto& e : dataset_spec_inputs(ro.data.eval)) inputs.push_back(e);
  if (!so.init_dir.empty()) inputs.push_back(so.init_dir);
  if (!f.config_file().empty()) inputs.push_back(f.config_file());
  check_distinct_outputs(f, {"metrics-json", "plot"});
  if (f.has("plot") && f.str("plot", "").empty()) throw UsageError("--plot: needs a file name (FILE.svg)");
  // The checkpoint directory first (the lock creates it): --metrics-json and --plot may name files inside it.
  std::optional<CheckpointLock> save_lock;
  if (lead && f.has("save")) save_lock.emplace(f.str("save", ""));
  if (lead && f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs, "--metrics-json");
  if (lead && f.has("plot")) check_output_target(f.str("plot", ""), inputs, "--plot");
  LossHistory history;
  install_stop_signals();  // INT, TERM, HUP, PIPE: finish the step, save, exit non-zero

  set_threads(so.threads);
  // With sharded tables the Trainer's construction is collective: every rank draws or reads its rows.
  Trainer s(so, load_run_data(ro, f), make_strategy(strategy_name, comm, strategy));
  // The held-out chunks of a cache are checked (checksums, structure) now, not after a whole epoch of training.
  if (const auto& ev = s.data().eval_cache; ev)
    for (std::int64_t c = s.data().eval_chunk_begin; c < ev->num_chunks(); ++c) ev->verify_chunk(c);
  if (lead) {
    std::fprintf(stderr, "train: %s\n", s.data().train.description.c_str());
    if (s.data().has_eval) std::fprintf(stderr, "eval:  %s\n", s.data().eval_description.c_str());
    std::fprintf(stderr, "model: %s\n", s.model_description().c_str());
    if (!so.init_dir.empty())
      std::fprintf(stderr, "init:  resuming %s at step %lld (%s)%s\n", so.init_dir.c_str(),
                   static_cast<long long>(s.start_step()),
                   so.reset_optimizer ? "parameters only: the optimizer starts afresh"
                                      : "parameters and optimizer state",
                   so.train.max_steps > 0 ? (", this run trains at most " + std::to_string(so.train.max_steps) +
                                             " steps").c_str()
                                          : "");
    if (ranks > 1)
      std::fprintf(stderr, "mpi:   data parallel over %d ranks, global batch %lld (%lld rows per rank)\n", ranks,
                   static_cast<long long>(so.train.batch_size), static_cast<long long>(so.train.batch_size / ranks));
    if (shard)
      std::fprintf(stderr, "mpi:   embedding tables sharded by row over %d rank(s) (rank r owns rows ≡ r mod %d)\n",
                   ranks, ranks);
  }
  // A checkpoint, as the strategy writes it (every rank calls it: rank 0 writes; with sharded tables each table is
  // streamed from its owners). `epochs`: the epochs trained into the model (the manifest's "epoch").
  auto save = [&](std::int64_t step, std::int64_t epochs) { s.save(f.str("save", ""), step, epochs); };

  const std::int64_t start_step = s.start_step();
  const bool tty = ::isatty(2) && !f.has("quiet");
  TrainHooks hooks;
  hooks.stop = &stop_requested();
  std::int64_t last_print = 0;
  std::int64_t steps_done = start_step, epochs_begun = 0;  // for a save when training fails midway
  hooks.on_step = [&](const StepInfo& i) {
    steps_done = i.step;
    epochs_begun = i.epoch + 1;
    if (!lead) return;
    history.add(i.step, i.running_losses);
    const bool last = i.rows_done == i.rows_total;
    if (tty) {
      if (i.step % 5 != 0 && !last) return;
      double eta = i.rows_per_sec > 0 ? static_cast<double>(i.rows_total - i.rows_done) / i.rows_per_sec : 0.0;
      std::fprintf(stderr, "\repoch %lld  %5.1f%%  %9.0f rows/s  loss", static_cast<long long>(i.epoch + 1),
                   100.0 * static_cast<double>(i.rows_done) / static_cast<double>(i.rows_total), i.rows_per_sec);
      for (std::size_t k = 0; k < i.running_losses.size(); ++k)
        std::fprintf(stderr, " %s=%.5f", s.loss_name(k).c_str(), i.running_losses[k]);
      std::fprintf(stderr, "  ETA %4.0fs ", eta);
      if (last) std::fprintf(stderr, "\n");
    } else if (i.step - last_print >= 200 || last) {
      last_print = i.step;
      std::fprintf(stderr, "step %lld epoch %lld rows %lld/%lld %.0f rows/s loss", static_cast<long long>(i.step),
                   static_cast<long long>(i.epoch + 1), static_cast<long long>(i.rows_done),
                   static_cast<long long>(i.rows_total), i.rows_per_sec);
      for (std::size_t k = 0; k < i.running_losses.size(); ++k)
        std::fprintf(stderr, " %s=%.5f", s.loss_name(k).c_str(), i.running_losses[k]);
      std::fprintf(stderr, "\n");
    }
  };
  EvalProgressPrinter eval_progress(tty);
  hooks.on_eval_batch = [&](const EvalProgress& p) {
    if (lead) eval_progress(p);
  };
  if (so.train.save_every > 0) {
    hooks.save = [&](std::int64_t step, std::int64_t epoch) {
      save(step, s.start_epoch() + epoch + 1);  // the epoch in progress counts
    };
  }
  TrainResult res;
  try {
    res = s.train(hooks);
  } catch (const Error& e) {
    // Training failed after some steps (e.g. a damaged evaluation set found at the end of an epoch): in one
    // process the model trained so far is saved first, then the run fails.
    if (!f.has("save") || ranks > 1 || shard || steps_done <= start_step) throw;
    try {
      save(steps_done, s.start_epoch() + epochs_begun);
    } catch (const Error& se) {
      throw Error(std::string(e.what()) + " (the model trained so far could not be saved: " + se.what() + ")");
    }
    throw Error(std::string(e.what()) + " (the model trained so far, step " + std::to_string(steps_done) +
                ", was saved to " + f.str("save", "") + " first)");
  }
  if (!lead) {
    // The checkpoint is collective (e.g. rank 0 streams this rank's rows into it); rank 0 writes it.
    if (f.has("save")) save(res.steps, s.start_epoch() + static_cast<std::int64_t>(res.epochs.size()));
    finish_process_communicator();
    return res.stopped ? stop_exit_code() : 0;
  }
  const std::int64_t run_steps = res.steps - start_step;
  // The progress line a stop left open.
  if (res.stopped && res.stopped_in_eval) eval_progress.finish_line();
  else if (res.stopped && tty) std::fprintf(stderr, "\n");
  std::printf("%s", format_epochs(res, s).c_str());
  if (!res.profile.empty()) std::fprintf(stderr, "%s", format_profile(res).c_str());
  if (!so.init_dir.empty())
    std::fprintf(stderr, "this run: %lld steps (steps %lld..%lld of the model, resumed from %s)\n",
                 static_cast<long long>(run_steps), static_cast<long long>(start_step + (run_steps > 0 ? 1 : 0)),
                 static_cast<long long>(res.steps), so.init_dir.c_str());
  // The checkpoint first: a failing metrics write must not cost it.
  if (f.has("save")) {
    save(res.steps, s.start_epoch() + static_cast<std::int64_t>(res.epochs.size()));
    std::fprintf(stderr, "saved checkpoint %s (step %lld)\n", f.str("save", "").c_str(),
                 static_cast<long long>(res.steps));
  }
  int rc = 0;
  if (f.has("metrics-json")) {
    try {
      nlohmann::json mj = train_metrics_json(s, res, start_step);
      write_output_file(f.str("metrics-json", ""), mj.dump(2) + "\n", inputs, "--metrics-json");
      std::fprintf(stderr, "wrote %s\n", f.str("metrics-json", "").c_str());
    } catch (const Error& e) {
      std::fprintf(stderr, "funnel train: error: %s%s\n", e.what(), f.has("save") ? " (the checkpoint was saved)" : "");
      rc = 1;
    }
  }
  if (f.has("plot")) {
    try {
      std::vector<std::string> names;
      for (std::size_t k = 0; k < s.model().handle().losses.size(); ++k) names.push_back(s.loss_name(k));
      const std::string title = "funnel train: " + s.model_description();
      write_output_file(f.str("plot", ""), plot::to_svg(train_figure(title, names, history, res)), inputs, "--plot");
      std::fprintf(stderr, "wrote %s\n", f.str("plot", "").c_str());
    } catch (const Error& e) {
      std::fprintf(stderr, "funnel train: error: %s%s\n", e.what(), f.has("save") ? " (the checkpoint was saved)" : "");
      rc = 1;
    }
  }
  finish_process_communicator();
  if (res.stopped) {
    if (res.stopped_in_eval)
      std::fprintf(stderr, "train: interrupted by signal %d during the evaluation after step %lld, no metrics for that "
                   "epoch%s\n", stop_signal(), static_cast<long long>(res.steps),
                   f.has("save") ? " (checkpoint saved)" : "");
    else
      std::fprintf(stderr, "train: interrupted by signal %d at step %lld%s\n", stop_signal(),
                   static_cast<long long>(res.steps), f.has("save") ? " (checkpoint saved)" : "");
    return stop_exit_code();
  }
  return rc;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(train, "train", "train a model (any of `funnel models`) and report its metrics",
               funnel::cli::run_train);
