// funnel-stream-bench: one training run of ESMM on a v3 cache through the training loop (train/loop.hpp), streamed
// (CacheSource: the prefetching reader) or in memory (the whole cache decoded into a Dataset first), printing one JSON line with the throughput. Used by
// tools/stream_bench.py, which samples the process's memory from /proc.
//   funnel-stream-bench --cache FILE [--mode stream|memory] [--batch-size 1024] [--epochs 1] [--max-steps 0]
//                       [--threads 1] [--shuffle-window 262144] [--prefetch 4] [--no-shuffle] [--seed 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "core/parallel.hpp"
#include "data/readers.hpp"
#include "data/stream.hpp"
#include "data/stream_cache.hpp"
#include "train/batch_source.hpp"
#include "train/loop.hpp"

int main(int argc, char** argv) {
  std::string cache, mode = "stream";
  long long batch = 1024, epochs = 1, max_steps = 0, threads = 1, window = 1 << 18, prefetch = 4, seed = 1;
  bool shuffle = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-shuffle") {
      shuffle = false;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "funnel-stream-bench: %s needs a value\n", a.c_str());
      return 2;
    }
    const char* v = argv[++i];
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    const bool num_ok = end && *end == 0 && n >= 0;
    if (a == "--cache") cache = v;
    else if (a == "--mode") mode = v;
    else if (num_ok && a == "--batch-size" && n > 0) batch = n;
    else if (num_ok && a == "--epochs" && n > 0) epochs = n;
    else if (num_ok && a == "--max-steps") max_steps = n;
    else if (num_ok && a == "--threads" && n > 0) threads = n;
    else if (num_ok && a == "--shuffle-window" && n > 0) window = n;
    else if (num_ok && a == "--prefetch" && n > 0) prefetch = n;
    else if (num_ok && a == "--seed") seed = n;
    else {
      std::fprintf(stderr, "funnel-stream-bench: bad flag or value: %s %s\n", a.c_str(), v);
      return 2;
    }
  }
  if (cache.empty() || (mode != "stream" && mode != "memory")) {
    std::fprintf(stderr, "usage: funnel-stream-bench --cache FILE [--mode stream|memory] ...\n");
    return 2;
  }
  try {
    funnel::set_num_threads(static_cast<int>(threads));
    const funnel::CacheFile f(cache);
    funnel::ModelConfig mc;
    mc.num_fields = f.num_fields();
    mc.vocab = f.vocab();
    mc.num_dense = f.num_dense();
    funnel::Model m(mc);
    m.params().init(static_cast<std::uint64_t>(seed));
    funnel::OptimizerConfig oc;
    oc.lr = 0.002;
    auto opt = funnel::make_optimizer<float>("adam", oc);
    funnel::TrainOptions o;
    o.epochs = epochs;
    o.batch_size = batch;
    o.max_steps = max_steps;
    o.seed = static_cast<std::uint64_t>(seed);
    o.shuffle = shuffle;
    const auto t0 = std::chrono::steady_clock::now();
    funnel::TrainResult r;
    double wait = 0;
    if (mode == "stream") {
      funnel::StreamOptions so;
      so.batch_size = batch;
      so.shuffle = shuffle;
      so.shuffle_window = window;
      so.prefetch = prefetch;
      so.seed = static_cast<std::uint64_t>(seed);
      funnel::CacheSource src({&f}, so);
      r = funnel::train(m, *opt, src, {}, o, {});
      wait = src.stream().wait_seconds();
    } else {
      funnel::FeatureMap map;
      const funnel::Dataset d = funnel::read_cache(cache, map);
      r = funnel::train(m, *opt, d, nullptr, o, {});
    }
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double rows = 0, train_sec = 0;
    for (const auto& e : r.epochs) {
      const double er = std::min<double>(static_cast<double>(e.steps * batch), static_cast<double>(f.rows()));
      rows += er;
      if (e.samples_per_sec > 0) train_sec += er / e.samples_per_sec;
    }
    std::printf("{\"mode\": \"%s\", \"rows\": %lld, \"cache_rows\": %lld, \"steps\": %lld, \"seconds\": %.3f, "
                "\"loop_rows_per_sec\": %.1f, \"reader_wait_seconds\": %.3f, \"loss0\": %.6f}\n",
                mode.c_str(), static_cast<long long>(rows), static_cast<long long>(f.rows()),
                static_cast<long long>(r.steps), sec, train_sec > 0 ? rows / train_sec : 0.0, wait,
                r.epochs.empty() ? 0.0 : r.epochs.back().mean_losses.at(0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel-stream-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
