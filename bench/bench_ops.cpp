// Op, BLAS and training-step benchmarks on ESMM's shapes (20 fields × dim 18 -> 360 -> 200 -> 80 -> 1, embedding
// 100,000 × 18, batch 128 and 1024).
//
//   op/<op>/<input shapes>/B:<b>/{fwd,bwd}   every op of the registry, alone (bench/op_cases.hpp), with bytes/s
//                                            (and FLOP/s for matmul). The list is made from the registry itself: an
//                                            op without a case shows up as op/<op>/NO_CASE with an error. Ops with a
//                                            sparse gradient also get /fwd+bwd: both passes as a training step runs
//                                            them (the forward lays out the gradient rows).
//   sgemm/<be>/<p>/B:<b>/<K>x<N>/{fwd,dx,dw} one raw single-thread call of backend <be> (openblas: cblas_sgemm,
//                                            onednn: dnnl_sgemm) in precision <p> with the dense layer's three gemms
//                                            (bf16: W rounded once beforehand, as a step does; X, dY per call)
//   dense_vs_sgemm/<be>/<p>/B:<b>/<K>x<N>    in one loop, all on backend <be> and precision <p>: the three raw
//                                            gemms, the matmul op forward+backward and the whole dense layer (matmul
//                                            + bias_add + relu, forward+backward); counters give each one's time and
//                                            the ratios to raw sgemm of the same backend and precision, measured side
//                                            by side (bf16: each of the three includes W's one rounding per step;
//                                            matmul_per_call_us is the matmul op rounding W in every gemm call, as
//                                            before weights were rounded once per step)
//   esmm_step/<be>/<p>/B:<b>                 one ESMM training step as `funnel train` runs it: batch gathering,
//                                            forward, both losses, backward, Adam (lazy sparse rows for the
//                                            embedding); samples/s, GFLOP/s and the time of the step's gemms alone
//                                            (gemm_frac = gemm time / step time, the fraction of the gemm bound),
//                                            both in precision <p>
//   aliccp_step/<be>/<p>/B:<b>               the same step on Ali-CCP-shaped rows: 23 fields, bags of 10.6 ids on
//                                            average (~244 ids a row), 1,507,328 × 18 table
//   op/embedding/...aliccp_bags=10.6...      the pooled lookup alone at those bag sizes
//
// <be> is each float gemm backend of the build (ops/gemm_backend.hpp): openblas, and onednn when linked. <p> is the
// gemm input precision (--precision): fp32, or bf16 (inputs rounded to bfloat16, fp32 sums): native (oneDNN's bf16
// gemm) on the onednn backend when the CPU has AVX512_BF16, else emulated (rounding on top of the fp32 gemm);
// FUNNEL_BF16=emulated forces the emulation. The run's context (header, JSON "context") names each path's
// implementation and the CPU's flags.
// Threads: FUNNEL_BENCH_THREADS (default 1) goes to funnel::set_num_threads (the raw sgemm cases stay one BLAS
// call on one thread; esmm_step's gemm_us splits its gemms over the threads like the matmul op).
//   build/bin/funnel-bench --benchmark_filter='dense_vs_sgemm|esmm_step'
//   build/bin/funnel-bench --benchmark_out=bench.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/op_cases.hpp"
#include "core/parallel.hpp"
#include "core/simd.hpp"
#include "ops/blas.hpp"
#include "ops/gemm_backend.hpp"
#include "data/synthetic.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

namespace {

using namespace funnel;
using namespace funnel::bench;


// ---------------------------------------------------------------- single ops

// What a case times: the forward alone, the backward alone (after one forward), or both as a training step runs
// them (for ops with a sparse gradient, whose forward then lays out the gradient rows).
enum class Pass { Fwd, Bwd, Train };

void run_op(benchmark::State& st, const OpCase& oc, std::int64_t b, Pass pass) {
  OpRun r(oc, b);
  r.forward();
  if (pass != Pass::Fwd) r.backward();
  for (auto _ : st) {
    if (pass == Pass::Bwd) r.backward();
    else if (pass == Pass::Fwd) r.forward();
    else r.forward_backward();
    benchmark::ClobberMemory();
  }
  const bool backward = pass != Pass::Fwd;
  const double bytes = pass == Pass::Train ? r.fwd_bytes() + r.bwd_bytes() : backward ? r.bwd_bytes() : r.fwd_bytes();
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes * static_cast<double>(st.iterations())));
  st.SetItemsProcessed(st.iterations() * b);  // rows
  const auto& fl = backward ? oc.bwd_flops : oc.fwd_flops;
  if (fl && pass != Pass::Train)
    st.counters["FLOP/s"] = benchmark::Counter(fl(b), benchmark::Counter::kIsIterationInvariantRate);
}

void register_ops() {
  const auto cases = op_cases();
  for (const std::string& name : op_names()) {
    bool any = false;
    for (const OpCase& oc : cases) {
      if (oc.op != name) continue;
      any = true;
      const bool sparse = oc.has_sparse();
      for (std::int64_t b : kBatches)
        for (Pass pass : {Pass::Fwd, Pass::Bwd, Pass::Train}) {
          if (pass == Pass::Train && !sparse) continue;
          const char* tail = pass == Pass::Fwd ? "/fwd" : pass == Pass::Bwd ? "/bwd" : "/fwd+bwd";
          benchmark::RegisterBenchmark(("op/" + name + "/" + oc.label + "/B:" + std::to_string(b) + tail).c_str(),
                                       [oc, b, pass](benchmark::State& st) { run_op(st, oc, b, pass); })
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.2);
        }
    }
    if (!any)
      benchmark::RegisterBenchmark(("op/" + name + "/NO_CASE").c_str(), [name](benchmark::State& st) {
        st.SkipWithError(("op '" + name + "' has no benchmark case in bench/op_cases.hpp").c_str());
        for (auto _ : st) {
        }
      });
  }
}

// ---------------------------------------------------------------- sgemm and the dense layer

std::vector<GemmBackend> backends() {
  std::vector<GemmBackend> v{GemmBackend::openblas};
  if (onednn_available()) v.push_back(GemmBackend::onednn);
  return v;
}

// The three gemms of a dense layer's forward and backward, row-major like ops/matmul.cpp, on the current backend:
// one raw single-thread call each, or (split) through blas::gemm, which cuts them over the thread pool like the
// matmul op.
void gemm(bool split, bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
          float* c, int ldc, Bf16Ready ready = {}) {
  if (split)
    blas::gemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, ready);
  else
    sgemm_one_thread(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc, ready);
}
// W as the gemms read it: in bf16 its copy rounded by round_w() (once per step, like the executor), else itself.
const float* weight(const Buffers& d) { return gemm_precision() == GemmPrecision::bf16 ? d.w16.data() : d.w.data(); }
Bf16Ready w_ready() { return Bf16Ready{.a = false, .b = gemm_precision() == GemmPrecision::bf16}; }
void round_w(Buffers& d) {
  if (gemm_precision() == GemmPrecision::bf16) round_weights_bf16(d.w.data(), d.w.size(), d.w16.data());
}
void gemm_fwd(Buffers& d, int m, int k, int n, bool split = false) {
  gemm(split, false, false, m, n, k, d.x.data(), k, weight(d), n, d.y.data(), n, w_ready());
}
void gemm_dx(Buffers& d, int m, int k, int n, bool split = false) {
  gemm(split, false, true, m, k, n, d.gy.data(), n, weight(d), n, d.gx.data(), k, w_ready());
}
void gemm_dw(Buffers& d, int m, int k, int n, bool split = false) {
  gemm(split, true, false, k, n, m, d.x.data(), k, d.gy.data(), n, d.gw.data(), n);
}

// Sets the backend and precision for one benchmark and puts the precision back afterwards (the op benchmarks run
// in fp32).
struct Setting {
  Setting(GemmBackend be, GemmPrecision p) {
    set_gemm_backend(be);
    set_gemm_precision(p);
  }
  ~Setting() { set_gemm_precision(GemmPrecision::fp32); }
};

void bm_sgemm(benchmark::State& st, GemmBackend be, GemmPrecision p, std::int64_t b, Layer l, int which) {
  Setting set(be, p);
  Buffers d(b, l.k, l.n);
  const int m = static_cast<int>(b), k = static_cast<int>(l.k), n = static_cast<int>(l.n);
  for (auto _ : st) {
    if (which == 0) gemm_fwd(d, m, k, n);
    else if (which == 1) gemm_dx(d, m, k, n);
    else gemm_dw(d, m, k, n);
    benchmark::ClobberMemory();
  }
  st.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(b * l.k * l.n), benchmark::Counter::kIsIterationInvariantRate);
}

// A dense layer built from the registry's ops: z = x·W, y = z + b, h = relu(y) (no relu on the 1-unit logit).
struct DenseLayer {
  std::unique_ptr<OpRun> mm, bias, act;
  DenseLayer(std::int64_t b, Layer l) {
    using IS = InputSpec;
    mm = std::make_unique<OpRun>(
        OpCase{"matmul", "", {IS::value({kBatch, l.k}), IS::value({l.k, l.n}, -0.1f, 0.1f)}, {}, nullptr, nullptr}, b);
    bias = std::make_unique<OpRun>(
        OpCase{"bias_add", "", {IS::value({kBatch, l.n}), IS::value({l.n})}, {}, nullptr, nullptr}, b);
    if (l.n > 1) act = std::make_unique<OpRun>(OpCase{"relu", "", {IS::value({kBatch, l.n})}, {}, nullptr, nullptr}, b);
  }
  // The buffers are the OpRuns' own (not chained): the work per op is the same as in a chained layer.
  void run() {
    mm->forward();
    bias->forward();
    if (act) {
      act->forward();
      act->backward();
    }
    bias->backward();
    mm->backward();
  }
};

void bm_dense_vs_sgemm(benchmark::State& st, GemmBackend be, GemmPrecision p, std::int64_t b, Layer l) {
  Setting set(be, p);
  Buffers d(b, l.k, l.n);
  const int m = static_cast<int>(b), k = static_cast<int>(l.k), n = static_cast<int>(l.n);
  OpCase mmc{"matmul", "", {InputSpec::value({kBatch, l.k}), InputSpec::value({l.k, l.n}, -0.1f, 0.1f)}, {}, nullptr,
             nullptr};
  OpRun mm(mmc, b);
  OpRun mm_per_call(mmc, b);  // bf16 only: the matmul op without the step's rounded weight (each gemm rounds W)
  DenseLayer layer(b, l);
  double t_gemm = 0, t_mm = 0, t_layer = 0, t_per_call = 0;
  const bool bf16 = p == GemmPrecision::bf16;
  for (auto _ : st) {
    auto t0 = Clock::now();
    round_w(d);
    gemm_fwd(d, m, k, n);
    gemm_dx(d, m, k, n);
    gemm_dw(d, m, k, n);
    t_gemm += seconds_since(t0);
    t0 = Clock::now();
    if (bf16) mm.round_params_bf16();
    mm.forward();
    mm.backward();
    t_mm += seconds_since(t0);
    t0 = Clock::now();
    if (bf16) layer.mm->round_params_bf16();
    layer.run();
    t_layer += seconds_since(t0);
    if (bf16) {
      t0 = Clock::now();
      mm_per_call.forward();
      mm_per_call.backward();
      t_per_call += seconds_since(t0);
    }
    benchmark::ClobberMemory();
  }
  const double it = static_cast<double>(st.iterations());
  st.counters["sgemm_us"] = 1e6 * t_gemm / it;
  st.counters["matmul_op_us"] = 1e6 * t_mm / it;
  st.counters["dense_layer_us"] = 1e6 * t_layer / it;
  st.counters["matmul/sgemm"] = t_mm / t_gemm;
  st.counters["layer/sgemm"] = t_layer / t_gemm;
  if (bf16) {  // what rounding W once per step saves on this layer: matmul with W rounded in every gemm call
    st.counters["matmul_per_call_us"] = 1e6 * t_per_call / it;
    st.counters["per_call/matmul"] = t_per_call / t_mm;
  }
  st.counters["sgemm_GFLOP/s"] = 6.0 * static_cast<double>(b * l.k * l.n) * it / t_gemm / 1e9;
}

const GemmPrecision kPrecisions[] = {GemmPrecision::fp32, GemmPrecision::bf16};

void register_blas() {
  for (GemmBackend be : backends())
    for (GemmPrecision p : kPrecisions)
      for (std::int64_t b : kBatches)
        for (const Layer& l : esmm_layers()) {
          const std::string pre = std::string(gemm_backend_name(be)) + "/" + gemm_precision_name(p) + "/B:" +
                                  std::to_string(b) + "/";
          const std::string shape = std::to_string(l.k) + "x" + std::to_string(l.n);
          const char* names[] = {"fwd", "dx", "dw"};
          for (int w = 0; w < 3; ++w)
            benchmark::RegisterBenchmark(("sgemm/" + pre + shape + "/" + names[w]).c_str(),
                                         [be, p, b, l, w](benchmark::State& st) { bm_sgemm(st, be, p, b, l, w); })
                ->Unit(benchmark::kMicrosecond)
                ->MinTime(0.2);
          benchmark::RegisterBenchmark(("dense_vs_sgemm/" + pre + shape).c_str(),
                                       [be, p, b, l](benchmark::State& st) { bm_dense_vs_sgemm(st, be, p, b, l); })
              ->Unit(benchmark::kMicrosecond)
              ->MinTime(0.5);
        }
}

// ---------------------------------------------------------------- the ESMM training step

// FLOPs of the towers' gemms per sample: 2·K·N forward, 4·K·N backward (dX and dW), per layer and tower.
double esmm_flops_per_sample() {
  double kn = 0;
  for (const Layer& l : esmm_layers()) kn += static_cast<double>(l.k * l.n);
  return 2.0 * 6.0 * kn;  // two towers
}

// The step's 18 gemms alone (3 layers × 3 gemms × 2 towers), seconds per step, in the current precision (bf16:
// with the step's one rounding of each weight and the per-call rounding of activations and gradients).
double esmm_gemm_seconds(std::int64_t b) {
  std::vector<Buffers> bufs;
  for (const Layer& l : esmm_layers()) bufs.emplace_back(b, l.k, l.n);
  auto once = [&] {
    for (int tower = 0; tower < 2; ++tower)
      for (std::size_t i = 0; i < bufs.size(); ++i) {
        round_w(bufs[i]);  // bf16: each weight once per step
        const int m = static_cast<int>(b), k = static_cast<int>(esmm_layers()[i].k),
                  n = static_cast<int>(esmm_layers()[i].n);
        gemm_fwd(bufs[i], m, k, n, true);  // split over the threads like the step's own gemms
        gemm_dx(bufs[i], m, k, n, true);
        gemm_dw(bufs[i], m, k, n, true);
      }
  };
  once();
  double best = 1e9;
  for (int rep = 0; rep < 5; ++rep) {
    const int n = b >= 1024 ? 5 : 20;
    auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) once();
    best = std::min(best, seconds_since(t0) / n);
  }
  return best;
}

// Each cell of `d` (one id) becomes a bag: its id, then Poisson(mean_bag - 1) more ids of the same field, drawn
// with a skew towards the field's first rows (u³: a few hot rows, a long tail), weight 1. Ali-CCP-shaped rows.
void to_bags(Dataset& d, std::int64_t vocab_per_field, double mean_bag, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::poisson_distribution<int> extra(mean_bag - 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::int64_t F = d.num_fields;
  std::vector<std::int64_t> off{0}, ids;
  ids.reserve(static_cast<std::size_t>(static_cast<double>(d.ids.size()) * mean_bag * 1.1));
  for (std::int64_t cell = 0; cell < d.rows() * F; ++cell) {
    const auto c = static_cast<std::size_t>(cell);
    for (auto k = d.offsets[c]; k < d.offsets[c + 1]; ++k) ids.push_back(d.ids[static_cast<std::size_t>(k)]);
    const std::int64_t base = (cell % F) * vocab_per_field;
    for (int j = extra(rng); j > 0; --j) {
      const double x = u(rng);
      ids.push_back(base + std::min(vocab_per_field - 1, static_cast<std::int64_t>(static_cast<double>(vocab_per_field) * x * x * x)));
    }
    off.push_back(static_cast<std::int64_t>(ids.size()));
  }
  d.offsets = std::move(off);
  d.ids = std::move(ids);
  d.weights.assign(d.ids.size(), 1.0f);
}

struct EsmmSetup {
  Dataset data;
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer<float>> opt;
  std::vector<std::int64_t> order;
  std::size_t pos = 0;
  // aliccp: 23 fields of bags of 10.6 ids on average (bench/op_cases.hpp), else ESMM's 20 one-id fields.
  explicit EsmmSetup(std::int64_t b, bool aliccp = false) {
    const std::int64_t fields = aliccp ? kAliFields : kFields, vocab = aliccp ? kAliVocab : kVocab;
    SyntheticConfig sc;
    sc.rows = std::max<std::int64_t>(32 * b, 16384);
    sc.fields = fields;
    sc.vocab_per_field = vocab / fields;
    data = make_synthetic(sc);
    if (aliccp) to_bags(data, vocab / fields, kAliMeanBag, 5);
    ModelConfig mc;
    mc.num_fields = fields;
    mc.vocab = vocab;
    mc.dim = kDim;
    mc.hidden = {200, 80};
    model = std::make_unique<Model>(mc);
    model->params().init(1);
    OptimizerConfig oc;
    oc.lr = 0.002;
    opt = make_optimizer<float>("adam", oc);
    order.resize(static_cast<std::size_t>(data.rows()));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::mt19937_64 rng(3);
    std::shuffle(order.begin(), order.end(), rng);
  }
  std::span<const std::int64_t> next(std::int64_t b) {
    if (pos + static_cast<std::size_t>(b) > order.size()) pos = 0;
    std::span<const std::int64_t> r(order.data() + pos, static_cast<std::size_t>(b));
    pos += static_cast<std::size_t>(b);
    return r;
  }
};

void bm_esmm_step(benchmark::State& st, GemmBackend be, GemmPrecision p, std::int64_t b, bool aliccp = false) {
  Setting set(be, p);
  EsmmSetup s(b, aliccp);
  for (int i = 0; i < 3; ++i) {  // warm up: buffers sized, optimizer state allocated
    s.model->bind(s.data, s.next(b));
    s.model->compute_gradients();
    s.opt->step(s.model->params());
  }
  double t_bind = 0, t_grad = 0, t_opt = 0;
  for (auto _ : st) {
    auto t0 = Clock::now();
    s.model->bind(s.data, s.next(b));
    auto t1 = Clock::now();
    s.model->compute_gradients();
    auto t2 = Clock::now();
    s.opt->step(s.model->params());
    auto t3 = Clock::now();
    t_bind += std::chrono::duration<double>(t1 - t0).count();
    t_grad += std::chrono::duration<double>(t2 - t1).count();
    t_opt += std::chrono::duration<double>(t3 - t2).count();
  }
  const double it = static_cast<double>(st.iterations());
  const double step = (t_bind + t_grad + t_opt) / it;
  st.SetItemsProcessed(st.iterations() * b);
  st.counters["bind_us"] = 1e6 * t_bind / it;
  st.counters["fwd+bwd_us"] = 1e6 * t_grad / it;
  st.counters["adam_us"] = 1e6 * t_opt / it;
  if (aliccp) {  // the gemm counters below are for ESMM's 360-wide input; here it is 23 × 18 = 414
    st.counters["ids_per_row"] = static_cast<double>(s.data.ids.size()) / static_cast<double>(s.data.rows());
    return;
  }
  const double gemm = esmm_gemm_seconds(b);
  st.counters["GFLOP/s"] = esmm_flops_per_sample() * static_cast<double>(b) / step / 1e9;
  st.counters["gemm_us"] = 1e6 * gemm;
  st.counters["gemm_frac"] = gemm / step;
}

void register_steps() {
  for (GemmBackend be : backends())
    for (GemmPrecision p : kPrecisions)
      for (std::int64_t b : kBatches)
        benchmark::RegisterBenchmark(("esmm_step/" + std::string(gemm_backend_name(be)) + "/" +
                                      gemm_precision_name(p) + "/B:" + std::to_string(b))
                                         .c_str(),
                                     [be, p, b](benchmark::State& st) { bm_esmm_step(st, be, p, b); })
            ->Unit(benchmark::kMillisecond)
            ->MinTime(2.0)
            ->UseRealTime();
  // Ali-CCP-shaped rows (~244 ids a row): the sparse side (pooling, gradient scatter, sparse Adam) dominates.
  for (GemmPrecision p : kPrecisions)
    for (std::int64_t b : kBatches)
      benchmark::RegisterBenchmark(("aliccp_step/" + std::string(gemm_backend_name(gemm_backend())) + "/" +
                                    gemm_precision_name(p) + "/B:" + std::to_string(b))
                                       .c_str(),
                                   [p, b](benchmark::State& st) { bm_esmm_step(st, gemm_backend(), p, b, true); })
          ->Unit(benchmark::kMillisecond)
          ->MinTime(2.0)
          ->UseRealTime();
}

// What produced the numbers: each gemm path's implementation (oneDNN's ISA, native or emulated bf16) and the CPU's
// flags, in the benchmark's context (console header and JSON "context").
void add_context() {
  const GemmBackend be = gemm_backend();
  for (GemmBackend b : backends())
    for (GemmPrecision p : kPrecisions) {
      set_gemm_backend(b);
      set_gemm_precision(p);
      benchmark::AddCustomContext(std::string("gemm/") + gemm_backend_name(b) + "/" + gemm_precision_name(p),
                                  gemm_implementation());
    }
  set_gemm_backend(be);
  set_gemm_precision(GemmPrecision::fp32);
  benchmark::AddCustomContext("cpu_gemm_flags", cpu_gemm_flags());
  benchmark::AddCustomContext("simd_isa", simd_isa_description());
  benchmark::AddCustomContext("threads", std::to_string(num_threads()));
}

}  // namespace

// Registers the benchmarks after static initialisation (the op registry is filled by the op files' static
// registrars), then runs them. Replaces the weak main of bench_parse.cpp.
int main(int argc, char** argv) {
  const char* th = std::getenv("FUNNEL_BENCH_THREADS");
  set_num_threads(th ? std::max(1, std::atoi(th)) : 1);
  register_ops();
  register_blas();
  register_steps();
  add_context();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
