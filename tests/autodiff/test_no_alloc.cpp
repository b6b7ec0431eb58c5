// A steady-state training step (same batch size: fill inputs, forward, backward) performs no heap allocation.
//
// The allocation counter (tests/support/alloc_counter.*) replaces the global operator new/delete for the whole
// test_autodiff binary; it only counts while a CountAllocs lives, so every other test is unaffected.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <vector>

#include "autodiff/executor.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"
#include "ops/gemm_backend.hpp"
#include "support/alloc_counter.hpp"
#include "support/gemm_guard.hpp"

using namespace funnel;
using funnel::test::CountAllocs;
using funnel::test::print_traces;

namespace {

struct Step {
  ModelConfig cfg;
  Graph g;
  ModelHandle h;
  Executor<float> ex;
  std::vector<LossWeight> losses;
  std::vector<NodeId> predict;
  std::mt19937_64 rng{99};
  static ModelConfig small(const std::string& kind) {
    return test::small(kind, {.fields = 4, .vocab = 200, .dim = 4, .hidden = {8, 4}});
  }
  explicit Step(const ModelConfig& c) : cfg(c), h(build_model(g, cfg)), ex(g) {
    ex.init_params(1);
    for (std::size_t i = 0; i < h.losses.size(); ++i) losses.push_back({h.losses[i], h.loss_weights[i]});
    predict = {h.column("pctr"), h.column("pcvr"), h.column("pctcvr")};
  }
  // One batch: fresh random ids and labels when `fresh`, else the same batch as before.
  void fill(std::int64_t b, bool fresh) {
    if (!fresh) rng.seed(99);
    std::uniform_int_distribution<std::int64_t> id(0, cfg.vocab - 1);
    std::bernoulli_distribution coin(0.5);
    ex.set_batch(b);
    IdBatch& ib = ex.ids(h.ids);
    ib.reset(b, cfg.num_fields);
    for (std::int64_t c = 0; c < b * cfg.num_fields; ++c) {
      ib.push(id(rng));
      ib.end_cell();
    }
    auto& click = ex.input(h.labels[0]);
    auto& conv = ex.input(h.labels[1]);
    for (std::int64_t r = 0; r < b; ++r) {
      const bool clk = coin(rng);
      click.data()[r] = clk ? 1.0f : 0.0f;
      conv.data()[r] = clk && coin(rng) ? 1.0f : 0.0f;
    }
    for (NodeId d : h.dense)
      for (auto& v : ex.input(d)) v = 0.5f;
  }
  void train_step(std::int64_t b, bool fresh) {
    fill(b, fresh);
    ex.forward(h.losses);
    ex.backward(losses);
  }
};

}  // namespace

namespace {
// Runs the rest of a test on one float gemm backend (each backend of the build in turn, via GENERATE).
struct OnBackend {
  GemmBackend before = gemm_backend();
  explicit OnBackend(GemmBackend b) { set_gemm_backend(b); }
  ~OnBackend() { set_gemm_backend(before); }
};
std::vector<GemmBackend> backends() {
  std::vector<GemmBackend> v{GemmBackend::openblas};
  if (onednn_available()) v.push_back(GemmBackend::onednn);
  return v;
}
}  // namespace

TEST_CASE("a steady-state ESMM training step performs zero heap allocations", "[autodiff][no_alloc]") {
  funnel::test::prime_backtrace();  // load the unwinder before counting
  const GemmBackend be = GENERATE(from_range(backends()));
  INFO("gemm backend " << gemm_backend_name(be));
  OnBackend on(be);
  Step s(Step::small("esmm"));
  const std::int64_t B = 16;

  SECTION("the same batch every step") {
    s.train_step(B, false);
    s.train_step(B, false);
    CountAllocs count;
    for (int i = 0; i < 3; ++i) s.train_step(B, false);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("a fresh random batch every step (different rows touched)") {
    s.train_step(B, true);
    s.train_step(B, true);
    CountAllocs count;
    for (int i = 0; i < 5; ++i) s.train_step(B, true);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("a batch touching more distinct embedding rows than any batch before") {
    // Warm up on batches whose ids are all the same row, then a batch of all-distinct ids: the number of ids per
    // batch is unchanged (B×F single-valued cells), so this is still a steady-state step.
    auto same_row_batch = [&] {
      s.fill(B, true);
      IdBatch& ib = s.ex.ids(s.h.ids);
      for (auto& id : ib.ids) id = 3;
      s.ex.forward(s.h.losses);
      s.ex.backward(s.losses);
    };
    same_row_batch();
    same_row_batch();
    s.fill(B, true);
    IdBatch& ib = s.ex.ids(s.h.ids);
    for (std::size_t k = 0; k < ib.ids.size(); ++k) ib.ids[k] = static_cast<std::int64_t>(k);
    CountAllocs count;
    s.ex.forward(s.h.losses);
    s.ex.backward(s.losses);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
    CHECK(s.ex.sparse_grad(s.g.at("embedding/table")).size() == static_cast<std::size_t>(B * s.cfg.num_fields));
  }
  SECTION("full forward and prediction passes") {
    s.train_step(B, true);
    s.train_step(B, true);
    s.ex.forward();
    s.ex.forward(s.predict);
    CountAllocs count;
    s.fill(B, true);
    s.ex.forward();
    s.ex.backward(s.losses);
    s.ex.forward(s.predict);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
  SECTION("backward from a single loss by id") {
    s.train_step(B, false);
    s.ex.backward(s.h.losses[0]);
    s.ex.backward(s.h.losses[0]);
    CountAllocs count;
    s.ex.backward(s.h.losses[0]);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
}

TEST_CASE("steady-state steps of the other zoo models do not allocate", "[autodiff][no_alloc]") {
  funnel::test::prime_backtrace();
  const GemmBackend be = GENERATE(from_range(backends()));
  INFO("gemm backend " << gemm_backend_name(be));
  OnBackend on(be);
  for (const char* kind : {"base", "esmm-ns", "division"}) {
    INFO(kind);
    ModelConfig c = Step::small(kind);
    c.num_dense = 2;
    Step s(c);
    s.train_step(12, true);
    s.train_step(12, true);
    CountAllocs count;
    for (int i = 0; i < 3; ++i) s.train_step(12, true);
    long n = count.stop();
    if (n) print_traces(n);
    CHECK(n == 0);
  }
}

TEST_CASE("a steady-state bf16 ESMM step does not allocate with either bf16 implementation on 1 or 2 threads",
          "[autodiff][no_alloc][bf16]") {
  funnel::test::prime_backtrace();
  funnel::test::PrecisionGuard guard;
  std::vector<Bf16Impl> impls{Bf16Impl::emulated};
  if (bf16_native_available()) impls.push_back(Bf16Impl::native);
  else WARN("native bf16 not checked: " << bf16_native_unavailable_reason());
  const Bf16Impl impl = GENERATE_COPY(from_range(impls));
  // With 2 threads the gemms are cut over the pool: their bf16 operands are prepared on the calling thread first,
  // so no pool thread grows scratch of its own when it first meets a chunk (it did before: about half the runs
  // allocated in a steady step).
  const int threads = GENERATE(1, 2);
  INFO(bf16_impl_name(impl) << " bf16, " << threads << " thread(s)");
  if (onednn_available()) set_gemm_backend(GemmBackend::onednn);
  set_bf16_impl(impl);
  set_gemm_precision(GemmPrecision::bf16);
  set_num_threads(threads);
  ModelConfig c = Step::small("esmm");
  c.hidden = {64, 32};  // gemms large enough to be cut over the threads at this batch
  Step s(c);
  const std::int64_t B = 300;
  for (int i = 0; i < 3; ++i) s.train_step(B, true);  // warm-up: the bf16 scratch grows here
  const Bf16Counts before = bf16_counts();
  CountAllocs count;
  for (int i = 0; i < 4; ++i) s.train_step(B, true);
  long n = count.stop();
  if (n) print_traces(n);
  CHECK(n == 0);
  CHECK((bf16_counts().native_calls > before.native_calls) == (impl == Bf16Impl::native && onednn_available()));
}
