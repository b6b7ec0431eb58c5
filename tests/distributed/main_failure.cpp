// dp_failure MODE: data-parallel training in which the last rank misbehaves at step 3, to show that the job ends
// with an error in bounded time (tests/distributed/failure.sh checks exit status, time and messages).
//   die   the last rank exits abruptly (_exit(3), no MPI_Finalize), as a crash or a killed process would
//   hang  the last rank stops making progress (sleeps); the others' collective watchdog ends them
//   nan   the last rank's forward pass produces NaN; every rank stops with the node's name
//   term  the last rank gets SIGTERM; every rank stops after the same step and exits 0
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <limits>

#include "data/synthetic.hpp"
#include "distributed/data_parallel.hpp"

using namespace funnel;

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_term(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: dp_failure die|hang|nan|term\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto& w = dist::world();
  const bool last = w.rank() == w.size() - 1;
  struct sigaction sa {};
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    SyntheticConfig sc;
    sc.rows = 2000;
    sc.fields = 4;
    sc.vocab_per_field = 30;
    Dataset d = make_synthetic(sc);
    ModelConfig mc;
    mc.num_fields = d.num_fields;
    mc.vocab = d.vocab;
    mc.dim = 4;
    mc.hidden = {8, 4};
    Model m(mc);
    m.exec().init_params(1);
    auto opt = make_optimizer<float>("adam", OptimizerConfig{});
    dist::DataParallel dp(w, m);
    TrainOptions o;
    o.batch_size = 32;
    o.max_steps = 40;
    TrainHooks hooks;
    hooks.stop = &g_stop;
    hooks.on_step = [&](const StepInfo& i) {
      if (i.step != 3 || !last) return;
      if (mode == "die") _exit(3);
      if (mode == "hang")
        for (;;) pause();
      if (mode == "term") std::raise(SIGTERM);
      if (mode == "nan")
        for (NodeId p : m.exec().params())
          if (!m.exec().is_sparse(p)) {
            m.exec().param(p).data()[0] = std::numeric_limits<float>::quiet_NaN();
            break;
          }
    };
    TrainResult r = dist::train_data_parallel(dp, m, *opt, d, nullptr, o, hooks);
    std::printf("rank %d: %s at step %lld\n", w.rank(), r.stopped ? "stopped" : "finished",
                static_cast<long long>(r.steps));
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dp_failure: rank %d: error: %s\n", w.rank(), e.what());
    std::fflush(stderr);
    return 1;
  }
  dist::finalize_world();
  return 0;
}
