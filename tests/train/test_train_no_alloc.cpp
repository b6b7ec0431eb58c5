// A steady-state training step as the trainer runs it (train/loop.cpp): Model::bind(dataset, rows) gathering a
// batch of rows from a Dataset, Model::compute_gradients() (forward, both losses, backward) and
// Optimizer<float>::step performs no heap allocation once warmed up.
//
// The allocation counter (tests/support/alloc_counter.*) replaces the global operator new/delete for the whole
// test_train binary; it only counts while a CountAllocs lives, so every other test is unaffected.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"
#include "support/alloc_counter.hpp"
#include "train/optimizer.hpp"
#include "train/model.hpp"

using namespace funnel;
using funnel::test::CountAllocs;
using funnel::test::print_traces;

namespace {

constexpr std::int64_t kFields = 5;
constexpr std::int64_t kVocab = 5000;  // more rows than ids in a batch, as with real tables
constexpr std::int64_t kDense = 2;

// Random cumulative labels (click, click·conversion) and dense features of the row being added.
void add_row_tail(Dataset& d, std::mt19937_64& rng) {
  std::bernoulli_distribution coin(0.4);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const bool click = coin(rng);
  d.labels.push_back(click ? 1 : 0);
  d.labels.push_back(click && coin(rng) ? 1 : 0);
  for (std::int64_t j = 0; j < kDense; ++j) d.dense.push_back(u(rng));
}

// `rows` rows of kFields fields with random weights: field 0 single-valued, the others multi-valued. With
// `blocks` > 0, that many shared blocks (cells of 0..3 ids in fields 1..4, like Ali-CCP's common user features)
// and most rows refer to one of them. With `ids_per_row` > 0 every row has exactly that many ids, own and shared,
// its own ids spread at random over fields 1..4 (ids_per_row > 13 leaves room for field 0 and the largest block),
// so every batch of B rows holds B·ids_per_row ids; with 0 the fields 1..4 have 0..4 own ids each, so the number
// of ids varies from batch to batch.
Dataset make_dataset(std::int64_t rows, std::int64_t blocks, std::int64_t ids_per_row, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> id(0, kVocab - 1), many(0, 4), few(0, 3), field(1, kFields - 1);
  std::uniform_real_distribution<float> w(0.25f, 2.0f);
  Dataset d;
  d.num_fields = kFields;
  d.num_stages = 2;
  d.num_dense = kDense;
  d.vocab = kVocab;
  for (std::int64_t f = 0; f < kFields; ++f) d.field_names.push_back("f" + std::to_string(f));
  for (std::int64_t j = 0; j < kDense; ++j) d.dense_names.push_back("x" + std::to_string(j));
  if (blocks > 0) {
    d.block_offsets.assign(1, 0);
    for (std::int64_t b = 0; b < blocks; ++b)
      for (std::int64_t f = 0; f < kFields; ++f) {
        for (std::int64_t k = f == 0 ? 0 : few(rng); k > 0; --k) {
          d.block_ids.push_back(id(rng));
          d.block_weights.push_back(w(rng));
        }
        d.block_offsets.push_back(static_cast<std::int64_t>(d.block_ids.size()));
      }
  }
  std::uniform_int_distribution<std::int32_t> pick_block(-1, static_cast<std::int32_t>(blocks - 1));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t blk = blocks > 0 ? pick_block(rng) : -1;
    if (blocks > 0) d.row_block.push_back(blk);
    std::int64_t count[kFields] = {1};
    if (ids_per_row > 0) {
      std::int64_t own = ids_per_row - 1;
      if (blk >= 0) own -= d.block_offsets[static_cast<std::size_t>((blk + 1) * kFields)] -
                           d.block_offsets[static_cast<std::size_t>(blk * kFields)];
      for (; own > 0; --own) ++count[field(rng)];
    } else {
      for (std::int64_t f = 1; f < kFields; ++f) count[f] = many(rng);
    }
    for (std::int64_t f = 0; f < kFields; ++f) {
      for (std::int64_t k = count[f]; k > 0; --k) {
        d.ids.push_back(id(rng));
        d.weights.push_back(f == 0 ? 1.0f : w(rng));
      }
      d.offsets.push_back(static_cast<std::int64_t>(d.ids.size()));
    }
    add_row_tail(d, rng);
  }
  return d;
}

ModelConfig small_esmm() {
  ModelConfig c;
  c.kind = "esmm";
  c.num_fields = kFields;
  c.vocab = kVocab;
  c.dim = 4;
  c.hidden = {8, 4};
  c.num_dense = kDense;
  return c;
}

// A model, an optimizer and a row list, as train() holds them.
struct Trainer {
  Model m;
  std::unique_ptr<Optimizer<float>> opt;
  const Dataset& data;
  std::mt19937_64 rng{5};
  std::vector<std::int64_t> rows;

  Trainer(const Dataset& d, const std::string& optimizer, const OptimizerConfig& oc, std::int64_t max_batch,
          const ModelConfig& mc = small_esmm())
      : m(mc), opt(make_optimizer<float>(optimizer, oc)), data(d),
        rows(static_cast<std::size_t>(max_batch)) {
    m.exec().init_params(1);
    check_compatible(m.config(), d, "test data");
  }
  // One training step, as in train(), on `b` fresh random rows.
  void step(std::int64_t b) {
    std::uniform_int_distribution<std::int64_t> row(0, data.rows() - 1);
    for (std::int64_t i = 0; i < b; ++i) rows[static_cast<std::size_t>(i)] = row(rng);
    m.bind(data, std::span<const std::int64_t>(rows.data(), static_cast<std::size_t>(b)));
    m.compute_gradients();
    opt->step(m.exec());
  }
};

// Warm up 2 steps at batch B, then count the allocations of `steps` more.
long count_steady_steps(Trainer& t, std::int64_t B, int steps) {
  t.step(B);
  t.step(B);
  CountAllocs count;
  for (int i = 0; i < steps; ++i) t.step(B);
  const long n = count.stop();
  if (n) print_traces(n);
  return n;
}

const char* what(const Dataset& d) { return d.has_blocks() ? "shared blocks" : "multi-valued cells"; }

}  // namespace

TEST_CASE("a steady-state step (bind rows of a Dataset, compute gradients, optimizer step) does not allocate",
          "[train][no_alloc]") {
  // Steady state: the same batch size and the same number of ids per batch (every row has 16 ids, spread over
  // multi-valued cells, own and shared), fresh random rows every step, so other embedding rows are touched.
  funnel::test::prime_backtrace();
  const Dataset multi = make_dataset(400, 0, 16, 11);
  const Dataset shared = make_dataset(400, 30, 16, 12);
  REQUIRE(dataset_problem(multi).empty());
  REQUIRE(dataset_problem(shared).empty());
  REQUIRE(shared.has_blocks());
  REQUIRE(multi.total_ids() == 400 * 16);
  REQUIRE(shared.total_ids() == 400 * 16);
  const std::int64_t B = 32;
  const int steps = 20;

  SECTION("adam") {
    for (const Dataset* d : {&multi, &shared}) {
      INFO(what(*d));
      Trainer t(*d, "adam", {}, B);
      CHECK(count_steady_steps(t, B, steps) == 0);
      CHECK(t.m.params().optimizer_steps() == 2 + steps);
    }
  }
  SECTION("adagrad") {
    for (const Dataset* d : {&multi, &shared}) {
      INFO(what(*d));
      OptimizerConfig oc;
      oc.initial_accumulator = 0.1;
      Trainer t(*d, "adagrad", oc, B);
      CHECK(count_steady_steps(t, B, steps) == 0);
    }
  }
  SECTION("sgd with momentum and weight decay") {
    for (const Dataset* d : {&multi, &shared}) {
      INFO(what(*d));
      OptimizerConfig oc;
      oc.momentum = 0.9;
      oc.weight_decay = 1e-4;
      Trainer t(*d, "sgd", oc, B);
      CHECK(count_steady_steps(t, B, steps) == 0);
    }
  }
}

// The number of ids per batch varies with multi-valued cells: the batch's id arrays (gather_batch) and the sparse
// embedding gradient (Executor::backward) reserve twice what they need, so a new maximum does not reallocate.
TEST_CASE("steps whose batches hold a varying number of ids (same batch size) do not allocate",
          "[train][no_alloc]") {
  funnel::test::prime_backtrace();
  const Dataset multi = make_dataset(400, 0, 0, 21);
  const Dataset shared = make_dataset(400, 30, 0, 22);
  REQUIRE(dataset_problem(multi).empty());
  REQUIRE(dataset_problem(shared).empty());
  for (const Dataset* d : {&multi, &shared}) {
    INFO(what(*d));
    Trainer t(*d, "adam", {}, 32);
    CHECK(count_steady_steps(t, 32, 50) == 0);
  }
}

// What train() does at epoch boundaries: full batches, a shorter last batch (rows % batch_size), then full batches
// of the next epoch. The first shorter batch is new and may allocate (reported, not checked); from then on
// Executor::set_batch swaps between the buffers of the two batch sizes.
TEST_CASE("the shorter last batch of an epoch and the full batch after it do not allocate from the second epoch",
          "[train][no_alloc]") {
  funnel::test::prime_backtrace();
  const Dataset d = make_dataset(400, 30, 16, 13);
  const std::int64_t B = 32, last = 400 % B;
  Trainer t(d, "adam", {}, B);
  t.step(B);
  t.step(B);
  long first_shorter;
  {
    CountAllocs count;
    t.step(last);
    first_shorter = count.stop();
  }
  WARN("the first shorter batch (" << last << " rows after batches of " << B << ") made " << first_shorter
                                   << " allocations");
  t.step(B);
  t.step(B);
  long shorter, full_again;
  {
    CountAllocs count;
    t.step(last);
    shorter = count.stop();
    if (shorter) print_traces(shorter);
  }
  {
    CountAllocs count;
    t.step(B);
    full_again = count.stop();
    if (full_again) print_traces(full_again);
  }
  CHECK(shorter == 0);
  CHECK(full_again == 0);
}

// The paper's shapes (18-dim embedding, towers 200-80) at batch 128 and 1024 on every float gemm backend of the
// build, on one and two threads: the gemms are large enough to take each library's real (blocked, packed) paths.
TEST_CASE("ESMM-sized steady steps do not allocate on any gemm backend, on 1 and 2 threads", "[train][no_alloc]") {
  funnel::test::prime_backtrace();
  std::vector<GemmBackend> backends{GemmBackend::openblas};
  if (onednn_available()) backends.push_back(GemmBackend::onednn);
  const GemmBackend before = gemm_backend();
  const Dataset d = make_dataset(2048, 30, 16, 31);
  ModelConfig mc = small_esmm();
  mc.dim = 18;
  mc.hidden = {200, 80};
  for (GemmBackend be : backends)
    for (int threads : {1, 2})
      for (std::int64_t B : {128, 1024}) {
        INFO(gemm_backend_name(be) << ", " << threads << " thread(s), batch " << B);
        set_gemm_backend(be);
        set_num_threads(threads);
        Trainer t(d, "adam", {}, B, mc);
        CHECK(count_steady_steps(t, B, 3) == 0);
      }
  set_num_threads(1);
  set_gemm_backend(before);
}
