// Does fusing bias and ReLU into the gemm (as oneDNN post-ops) pay on this machine?
//
//   fused_dense/B:<b>/<K>x<N>   a dense layer's forward, h = relu(x·W + b), two ways in one loop, one thread:
//       separate:  funnel's way: dnnl_sgemm (the onednn backend's call) into z, then the registry's bias_add and
//                  relu ops (two more passes over the B×N output);
//       fused:     a oneDNN matmul primitive made once for this shape, with the bias as its bias input and ReLU as
//                  an eltwise post-op: one call, the output written once.
//   Counters: each one's µs per forward and fused/separate (< 1: fusion pays).
// Only built with oneDNN. The backward is the same either way (ReLU's mask from h, then the bias and the gemms),
// so only the forward is timed.
#ifdef FUNNEL_BENCH_ONEDNN
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <dnnl.hpp>
#include <omp.h>

#include "bench/op_cases.hpp"
#include "ops/gemm_backend.hpp"

namespace {

using namespace funnel;
using namespace funnel::bench;

void bm_fused_dense(benchmark::State& st, std::int64_t b, Layer l) {
  set_gemm_backend(GemmBackend::onednn);
  omp_set_num_threads(1);
  const int m = static_cast<int>(b), k = static_cast<int>(l.k), n = static_cast<int>(l.n);
  Buffers d(b, l.k, l.n);  // x, W, the bias b; z for the separate gemm's output

  // Separate: the raw gemm, then the bias_add and relu ops of the registry on their own buffers (same work per
  // op as in a chained layer).
  using IS = InputSpec;
  OpRun bias_op(OpCase{"bias_add", "", {IS::value({kBatch, l.n}), IS::value({l.n})}, {}, nullptr, nullptr}, b);
  OpRun relu_op(OpCase{"relu", "", {IS::value({kBatch, l.n})}, {}, nullptr, nullptr}, b);

  // Fused: a matmul primitive with bias and a ReLU post-op, made once.
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc xd({m, k}, dt::f32, tag::ab), wd({k, n}, dt::f32, tag::ab), bd({1, n}, dt::f32, tag::ab),
      hd({m, n}, dt::f32, tag::ab);
  dnnl::post_ops po;
  po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(po);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(xd, wd, bd, hd), attr, eng);
  dnnl::matmul mm(pd);
  std::vector<float> h(static_cast<std::size_t>(m) * n);
  dnnl::memory xm(xd, eng, const_cast<float*>(d.x.data())), wm(wd, eng, const_cast<float*>(d.w.data())),
      bm(bd, eng, const_cast<float*>(d.b.data())), hm(hd, eng, h.data());
  const std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, hm}};

  double t_sep = 0, t_fused = 0;
  for (auto _ : st) {
    auto t0 = Clock::now();
    sgemm_one_thread(false, false, m, n, k, 1.0f, d.x.data(), k, d.w.data(), n, 0.0f, d.z.data(), n);
    bias_op.forward();
    relu_op.forward();
    t_sep += seconds_since(t0);
    t0 = Clock::now();
    mm.execute(strm, args);
    strm.wait();
    t_fused += seconds_since(t0);
    benchmark::ClobberMemory();
  }
  // The two give the same h (checked once, so a wrong primitive setup cannot pass as fast).
  sgemm_one_thread(false, false, m, n, k, 1.0f, d.x.data(), k, d.w.data(), n, 0.0f, d.z.data(), n);
  double worst = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      const float ref = std::max(0.0f, d.z[static_cast<std::size_t>(i) * n + j] + d.b[static_cast<std::size_t>(j)]);
      worst = std::max(worst, static_cast<double>(std::abs(ref - h[static_cast<std::size_t>(i) * n + j])));
    }
  if (worst > 1e-3) st.SkipWithError(("fused output differs from the separate one by " + std::to_string(worst)).c_str());
  const double it = static_cast<double>(st.iterations());
  st.counters["separate_us"] = 1e6 * t_sep / it;
  st.counters["fused_us"] = 1e6 * t_fused / it;
  st.counters["fused/separate"] = t_fused / t_sep;
}

[[maybe_unused]] const bool registered = [] {
  if (!onednn_available()) return false;
  for (std::int64_t b : kBatches)
    for (const Layer& l : esmm_layers()) {
      if (l.n == 1) continue;  // the logit layer has no ReLU
      const std::string name = "fused_dense/B:" + std::to_string(b) + "/" + std::to_string(l.k) + "x" +
                               std::to_string(l.n);
      benchmark::RegisterBenchmark(name.c_str(), [b, l](benchmark::State& st) { bm_fused_dense(st, b, l); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  return true;
}();

}  // namespace
#endif  // FUNNEL_BENCH_ONEDNN
