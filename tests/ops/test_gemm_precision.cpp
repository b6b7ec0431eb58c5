// The bf16 gemm-input precision: rounding to bfloat16 (nearest, ties to even; Inf and NaN kept) and gemms whose
// results are those of bf16 inputs with fp32 sums, for every transpose; fp32 is untouched by having been in bf16.
// Weights rounded once per step (the executor's copies, Ctx::rounded) give the bits of rounding them in each call.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "support/gemm_guard.hpp"
#include "support/skip.hpp"
#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"

using namespace funnel;

namespace {

std::uint32_t bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

using funnel::test::PrecisionGuard;

std::vector<GemmBackend> precision_backends() {
  std::vector<GemmBackend> v{GemmBackend::openblas};
  if (onednn_available()) v.push_back(GemmBackend::onednn);
  return v;
}

// op(A)·op(B) in double from the stored operands, each element mapped through `f` first.
template <class F>
std::vector<double> reference(bool ta, bool tb, int m, int n, int k, const std::vector<float>& a,
                              const std::vector<float>& b, F f) {
  std::vector<double> c(static_cast<std::size_t>(m * n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        const float x = ta ? a[static_cast<std::size_t>(p * m + i)] : a[static_cast<std::size_t>(i * k + p)];
        const float y = tb ? b[static_cast<std::size_t>(j * k + p)] : b[static_cast<std::size_t>(p * n + j)];
        s += static_cast<double>(f(x)) * static_cast<double>(f(y));
      }
      c[static_cast<std::size_t>(i * n + j)] = s;
    }
  return c;
}

}  // namespace

TEST_CASE("round_to_bf16 rounds to the nearest bfloat16, ties to even, and keeps Inf and NaN", "[ops][bf16]") {
  CHECK(round_to_bf16(1.0f) == 1.0f);
  CHECK(round_to_bf16(-2.5f) == -2.5f);
  const float ulp = std::ldexp(1.0f, -7);  // bf16 spacing at 1 (8 significant bits)
  CHECK(round_to_bf16(1.0f + ulp / 2) == 1.0f);                    // tie: to even (1.0)
  CHECK(round_to_bf16(1.0f + 3 * ulp / 2) == 1.0f + 2 * ulp);      // tie: to even (1 + 2 ulp)
  CHECK(round_to_bf16(1.0f + ulp / 2 + std::ldexp(1.0f, -20)) == 1.0f + ulp);  // above the tie: up
  CHECK(round_to_bf16(1.0f + ulp / 2 - std::ldexp(1.0f, -20)) == 1.0f);        // below: down
  CHECK((bits(round_to_bf16(0.1f)) & 0xffffu) == 0u);
  CHECK(std::fabs(round_to_bf16(0.1f) - 0.1f) <= 0.1f * std::ldexp(1.0f, -9));
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(round_to_bf16(inf) == inf);
  CHECK(round_to_bf16(-inf) == -inf);
  CHECK(round_to_bf16(std::numeric_limits<float>::max()) == inf);  // beyond bf16's largest finite number
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  float snan_low;  // a NaN whose payload is only in the low 16 bits must not become Inf
  const std::uint32_t u = 0x7f800001u;
  std::memcpy(&snan_low, &u, sizeof u);
  CHECK(std::isnan(round_to_bf16(snan_low)));
  CHECK(parse_gemm_precision("bf16") == GemmPrecision::bf16);
  CHECK(parse_gemm_precision("fp32") == GemmPrecision::fp32);
  CHECK_FALSE(parse_gemm_precision("fp16"));
}

TEST_CASE("bf16 gemms compute bf16 inputs with fp32 sums, for every transpose and leading dimension",
          "[ops][bf16]") {
  PrecisionGuard guard;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 1.0f);
  const int m = 37, n = 29, k = 64;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      INFO("ta=" << ta << " tb=" << tb);
      std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
      for (auto& x : a) x = d(rng);
      for (auto& x : b) x = d(rng);
      const int lda = ta ? m : k, ldb = tb ? k : n;
      std::vector<float> c32(static_cast<std::size_t>(m * n)), c16(c32.size()), again(c32.size());
      set_gemm_precision(GemmPrecision::fp32);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c32.data(), n);
      set_gemm_precision(GemmPrecision::bf16);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c16.data(), n);
      set_gemm_precision(GemmPrecision::fp32);
      sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, again.data(), n);
      const auto r16 = reference(ta, tb, m, n, k, a, b, [](float x) { return round_to_bf16(x); });
      const auto r32 = reference(ta, tb, m, n, k, a, b, [](float x) { return x; });
      double worst16 = 0, worst32 = 0, moved = 0;
      for (std::size_t i = 0; i < c16.size(); ++i) {
        worst16 = std::max(worst16, std::fabs(c16[i] - r16[i]));   // fp32 summation error only
        worst32 = std::max(worst32, std::fabs(c32[i] - r32[i]));
        moved = std::max(moved, std::fabs(static_cast<double>(c16[i]) - c32[i]));
        CHECK(bits(again[i]) == bits(c32[i]));  // fp32 afterwards is the same as before
      }
      CHECK(worst16 < 1e-4);
      CHECK(worst32 < 1e-4);
      CHECK(moved > 1e-3);   // the rounding happened: bf16 inputs move results by ~2^-9 relative
      CHECK(moved < 0.25);   // and no more than bf16's precision allows at these sizes
    }
  // beta accumulates into C in fp32 also under bf16, and C itself is never rounded.
  set_gemm_precision(GemmPrecision::bf16);
  const float one = 1.0f;
  float c = 1.0f + std::ldexp(1.0f, -20);  // not a bf16 number
  sgemm_one_thread(false, false, 1, 1, 1, 1.0f, &one, 1, &one, 1, 1.0f, &c, 1);
  CHECK(c == 2.0f + std::ldexp(1.0f, -20));
}

TEST_CASE("a gemm operand marked bf16-ready is not rounded again, with the bits of rounding it in the call",
          "[ops][bf16]") {
  PrecisionGuard guard;
  set_gemm_precision(GemmPrecision::bf16);
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 1.0f);
  const int m = 33, n = 21, k = 50;
  for (GemmBackend be : precision_backends())
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        INFO(gemm_backend_name(be) << " ta=" << ta << " tb=" << tb);
        set_gemm_backend(be);
        std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
        for (auto& x : a) x = d(rng);
        for (auto& x : b) x = d(rng);
        std::vector<float> a16(a.size()), b16(b.size());
        const Bf16Counts c0 = bf16_counts();
        round_weights_bf16(a.data(), a.size(), a16.data());
        round_weights_bf16(b.data(), b.size(), b16.data());
        const Bf16Counts c1 = bf16_counts();
        CHECK(c1.weight_conversions - c0.weight_conversions == 2);
        CHECK(c1.weight_elements - c0.weight_elements == a.size() + b.size());
        for (std::size_t i = 0; i < b.size(); ++i) REQUIRE(bits(b16[i]) == bits(round_to_bf16(b[i])));
        const int lda = ta ? m : k, ldb = tb ? k : n;
        std::vector<float> c_call(static_cast<std::size_t>(m * n)), c_b(c_call.size()), c_a(c_call.size()),
            c_ab(c_call.size());
        sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c_call.data(), n);
        const Bf16Counts c2 = bf16_counts();
        CHECK(c2.call_elements - c1.call_elements == a.size() + b.size());
        sgemm_one_thread(ta, tb, m, n, k, 1.0f, a.data(), lda, b16.data(), ldb, 0.0f, c_b.data(), n, {.b = true});
        const Bf16Counts c3 = bf16_counts();
        CHECK(c3.call_elements - c2.call_elements == a.size());  // only A was rounded by the call
        sgemm_one_thread(ta, tb, m, n, k, 1.0f, a16.data(), lda, b.data(), ldb, 0.0f, c_a.data(), n, {.a = true});
        const Bf16Counts c4 = bf16_counts();
        CHECK(c4.call_elements - c3.call_elements == b.size());
        sgemm_one_thread(ta, tb, m, n, k, 1.0f, a16.data(), lda, b16.data(), ldb, 0.0f, c_ab.data(), n,
                         {.a = true, .b = true});
        CHECK(bf16_counts().call_elements == c4.call_elements);
        for (std::size_t i = 0; i < c_call.size(); ++i) {
          REQUIRE(bits(c_b[i]) == bits(c_call[i]));
          REQUIRE(bits(c_a[i]) == bits(c_call[i]));
          REQUIRE(bits(c_ab[i]) == bits(c_call[i]));
        }
      }
}

namespace {

// loss = Σ relu(x·w1)·w2 twice over: in `direct` the matmuls read the parameters themselves (the executor hands
// them over rounded once per pass); in `via_op` they read scale(w, 1), an op's output equal to the parameter, so
// every gemm call rounds it (the path before per-step weights). Both graphs draw the same initial values.
struct TwoLayerBf16 {
  Graph g;
  Var x, w1, w2, h, out, loss;
  explicit TwoLayerBf16(bool via_op, std::int64_t k, std::int64_t hid) {
    x = input(g, "x", {kBatch, k});
    w1 = param(g, "w1", {k, hid}, Init::normal(0.3));
    w2 = param(g, "w2", {hid, 3}, Init::normal(0.3));
    Var a = via_op ? scale(w1, 1.0, "w1_read") : w1;
    Var b = via_op ? scale(w2, 1.0, "w2_read") : w2;
    h = relu(matmul(x, a, "h"), "a");
    out = matmul(h, b, "out");
    loss = sum(out, "loss");
    g.mark_loss(loss.id);
  }
};

void feed_two_layer(Executor<float>& ex, NodeId x, std::int64_t b, std::int64_t k, int step) {
  ex.set_batch(b);
  float* d = ex.input(x).data();
  for (std::int64_t i = 0; i < b * k; ++i) d[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(step));
}

}  // namespace

TEST_CASE("under bf16 each weight is rounded once per step, with the bits of rounding it per gemm call, and never "
          "stale after the parameters change",
          "[ops][bf16][matmul]") {
  PrecisionGuard guard;
  set_gemm_precision(GemmPrecision::bf16);
  const std::int64_t k = 40, hid = 24, B = 300;
  for (GemmBackend be : precision_backends())
    for (int threads : {1, 2}) {
      INFO(gemm_backend_name(be) << ", " << threads << " thread(s)");
      set_gemm_backend(be);
      set_num_threads(threads);
      TwoLayerBf16 direct(false, k, hid), via(true, k, hid);
      Executor<float> ed(direct.g), ev(via.g);
      ed.init_params(9);
      ev.init_params(9);
      for (int step = 0; step < 4; ++step) {
        INFO("step " << step);
        feed_two_layer(ed, direct.x.id, B, k, step);
        feed_two_layer(ev, via.x.id, B, k, step);
        const Bf16Counts c0 = bf16_counts();
        ed.forward();
        ed.backward(direct.loss.id);
        const Bf16Counts c1 = bf16_counts();
        ev.forward();
        ev.backward(via.loss.id);
        const Bf16Counts c2 = bf16_counts();
        // Two weight matrices, rounded once each for the forward and backward pass together.
        CHECK(c1.weight_conversions - c0.weight_conversions == 2);
        CHECK(c1.weight_elements - c0.weight_elements == static_cast<std::uint64_t>(k * hid + hid * 3));
        CHECK(c2.weight_conversions == c1.weight_conversions);  // scale's output is no parameter
        if (threads == 1) {
          // Per call only activations and gradients: x and h forward; dY for dh, h and dY for dw2, x and dh for
          // dw1 (x is an input: no dx). The per-call path also rounds w2 (twice) and w1 (once) inside its calls.
          const auto act = static_cast<std::uint64_t>(B * k + B * hid + B * 3 + B * hid + B * 3 + B * k + B * hid);
          CHECK(c1.call_elements - c0.call_elements == act);
          // (oneDNN's A·Bᵀ from 129 rows on runs in fixed row blocks, each rounding all of B: at least that much.)
          CHECK(c2.call_elements - c1.call_elements >= act + static_cast<std::uint64_t>(2 * hid * 3 + k * hid));
        }
        const auto& vd = ed.value(direct.out.id);
        const auto& vv = ev.value(via.out.id);
        for (std::size_t i = 0; i < vd.size(); ++i) REQUIRE(bits(vd.data()[i]) == bits(vv.data()[i]));
        for (auto [pd, pv] : {std::pair{direct.w1.id, via.w1.id}, std::pair{direct.w2.id, via.w2.id}}) {
          const auto& gd = ed.grad(pd);
          const auto& gv = ev.grad(pv);
          for (std::size_t i = 0; i < gd.size(); ++i) REQUIRE(bits(gd.data()[i]) == bits(gv.data()[i]));
          // A plain SGD update on the store between steps: a rounded copy kept from before it would make the next
          // step's outputs differ from the per-call path's.
          auto& wd = ed.param(pd);
          auto& wv = ev.param(pv);
          for (std::size_t i = 0; i < wd.size(); ++i) {
            wd.data()[i] -= 0.05f * gd.data()[i];
            wv.data()[i] -= 0.05f * gv.data()[i];
          }
        }
      }
      // fp32 afterwards: the executor hands no rounded copies and nothing is rounded.
      set_gemm_precision(GemmPrecision::fp32);
      const Bf16Counts c0 = bf16_counts();
      ed.forward();
      ed.backward(direct.loss.id);
      CHECK(bf16_counts().weight_conversions == c0.weight_conversions);
      CHECK(bf16_counts().call_elements == c0.call_elements);
      set_gemm_precision(GemmPrecision::bf16);
    }
}

// Native bf16 (oneDNN's bf16 × bf16 → fp32 gemm) against the emulated path, gemm by gemm. Both multiply the same
// bf16 numbers exactly and sum in fp32, so they differ only by summation order: far below what bf16 moves.
TEST_CASE("native bf16 gemms match the emulated ones within fp32 summation error, at ESMM's shapes",
          "[ops][bf16][native]") {
  PrecisionGuard guard;
  if (!funnel::test::native_bf16_or_skip()) return;
  set_gemm_backend(GemmBackend::onednn);
  set_gemm_precision(GemmPrecision::bf16);
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  struct Shape3 {
    int m, n, k;
  };
  // Forward and both backward gemms of ESMM's 360×200×80 tower at batch 128 and a ragged batch, and a tiny one.
  for (const Shape3 s : {Shape3{128, 200, 360}, Shape3{130, 80, 200}, Shape3{360, 200, 128}, Shape3{3, 1, 5}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const int m = s.m, n = s.n, k = s.k;
        INFO("m=" << m << " n=" << n << " k=" << k << " ta=" << ta << " tb=" << tb);
        std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
        for (auto& x : a) x = d(rng);
        for (auto& x : b) x = d(rng);
        const int lda = ta ? m : k, ldb = tb ? k : n, ldc = n + 3;  // C with a leading dimension of its own
        std::vector<float> c0(static_cast<std::size_t>(m * ldc));
        for (auto& x : c0) x = d(rng);
        std::vector<float> native = c0, emulated = c0;
        set_bf16_impl(Bf16Impl::native);
        const Bf16Counts before = bf16_counts();
        sgemm_one_thread(ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, 0.5f, native.data(), ldc);
        CHECK(bf16_counts().native_calls - before.native_calls == 1);
        set_bf16_impl(Bf16Impl::emulated);
        const Bf16Counts mid = bf16_counts();
        sgemm_one_thread(ta, tb, m, n, k, 1.5f, a.data(), lda, b.data(), ldb, 0.5f, emulated.data(), ldc);
        CHECK(bf16_counts().native_calls == mid.native_calls);
        const auto r16 = reference(ta, tb, m, n, k, a, b, [](float x) { return round_to_bf16(x); });
        double worst = 0, worst_ref = 0;
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            const std::size_t at = static_cast<std::size_t>(i * ldc + j);
            const double want = 1.5 * r16[static_cast<std::size_t>(i * n + j)] + 0.5 * c0[at];
            worst = std::max(worst, std::fabs(static_cast<double>(native[at]) - emulated[at]));
            worst_ref = std::max(worst_ref, std::fabs(native[at] - want));
          }
        for (int i = 0; i < m; ++i)  // the padding of C is left alone
          for (int j = n; j < ldc; ++j) REQUIRE(bits(native[static_cast<std::size_t>(i * ldc + j)]) ==
                                                bits(c0[static_cast<std::size_t>(i * ldc + j)]));
        // fp32 sums of k products of size ~1: relative 2^-24 per add, at most ~k·6e-8·|terms| ≈ 1e-4 here.
        CHECK(worst < 1e-3);
        CHECK(worst_ref < 1e-3);
      }
  INFO(gemm_implementation());
  set_bf16_impl(Bf16Impl::native);
  CHECK(gemm_implementation().find("dnnl_gemm_bf16bf16f32") != std::string::npos);
  set_bf16_impl(Bf16Impl::emulated);
  CHECK(gemm_implementation().find("emulated") != std::string::npos);
}

TEST_CASE("the gemm implementation string and the CPU flags say what runs", "[ops][bf16]") {
  PrecisionGuard guard;
  set_gemm_precision(GemmPrecision::fp32);
  set_gemm_backend(GemmBackend::openblas);
  CHECK(gemm_implementation() == "openblas cblas_sgemm");
  set_gemm_precision(GemmPrecision::bf16);
  CHECK(gemm_implementation().find("emulated bf16 (backend openblas)") == 0);
  const std::string flags = cpu_gemm_flags();
  INFO(flags);
  // oneDNN finding bf16 means cpuid shows it.
  CHECK((flags.find("avx512_bf16") != std::string::npos || !bf16_native_available()));
  CHECK_THROWS_AS(parse_bf16_impl("fast").value(), std::bad_optional_access);
}
