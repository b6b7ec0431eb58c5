// funnel-dp-bench: times data-parallel ESMM training on synthetic data and measures what each step communicates.
// Run it alone (one process) or under mpirun; rank 0 prints one JSON line:
//   mpirun -np 2 build/bin/funnel-dp-bench --steps 200 --threads 1
// Flags: --rows N --fields F --vocab V (per field) --dim D --batch B --steps S --warmup W --threads T
//        --optimizer adam|sgd|adagrad --seed S --replicated-optimizer 0|1 (1: every rank runs the whole optimizer
//        step on all-reduced gradients instead of its slice; default 0, the sharded optimizer)
//        --shard 0|1 (1: row-sharded embedding tables, --shard-embeddings)
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "core/parallel.hpp"
#include "data/synthetic.hpp"
#include "distributed/data_parallel.hpp"
#include "distributed/sharded_embedding.hpp"

using namespace funnel;

namespace {
long long flag(int argc, char** argv, const char* name, long long def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i + 1], &end, 10);
      if (end == argv[i + 1] || *end != '\0' || v < 0) {
        std::fprintf(stderr, "funnel-dp-bench: %s expects a non-negative integer, got '%s'\n", name, argv[i + 1]);
        std::exit(2);
      }
      return v;
    }
  return def;
}
std::string sflag(int argc, char** argv, const char* name, const char* def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}
// [shard hook] VmRSS of this process in MB (0 where /proc is missing).
double rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0.0;
  char line[256];
  double kb = 0.0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::strtod(line + 6, nullptr);
  std::fclose(f);
  return kb / 1024.0;
}
}  // namespace

int main(int argc, char** argv) {
  auto& w = dist::world();
  try {
    SyntheticConfig sc;
    sc.rows = flag(argc, argv, "--rows", 200000);
    sc.fields = flag(argc, argv, "--fields", 20);
    sc.vocab_per_field = flag(argc, argv, "--vocab", 5000);
    sc.seed = static_cast<std::uint64_t>(flag(argc, argv, "--seed", 1));
    const std::int64_t batch = flag(argc, argv, "--batch", 1024);
    const std::int64_t steps = flag(argc, argv, "--steps", 200);
    const std::int64_t warmup = flag(argc, argv, "--warmup", 20);
    const int threads = static_cast<int>(flag(argc, argv, "--threads", 1));
    set_num_threads(threads < 1 ? 1 : threads);
    Dataset d = make_synthetic(sc);

    ModelConfig mc;
    mc.num_fields = d.num_fields;
    mc.vocab = d.vocab;
    mc.dim = flag(argc, argv, "--dim", 18);
    Model m(mc);
    m.params().init(sc.seed);
    OptimizerConfig oc;
    oc.lr = 0.001;
    auto opt = make_optimizer<float>(sflag(argc, argv, "--optimizer", "adam"), oc);
    const bool replicated = flag(argc, argv, "--replicated-optimizer", 0) != 0;
    dist::DataParallel dp(w, m, dist::DataParallelOptions{.shard_optimizer = !replicated});
    // [shard hook] --shard 1: the tables row-sharded (ids and rows by all-to-all, gradients to their owners).
    std::unique_ptr<dist::ShardedEmbeddings> se;
    if (flag(argc, argv, "--shard", 0) != 0) se = std::make_unique<dist::ShardedEmbeddings>(w, m, *opt);
    auto run = [&](const TrainOptions& to, std::int64_t start) {
      if (se) dist::train_sharded(dp, *se, m, *opt, d, nullptr, to, TrainHooks{}, start);
      else dist::train_data_parallel(dp, m, *opt, d, nullptr, to, TrainHooks{}, start);
    };

    TrainOptions o;
    o.batch_size = batch;
    o.epochs = 1000000;
    o.max_steps = warmup;
    o.seed = sc.seed;
    if (warmup > 0) run(o, 0);
    const auto s0 = dp.stats();
    const dist::ShardBytes sh0 = se ? se->train_bytes() : dist::ShardBytes{};
    const std::uint64_t b0 = w.bytes_sent();
    w.barrier();
    auto process_cpu = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    };
    const double cpu0 = process_cpu();
    const auto t0 = std::chrono::steady_clock::now();
    o.max_steps = warmup + steps;
    run(o, warmup);
    w.barrier();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = process_cpu() - cpu0;
    const auto& s1 = dp.stats();
    const double n = static_cast<double>(s1.steps - s0.steps);
    nlohmann::json j{{"ranks", w.size()},
                     {"threads", threads},
                     {"batch", batch},
                     {"steps", s1.steps - s0.steps},
                     {"seconds", sec},
                     {"rows_per_sec", n * static_cast<double>(batch) / sec},
                     {"step_ms", 1e3 * sec / n},
                     {"compute_ms", 1e3 * (s1.compute_seconds - s0.compute_seconds) / n},
                     {"comm_ms", 1e3 * (s1.comm_seconds - s0.comm_seconds) / n},
                     {"wait_ms", 1e3 * (s1.wait_seconds - s0.wait_seconds) / n},
                     {"sparse_comm_ms", 1e3 * (s1.sparse_seconds - s0.sparse_seconds) / n},
                     {"compute_cpu_ms", 1e3 * (s1.compute_cpu_seconds - s0.compute_cpu_seconds) / n},
                     {"optimizer_ms", 1e3 * (s1.optimizer_seconds - s0.optimizer_seconds) / n},
                     {"optimizer_cpu_ms", 1e3 * (s1.optimizer_cpu_seconds - s0.optimizer_cpu_seconds) / n},
                     {"optimizer_dense_cpu_ms",
                      1e3 * (s1.optimizer_dense_cpu_seconds - s0.optimizer_dense_cpu_seconds) / n},
                     {"optimizer_sparse_cpu_ms",
                      1e3 * (s1.optimizer_sparse_cpu_seconds - s0.optimizer_sparse_cpu_seconds) / n},
                     {"optimizer_elements_per_step",
                      static_cast<double>(s1.optimizer_elements - s0.optimizer_elements) / n},
                     {"dense_elements", dp.reducer().dense_elements()},
                     {"sharded_optimizer", !replicated},
                     {"process_cpu_ms", 1e3 * cpu / n},
                     {"dense_bytes_per_step", static_cast<double>(s1.dense_bytes - s0.dense_bytes) / n},
                     {"sparse_bytes_per_step", static_cast<double>(s1.sparse_bytes - s0.sparse_bytes) / n},
                     {"sparse_rows_per_step", static_cast<double>(s1.sparse_rows - s0.sparse_rows) / n},
                     {"merged_rows_per_step", static_cast<double>(s1.merged_rows - s0.merged_rows) / n},
                     {"all_bytes_per_step", static_cast<double>(w.bytes_sent() - b0) / n},
                     {"params_hash", dp.param_hash()}};
    j["rss_mb"] = rss_mb();  // [shard hook] resident memory of this rank at the end
    if (se) {  // [shard hook] this rank's all-to-all payload to the other ranks, per step
      const dist::ShardBytes sh = se->train_bytes();
      j["shard_counts_bytes_per_step"] = static_cast<double>(sh.counts - sh0.counts) / n;
      j["shard_ids_bytes_per_step"] = static_cast<double>(sh.ids - sh0.ids) / n;
      j["shard_rows_bytes_per_step"] = static_cast<double>(sh.rows - sh0.rows) / n;
      j["shard_grad_bytes_per_step"] = static_cast<double>(sh.grads - sh0.grads) / n;
      j["shard_state_values"] = se->state_elements();
    }
    if (w.rank() == 0) std::printf("%s\n", j.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel-dp-bench: rank %d: error: %s\n", w.rank(), e.what());
    std::fflush(stderr);
    return 1;  // no MPI_Finalize: mpirun ends the other ranks
  }
  dist::finalize_world();
  return 0;
}
