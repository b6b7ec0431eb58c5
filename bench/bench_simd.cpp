// funnel's own SIMD kernels (core/simd.hpp) on Ali-CCP's shapes, once per instruction set this CPU runs, so the
// variants can be compared in one binary:
//
//   simd/<isa>/embedding_pool/B:1024     pooling 1024 rows × 23 fields of bags of 10.6 ids (~244 ids a row) from a
//                                        1,507,328 × 18 table (skewed ids: a few hot rows, a long tail)
//   simd/<isa>/embedding_scatter/B:1024  the backward's accumulation of those ids' gradients into their rows' slots
//   simd/<isa>/adam_rows/B:1024          sparse Adam over the distinct rows those ids touch (p, m, v: 3 × 108 MB)
//   simd/<isa>/adam_layout/{separate,interleaved}/B:1024
//                                        the same update row by row with p, m, v in three arrays (as the parameter
//                                        store keeps them) or side by side in one (a layout experiment)
//
// The pooling and Adam cases cycle through eight such batches, so their rows come from memory, not from a cache
// the previous iteration warmed.
// <isa> is generic, avx2, avx512 (those the CPU supports). One thread; items/s counts ids (pool, scatter) or rows.
//   build/bin/funnel-bench --benchmark_filter='^simd/'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "bench/op_cases.hpp"
#include "core/simd.hpp"
#include "ops/embedding_kernels.hpp"
#include "train/optimizer_kernels.hpp"

namespace {

using namespace funnel;
using namespace funnel::bench;

// Eight batches of Ali-CCP-shaped bags over the full table (the cases cycle through them, so rows come from memory
// as in training rather than from a cache warmed by the previous iteration), each with its touched rows and their
// slots; built once.
struct AliBatches {
  static constexpr std::size_t kRows = 1024, D = 18, kBatches = 8;
  std::size_t V = static_cast<std::size_t>(kAliVocab);
  std::vector<float> table, m, v, pmv;  // pmv: p, m and v of each row side by side (3·D floats a row)
  struct Batch {
    std::vector<std::int64_t> off{0}, ids, touched;
    std::vector<float> weights, y, gy, values;
    std::vector<std::int32_t> slot;
  };
  std::vector<Batch> b;

  static AliBatches& get() {
    static AliBatches a;
    return a;
  }
  AliBatches() : b(kBatches) {
    std::mt19937_64 rng(7);
    std::normal_distribution<float> nd(0.0f, 0.05f);
    table.resize(V * D);
    for (float& x : table) x = nd(rng);
    m.assign(V * D, 0.0f);
    v.assign(V * D, 0.0f);
    pmv.assign(3 * V * D, 0.0f);
    std::poisson_distribution<int> extra(kAliMeanBag - 1.0);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const std::size_t per_field = V / static_cast<std::size_t>(kAliFields);
    std::vector<std::int32_t> slot_of_row(V, -1);
    for (Batch& bt : b) {
      for (std::size_t r = 0; r < kRows; ++r)
        for (std::int64_t f = 0; f < kAliFields; ++f) {
          for (int j = 1 + extra(rng); j > 0; --j) {
            const double x = u(rng);
            const auto within = std::min(per_field - 1, static_cast<std::size_t>(static_cast<double>(per_field) * x * x * x));
            bt.ids.push_back(static_cast<std::int64_t>(static_cast<std::size_t>(f) * per_field + within));
            bt.weights.push_back(1.0f);
          }
          bt.off.push_back(static_cast<std::int64_t>(bt.ids.size()));
        }
      bt.slot.resize(bt.ids.size());
      for (std::size_t k = 0; k < bt.ids.size(); ++k) {
        std::int32_t& s = slot_of_row[static_cast<std::size_t>(bt.ids[k])];
        if (s < 0) {
          s = static_cast<std::int32_t>(bt.touched.size());
          bt.touched.push_back(bt.ids[k]);
        }
        bt.slot[k] = s;
      }
      for (std::int64_t row : bt.touched) slot_of_row[static_cast<std::size_t>(row)] = -1;
      bt.y.assign((bt.off.size() - 1) * D, 0.0f);
      bt.gy.resize(bt.y.size());
      for (float& x : bt.gy) x = nd(rng);
      bt.values.resize(bt.touched.size() * D);
      for (float& x : bt.values) x = nd(rng);
    }
  }
};

void bm_pool(benchmark::State& st, SimdIsa isa) {
  AliBatches& a = AliBatches::get();
  const EmbeddingKernels& k = embedding_kernels(isa);
  std::size_t i = 0, ids = 0;
  for (auto _ : st) {
    AliBatches::Batch& b = a.b[i++ % AliBatches::kBatches];
    const EmbeddingPoolArgs args{b.y.data(), a.table.data(), AliBatches::D, b.off.data(), b.ids.data(),
                                 b.weights.data(), b.ids.size(), false};
    k.pool(args, 0, b.off.size() - 1);
    benchmark::DoNotOptimize(b.y.data());
    ids += b.ids.size();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(ids));
}

void bm_scatter(benchmark::State& st, SimdIsa isa) {
  AliBatches::Batch& b = AliBatches::get().b[0];
  const EmbeddingKernels& k = embedding_kernels(isa);
  const EmbeddingScatterArgs a{b.values.data(), AliBatches::D, b.gy.data(), b.off.data(), b.slot.data(),
                               b.weights.data(), b.off.size() - 1, false};
  for (auto _ : st) {
    k.scatter(a, 0, static_cast<std::int64_t>(b.touched.size()));
    benchmark::DoNotOptimize(b.values.data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(b.ids.size()));
}

const AdamStepF kAdam{0.9f, 0.999f, 0.1f, 0.001f, 0.002f, 1.0f, 1e-8f, 0.0f};

void bm_adam_rows(benchmark::State& st, SimdIsa isa) {
  AliBatches& a = AliBatches::get();
  const OptimizerKernels& k = optimizer_kernels(isa);
  std::size_t i = 0, rows = 0;
  for (auto _ : st) {
    AliBatches::Batch& b = a.b[i++ % AliBatches::kBatches];
    k.adam_rows(a.table.data(), b.values.data(), b.touched.data(), b.touched.size(), AliBatches::D, a.m.data(),
                a.v.data(), kAdam);
    benchmark::DoNotOptimize(a.table.data());
    rows += b.touched.size();
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(rows));
  st.counters["rows/step"] = static_cast<double>(rows) / static_cast<double>(st.iterations());
}

// What an interleaved layout would give: the same update with each row's p, m and v side by side (one block of
// 3·18 floats, 216 bytes) instead of three arrays; prefetched the same distance ahead, the dense kernel per row.
// `interleaved` false runs the identical loop on the three separate arrays, for a like-for-like comparison.
void bm_adam_layout(benchmark::State& st, SimdIsa isa, bool interleaved) {
  AliBatches& a = AliBatches::get();
  const OptimizerKernels& k = optimizer_kernels(isa);
  constexpr std::size_t D = AliBatches::D, kAhead = 8;
  std::size_t i = 0, rows = 0;
  for (auto _ : st) {
    AliBatches::Batch& b = a.b[i++ % AliBatches::kBatches];
    const std::size_t n = b.touched.size();
    for (std::size_t r = 0; r < n; ++r) {
      if (r + kAhead < n) {
        const std::size_t row = static_cast<std::size_t>(b.touched[r + kAhead]);
        if (interleaved) {
          const float* q = a.pmv.data() + row * 3 * D;
          for (std::size_t line = 0; line < 3 * D * sizeof(float); line += 64) __builtin_prefetch(q + line / 4, 1);
          __builtin_prefetch(q + 3 * D - 1, 1);
        } else {
          for (float* base : {a.table.data(), a.m.data(), a.v.data()}) {
            __builtin_prefetch(base + row * D, 1);
            __builtin_prefetch(base + row * D + D - 1, 1);
          }
        }
      }
      const std::size_t row = static_cast<std::size_t>(b.touched[r]);
      if (interleaved) {
        float* q = a.pmv.data() + row * 3 * D;
        k.adam(q, b.values.data() + r * D, q + D, q + 2 * D, D, kAdam);
      } else {
        k.adam(a.table.data() + row * D, b.values.data() + r * D, a.m.data() + row * D, a.v.data() + row * D, D,
               kAdam);
      }
    }
    benchmark::DoNotOptimize(a.pmv.data());
    rows += n;
  }
  st.SetItemsProcessed(static_cast<std::int64_t>(rows));
}

[[maybe_unused]] const bool registered = [] {
  for (SimdIsa isa : {SimdIsa::generic, SimdIsa::avx2, SimdIsa::avx512}) {
    if (!simd_isa_supported(isa)) continue;
    const std::string p = std::string("simd/") + simd_isa_name(isa) + "/";
    benchmark::RegisterBenchmark((p + "embedding_pool/B:1024").c_str(), bm_pool, isa)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark((p + "embedding_scatter/B:1024").c_str(), bm_scatter, isa)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark((p + "adam_rows/B:1024").c_str(), bm_adam_rows, isa)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark((p + "adam_layout/separate/B:1024").c_str(), bm_adam_layout, isa, false)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
    benchmark::RegisterBenchmark((p + "adam_layout/interleaved/B:1024").c_str(), bm_adam_layout, isa, true)
        ->Unit(benchmark::kMicrosecond)->UseRealTime();
  }
  return true;
}();

}  // namespace
