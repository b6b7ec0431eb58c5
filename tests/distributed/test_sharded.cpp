// Row-sharded embedding tables (distributed/sharded_embedding.hpp): a sharded run against the replicated one on the
// same global batches (the same bits: the gradient rows are merged in rank order in both), the optimizer state of
// each rank only for its rows, checkpoints from N sharded ranks loaded in one process, a 1-process checkpoint
// continued on N sharded ranks, evaluation with shares that end at different batches. Run by CTest without mpirun
// (one rank) and under `mpirun -np 2` and `-np 3`; every rank runs every case.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>

#include "distributed/data_parallel.hpp"
#include "distributed/sharded_embedding.hpp"
#include "tests/distributed/fixtures.hpp"
#include "train/checkpoint.hpp"
#include "train/npy.hpp"

using namespace funnel;
using namespace funnel::dist;
using funnel::test::SharedTemp;

namespace {

Dataset data(std::int64_t rows = 900, std::int64_t vocab_per_field = 40) {
  return funnel::test::synthetic_data(7, rows, vocab_per_field);
}

ModelConfig model_config(const Dataset& d) { return funnel::test::small_model(d); }

OptimizerConfig opt_config(const std::string& name) {
  return funnel::test::opt_config(name, 1e-4);  // weight decay: the update reads the owned row's value too
}

TrainOptions options() {
  TrainOptions o = funnel::test::train_options(true);
  o.eval_batch_size = 128;
  return o;
}

struct Run {
  std::unique_ptr<Model> model;
  std::unique_ptr<Optimizer<float>> opt;
  std::unique_ptr<ShardedEmbeddings> se;  // sharded runs only
  TrainResult result;
};

Run fresh(const Dataset& d, const std::string& optimizer) {
  Run r;
  r.model = std::make_unique<Model>(model_config(d));
  r.model->params().init(11);
  r.opt = make_optimizer<float>(optimizer, opt_config(optimizer));
  return r;
}

void train_replicated(Communicator& c, Run& r, const Dataset& d, const Dataset* eval, const TrainOptions& o) {
  DataParallel dp(c, *r.model, DataParallelOptions{.check_every = 5});
  r.result = train_data_parallel(dp, *r.model, *r.opt, d, eval, o, {}, r.result.steps);
}

// One process (the one-process communicator) trains a replicated Adam run of options() and saves its checkpoint to
// `dir`: called by rank 0 alone, the other ranks wait at a barrier.
void save_one_process_run(const Dataset& d, const std::string& dir) {
  auto local = make_local_comm();
  Run one = fresh(d, "adam");
  train_replicated(*local, one, d, nullptr, options());
  save_checkpoint(dir, one.model->params(), one.opt.get(), to_json(one.model->config()), nlohmann::json::object(),
                  one.result.steps);
}

ShardInit from_checkpoint(const std::string& dir, bool state = true) {
  ShardInit i;
  i.checkpoint = dir;
  i.load_state = state;
  return i;
}

// A model whose store never allocates the tables (row-sharded storages): ParamStore::init draws each rank's rows
// (or the ShardedEmbeddings reads them from a checkpoint).
Run fresh_deferred(const Dataset& d, const std::string& optimizer, ModelConfig cfg, std::uint64_t seed = 11) {
  Run r;
  r.model = std::make_unique<Model>(cfg, row_sharded_store(world()));
  r.model->params().init(seed);
  r.opt = make_optimizer<float>(optimizer, opt_config(optimizer));
  (void)d;
  return r;
}
Run fresh_deferred(const Dataset& d, const std::string& optimizer) {
  return fresh_deferred(d, optimizer, model_config(d));
}

void train_sharded_run(Communicator& c, Run& r, const Dataset& d, const Dataset* eval, const TrainOptions& o,
                       const ShardInit& init = {}) {
  if (!r.se) r.se = std::make_unique<ShardedEmbeddings>(c, *r.model, *r.opt, init);
  DataParallel dp(c, *r.model, DataParallelOptions{.check_every = 5});  // the hash check skips the tables
  r.result = train_sharded(dp, *r.se, *r.model, *r.opt, d, eval, o, {}, r.result.steps);
}

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// How many parameters and optimizer slots of two whole stores of one model differ in any bit.
std::size_t arrays_differ(ParamStore<float>& a, ParamStore<float>& b) {
  std::size_t differ = 0;
  for (NodeId p : a.ids()) {
    differ += !same_bits(a.value(p).data(), b.value(p).data(), a.numel(p));
    for (std::size_t k = 0; k < b.slot_names().size(); ++k)
      differ += !same_bits(a.slot(p, k), b.slot(p, k), a.numel(p));
  }
  return differ;
}

// Counts of values that differ between the sharded run `s` and the replicated run `r`: dense parameters whole,
// tables on this rank's rows, optimizer state of both (the tables' on this rank's rows).
struct Diff {
  std::size_t dense = 0, rows = 0, state = 0, compared_rows = 0;
};
Diff compare(Run& s, Run& r) {
  Diff d;
  ParamStore<float>& ps = s.model->params();
  ParamStore<float>& pr = r.model->params();
  const std::size_t nslots = pr.slot_names().size();
  for (NodeId p : ps.ids()) {
    if (s.se->is_sharded(p)) continue;
    d.dense += !same_bits(ps.value(p).data(), pr.value(p).data(), ps.numel(p));
    for (std::size_t k = 0; k < nslots; ++k) d.state += !same_bits(ps.slot(p, k), pr.slot(p, k), ps.numel(p));
  }
  for (std::size_t t = 0; t < s.se->num_tables(); ++t) {
    const NodeId p = s.se->table(t);
    const auto D = static_cast<std::size_t>(pr.value(p).shape()[1]);
    for (std::int64_t i = 0; i < s.se->owned_rows(t); ++i) {
      const auto row = static_cast<std::size_t>(s.se->global_row(i));
      ++d.compared_rows;
      d.rows += !same_bits(s.se->owned_value(t, i), pr.value(p).data() + row * D, D);
      for (std::size_t k = 0; k < nslots; ++k) {
        const float* mine = s.se->owned_slot(t, k, i);
        d.state += mine == nullptr || !same_bits(mine, pr.slot(p, k) + row * D, D);
      }
    }
  }
  return d;
}

}  // namespace

TEST_CASE("sharded tables: N ranks give the replicated run's bits after K steps (SGD and Adam)", "[distributed][shard]") {
  Communicator& w = world();
  const Dataset d = data(), ev = data(300);
  for (const char* optimizer : {"sgd", "adam"}) {
    INFO(optimizer);
    Run rep = fresh(d, optimizer), sh = fresh(d, optimizer);
    train_replicated(w, rep, d, &ev, options());
    train_sharded_run(w, sh, d, &ev, options());
    REQUIRE(sh.result.steps == 20);
    REQUIRE(rep.result.steps == sh.result.steps);
    REQUIRE(sh.se->num_tables() >= 1);
    const Diff diff = compare(sh, rep);
    CHECK(diff.compared_rows > 0);
    CHECK(diff.dense == 0);
    CHECK(diff.rows == 0);
    CHECK(diff.state == 0);
    // The losses every rank reports and the evaluation after each epoch (rows fetched from their owners).
    REQUIRE(rep.result.epochs.size() == sh.result.epochs.size());
    for (std::size_t e = 0; e < rep.result.epochs.size(); ++e) {
      CHECK(rep.result.epochs[e].mean_losses == sh.result.epochs[e].mean_losses);
      CHECK(rep.result.epochs[e].eval.ctr_auc == sh.result.epochs[e].eval.ctr_auc);
      CHECK(rep.result.epochs[e].eval.ctcvr_logloss == sh.result.epochs[e].eval.ctcvr_logloss);
    }
    // Something was learned (the comparison is not between two untouched models).
    Run init = fresh(d, optimizer);
    const NodeId table = sh.se->table(0);
    CHECK(!same_bits(init.model->params().value(table).data(), rep.model->params().value(table).data(),
                     rep.model->params().numel(table)));
  }
}

TEST_CASE("sharded tables: the comparison can fail (another data order differs)", "[distributed][shard]") {
  Communicator& w = world();
  const Dataset d = data();
  Run rep = fresh(d, "adam"), sh = fresh(d, "adam");
  train_replicated(w, rep, d, nullptr, options());
  TrainOptions other = options();
  other.seed = 6;
  train_sharded_run(w, sh, d, nullptr, other);
  const Diff diff = compare(sh, rep);
  CHECK(diff.dense > 0);
  CHECK(diff.rows > 0);
}

TEST_CASE("sharded tables: each rank owns rows ≡ rank (mod N), keeps optimizer state for those only and a working "
          "copy of one batch's rows", "[distributed][shard]") {
  Communicator& w = world();
  const int N = w.size(), r = w.rank();
  const Dataset d = data(900, 400);  // 2,000 table rows, at most 320 ids in a batch
  Run sh = fresh(d, "adam");
  train_sharded_run(w, sh, d, nullptr, options());
  ShardedEmbeddings& se = *sh.se;
  ParamStore<float>& ps = sh.model->params();
  std::int64_t state_all_tables = 0;
  for (std::size_t t = 0; t < se.num_tables(); ++t) {
    const NodeId p = se.table(t);
    const std::int64_t V = ps.graph().node(p).shape[0];  // the store holds only the working rows
    const std::int64_t D = ps.graph().node(p).shape[1];
    CHECK(V == 2000);
    // V/N rows, rounded down or up; every row owned by exactly one rank.
    CHECK(se.owned_rows(t) >= V / N);
    CHECK(se.owned_rows(t) <= (V + N - 1) / N);
    for (std::int64_t i = 0; i < se.owned_rows(t); ++i) {
      CHECK(se.global_row(i) % N == r);
      CHECK(se.owner(se.global_row(i)) == r);
    }
    CHECK(w.allreduce_one(se.owned_rows(t), ReduceOp::Sum) == V);
    CHECK(std::string(ps.table(p).kind()) == "row-sharded");
    CHECK_FALSE(ps.table(p).held_in_store());
    state_all_tables += V * D * 2;  // Adam: m and v
    // The store's copy of the table: the working rows only (≥ the distinct ids of a batch share, < V).
    CHECK(static_cast<std::int64_t>(ps.numel(p)) == se.working_rows(t) * D);
    CHECK(se.working_rows(t) <= 64 * 5 * 3 / 2);
    CHECK(se.working_rows(t) >= 5);
  }
  // The store exports no state of the tables; this rank holds ≈ 1/N of it.
  for (const auto& a : ps.export_optimizer().arrays)
    for (std::size_t t = 0; t < se.num_tables(); ++t) CHECK(a.name.rfind(ps.name(se.table(t)) + "/", 0) != 0);
  const auto mine = static_cast<std::int64_t>(se.state_elements());
  CHECK(w.allreduce_one(mine, ReduceOp::Sum) == state_all_tables);
  CHECK(mine <= state_all_tables / N + static_cast<std::int64_t>(se.num_tables()) * 4 * 2);
  // Bytes went through the all-to-alls when there is more than one rank.
  if (N > 1) CHECK(se.total_bytes().total() > 0);
}

TEST_CASE("sharded tables: a checkpoint of N sharded ranks loads in one process as the replicated model",
          "[distributed][shard]") {
  Communicator& w = world();
  const Dataset d = data();
  const SharedTemp tmp(w, "shard_ckpt");
  const std::string ck = tmp.root + "/sharded";
  Run rep = fresh(d, "adam"), sh = fresh(d, "adam");
  train_replicated(w, rep, d, nullptr, options());
  train_sharded_run(w, sh, d, nullptr, options());
  sh.se->save(ck, sh.result.steps, to_json(sh.model->config()), nlohmann::json::object());
  w.barrier();
  // Every rank reads it as one process would: the whole model and the whole optimizer state.
  Run back = fresh(d, "adam");
  CHECK(load_checkpoint(ck, back.model->params(), back.opt.get()).step == 20);
  ParamStore<float>& pb = back.model->params();
  ParamStore<float>& pr = rep.model->params();
  CHECK(pb.optimizer_steps() == pr.optimizer_steps());
  CHECK(arrays_differ(pb, pr) == 0);
  w.barrier();  // rank 0 removes the directory after everyone has read it
}

TEST_CASE("sharded tables: a 1-process checkpoint continues on N sharded ranks as on N replicated ones",
          "[distributed][shard]") {
  Communicator& w = world();
  const Dataset d = data();
  const SharedTemp tmp(w, "shard_init");
  const std::string ck = tmp.root + "/one";
  if (w.rank() == 0) save_one_process_run(d, ck);
  w.barrier();
  TrainOptions more = options();
  more.max_steps = 35;  // 15 more steps
  Run rep = fresh(d, "adam"), sh = fresh(d, "adam");
  rep.result.steps = load_checkpoint(ck, rep.model->params(), rep.opt.get()).step;
  sh.result.steps = load_checkpoint(ck, sh.model->params(), sh.opt.get()).step;
  REQUIRE(sh.result.steps == 20);
  train_replicated(w, rep, d, nullptr, more);
  train_sharded_run(w, sh, d, nullptr, more);  // the constructor keeps this rank's rows of the loaded state
  REQUIRE(sh.result.steps == 35);
  const Diff diff = compare(sh, rep);
  CHECK(diff.dense == 0);
  CHECK(diff.rows == 0);
  CHECK(diff.state == 0);
  w.barrier();
}

TEST_CASE("sharded tables: evaluation shares that end at different batches still serve each other's rows",
          "[distributed][shard]") {
  Communicator& w = world();
  const int N = w.size(), r = w.rank();
  const Dataset d = data(), ev = data(400);
  Run rep = fresh(d, "adam"), sh = fresh(d, "adam");
  train_replicated(w, rep, d, nullptr, options());
  train_sharded_run(w, sh, d, nullptr, options());
  // Rank 0 takes most rows (several batches), the others a few (one batch or none).
  const std::int64_t n = ev.rows(), head = N == 1 ? n : n - 10 * (N - 1);
  const std::int64_t b0 = r == 0 ? 0 : head + 10 * (r - 1), b1 = r == 0 ? head : b0 + 10;
  std::vector<std::int64_t> rows(static_cast<std::size_t>(b1 - b0));
  std::iota(rows.begin(), rows.end(), b0);
  DataParallel dpr(w, *rep.model), dps(w, *sh.model);
  DatasetSource plain(ev, rows, 64);
  const FunnelMetrics a = dpr.evaluate(plain);
  ShardedSource fetched(w, *sh.se, std::make_unique<DatasetSource>(ev, rows, 64));
  const FunnelMetrics b = dps.evaluate(fetched);
  CHECK(a.rows == n);
  CHECK(b.rows == n);
  CHECK(a.ctr_auc == b.ctr_auc);
  CHECK(a.ctcvr_auc == b.ctcvr_auc);
  CHECK(a.ctr_logloss == b.ctr_logloss);
}

// ---------------------------------------------------------------- memory-true sharding (deferred tables)

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// This rank's rows of table k and of its slots against a full store (`full`), counting the rows that differ.
std::size_t owned_rows_differ(ShardedEmbeddings& se, ParamStore<float>& full, bool with_state) {
  std::size_t differ = 0;
  for (std::size_t k = 0; k < se.num_tables(); ++k) {
    const NodeId p = se.table(k);
    const auto D = static_cast<std::size_t>(full.value(p).shape()[1]);
    for (std::int64_t i = 0; i < se.owned_rows(k); ++i) {
      const auto row = static_cast<std::size_t>(se.global_row(i));
      differ += !same_bits(se.owned_value(k, i), full.value(p).data() + row * D, D);
      for (std::size_t s = 0; with_state && s < full.slot_names().size(); ++s) {
        const float* mine = se.owned_slot(k, s, i);
        differ += mine == nullptr || !same_bits(mine, full.slot(p, s) + row * D, D);
      }
    }
  }
  return differ;
}

}  // namespace

TEST_CASE("deferred tables: each rank draws only its rows, init()'s bits, and trains to the replicated run's bits",
          "[distributed][shard][deferred]") {
  Communicator& w = world();
  const Dataset d = data(), ev = data(300);
  for (const char* optimizer : {"sgd", "adam"}) {
    INFO(optimizer);
    Run rep = fresh(d, optimizer), sh = fresh_deferred(d, optimizer);
    sh.se = std::make_unique<ShardedEmbeddings>(w, *sh.model, *sh.opt);
    REQUIRE(sh.se->num_tables() >= 1);
    CHECK(&sh.model->params().table(sh.se->table(0)) == &sh.se->storage(0));
    CHECK(owned_rows_differ(*sh.se, rep.model->params(), false) == 0);
    train_replicated(w, rep, d, &ev, options());
    train_sharded_run(w, sh, d, &ev, options());
    REQUIRE(sh.result.steps == 20);
    const Diff diff = compare(sh, rep);
    CHECK(diff.compared_rows > 0);
    CHECK(diff.dense == 0);
    CHECK(diff.rows == 0);
    CHECK(diff.state == 0);
    for (std::size_t e = 0; e < rep.result.epochs.size(); ++e)
      CHECK(rep.result.epochs[e].mean_losses == sh.result.epochs[e].mean_losses);
  }
  // Another seed draws other rows (the comparison above can fail).
  Run rep = fresh(d, "sgd"), other = fresh_deferred(d, "sgd", model_config(d), 12);
  other.se = std::make_unique<ShardedEmbeddings>(w, *other.model, *other.opt);
  CHECK(owned_rows_differ(*other.se, rep.model->params(), false) > 0);
}

TEST_CASE("deferred tables: a 200k-row table is never allocated, a rank holds ~V/N rows and a working copy",
          "[distributed][shard][deferred]") {
  Communicator& w = world();
  const int N = w.size();
  const Dataset d = data(640, 40000);  // 5 fields × 40,000 ids: a 200,000-row table
  ModelConfig cfg = model_config(d);
  cfg.dim = 6;
  Run sh = fresh_deferred(d, "adam", cfg);
  ParamStore<float>& ps = sh.model->params();
  const std::int64_t V = cfg.vocab, D = cfg.dim;
  REQUIRE(V == 200000);
  const std::size_t table_bytes = static_cast<std::size_t>(V * D) * sizeof(float);
  // The store: the dense layers only (a few thousand values), before and after sharding and training.
  CHECK(ps.allocated_bytes() < table_bytes / 100);
  sh.se = std::make_unique<ShardedEmbeddings>(w, *sh.model, *sh.opt);
  ShardedEmbeddings& se = *sh.se;
  REQUIRE(se.num_tables() == 1);
  const std::int64_t owned = se.owned_rows(0);
  CHECK(owned == (V + N - 1 - w.rank()) / N);
  // Owned rows (dim floats) and the merged gradient's row index (an int32 per owned row): nothing of size V.
  const auto share = static_cast<std::size_t>(owned) * (static_cast<std::size_t>(D) * sizeof(float) + 4);
  CHECK(se.held_bytes() >= static_cast<std::size_t>(owned * D) * sizeof(float));
  CHECK(se.held_bytes() <= share + 4096);
  TrainOptions o = options();
  o.max_steps = 6;
  train_sharded_run(w, sh, d, nullptr, o);
  // After training: + Adam's two slots for the owned rows, + the touched rows of a step; the store a working copy
  // of at most 1.5 × the distinct ids of one batch share (64 rows × 5 fields).
  CHECK(se.working_rows(0) <= 64 * 5 * 3 / 2);
  CHECK(ps.allocated_bytes() < table_bytes / 20);
  const std::size_t with_state =
      static_cast<std::size_t>(owned) * (3 * static_cast<std::size_t>(D) * sizeof(float) + 4);
  CHECK(se.held_bytes() <= with_state + 64 * 5 * static_cast<std::size_t>(D) * sizeof(float) * 2 + 4096);
  CHECK(se.held_bytes() < (3 * table_bytes + static_cast<std::size_t>(V) * 4) / static_cast<std::size_t>(N) +
                             table_bytes / 20);
  // What all ranks hold together is one table with its state, not N.
  const auto total = w.allreduce_one(static_cast<std::int64_t>(se.held_bytes()), ReduceOp::Sum);
  const std::size_t slack = (std::size_t{64} << 10) * static_cast<std::size_t>(N);  // the touched rows' buffers
  CHECK(total < static_cast<std::int64_t>(3 * table_bytes + static_cast<std::size_t>(V) * 4 + slack));
}

TEST_CASE("deferred tables: a checkpoint streamed in many chunks is the replicated run's, file for file",
          "[distributed][shard][deferred]") {
  Communicator& w = world();
  const Dataset d = data();
  SharedTemp tmp(w, "shard_stream");
  Run rep = fresh(d, "adam"), sh = fresh_deferred(d, "adam");
  train_replicated(w, rep, d, nullptr, options());
  train_sharded_run(w, sh, d, nullptr, options());
  sh.se->set_save_chunk_rows(7);  // 200 rows: 29 chunks, none a multiple of N
  const nlohmann::json model = to_json(sh.model->config());
  sh.se->save(tmp.root + "/sharded", sh.result.steps, model, nlohmann::json::object());
  if (w.rank() == 0) {
    save_checkpoint(tmp.root + "/replicated", rep.model->params(), rep.opt.get(), model, nlohmann::json::object(),
                    rep.result.steps);
    std::size_t files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(tmp.root + "/replicated")) {
      if (!e.is_regular_file()) continue;
      const std::string rel = std::filesystem::relative(e.path(), tmp.root + "/replicated").string();
      INFO(rel);
      ++files;
      CHECK(slurp(e.path().string()) == slurp(tmp.root + "/sharded/" + rel));
    }
    CHECK(files >= 10);
  }
  w.barrier();
  // Every rank loads it as one process would.
  Run back = fresh(d, "adam");
  CHECK(load_checkpoint(tmp.root + "/sharded", back.model->params(), back.opt.get()).step == 20);
  CHECK(arrays_differ(back.model->params(), rep.model->params()) == 0);
  w.barrier();
}

TEST_CASE("deferred tables: --init on N ranks reads each rank's rows and state exactly, and checks the checksum",
          "[distributed][shard][deferred]") {
  Communicator& w = world();
  const Dataset d = data();
  SharedTemp tmp(w, "shard_rows");
  const std::string ck = tmp.root + "/one", bad = tmp.root + "/bad";
  if (w.rank() == 0) {
    save_one_process_run(d, ck);
    std::filesystem::copy(ck, bad, std::filesystem::copy_options::recursive);
    for (const auto& e : std::filesystem::directory_iterator(bad + "/optimizer"))
      if (e.path().filename().string().find("adam_v") != std::string::npos &&
          e.path().filename().string().find("embedding") != std::string::npos) {
        std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(-3, std::ios::end);
        f.put('\x55');
      }
  }
  w.barrier();
  Run full = fresh(d, "adam");
  load_checkpoint(ck, full.model->params(), full.opt.get());
  // Parameters and state.
  Run sh = fresh_deferred(d, "adam");
  sh.result.steps = load_checkpoint(ck, sh.model->params(), sh.opt.get()).step;
  sh.se = std::make_unique<ShardedEmbeddings>(w, *sh.model, *sh.opt, from_checkpoint(ck));
  REQUIRE(sh.se->num_tables() >= 1);
  CHECK(sh.se->owned_slot(0, 0, 0) != nullptr);
  CHECK(owned_rows_differ(*sh.se, full.model->params(), true) == 0);
  // It continues as the replicated run does.
  TrainOptions more = options();
  more.max_steps = 35;
  Run rep = fresh(d, "adam");
  rep.result.steps = load_checkpoint(ck, rep.model->params(), rep.opt.get()).step;
  train_replicated(w, rep, d, nullptr, more);
  train_sharded_run(w, sh, d, nullptr, more);
  const Diff diff = compare(sh, rep);
  CHECK(diff.dense == 0);
  CHECK(diff.rows == 0);
  CHECK(diff.state == 0);
  // Parameters only (--reset-optimizer): the rows, no state.
  Run p = fresh_deferred(d, "adam");
  load_checkpoint(ck, p.model->params(), nullptr);
  p.se = std::make_unique<ShardedEmbeddings>(w, *p.model, *p.opt, from_checkpoint(ck, false));
  CHECK(p.se->owned_slot(0, 0, 0) == nullptr);
  CHECK(owned_rows_differ(*p.se, full.model->params(), false) == 0);
  // A damaged state file of the table (found by its checksum, the file streamed in chunks).
  Run b = fresh_deferred(d, "adam");
  load_checkpoint(bad, b.model->params(), b.opt.get());  // the table's arrays are not read here
  CHECK_THROWS_WITH(ShardedEmbeddings(w, *b.model, *b.opt, from_checkpoint(bad)),
                    Catch::Matchers::Contains("checksum mismatch") && Catch::Matchers::Contains("adam_v"));
  w.barrier();
}

TEST_CASE("deferred tables: a save that fails on rank 0 or finds a NaN on any rank fails on every rank, no hang",
          "[distributed][shard][deferred]") {
  Communicator& w = world();
  const int N = w.size();
  const Dataset d = data();
  SharedTemp tmp(w, "shard_fail");
  Run sh = fresh_deferred(d, "adam");
  TrainOptions o = options();
  o.max_steps = 3;
  train_sharded_run(w, sh, d, nullptr, o);
  const nlohmann::json model = to_json(sh.model->config());
  // A target rank 0 may not write (a file of someone else's): it fails before the first chunk; the others' rows
  // are taken all the same and every rank reports the error.
  if (w.rank() == 0) std::ofstream(tmp.root + "/not_a_dir") << "mine\n";
  w.barrier();
  CHECK_THROWS_WITH(sh.se->save(tmp.root + "/not_a_dir", 3, model, nlohmann::json::object()),
                    Catch::Matchers::Contains("not_a_dir"));
  // Still in step: a good save works afterwards.
  sh.se->save(tmp.root + "/good", 3, model, nlohmann::json::object());
  // A NaN in the last rank's first row: refused everywhere before anything is written.
  if (w.rank() == N - 1) const_cast<float*>(sh.se->owned_value(0, 0))[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(sh.se->save(tmp.root + "/nan", 3, model, nlohmann::json::object()),
                    Catch::Matchers::Contains("NaN or Inf") &&
                        Catch::Matchers::Contains("rank " + std::to_string(N - 1)));
  if (w.rank() == 0) {
    CHECK_FALSE(std::filesystem::exists(tmp.root + "/nan"));
    CHECK(read_checkpoint_info(tmp.root + "/good").step == 3);
  }
  w.barrier();
}

TEST_CASE("row-sharded storage: the rows it holds are init()'s, the lookups read them, its gradient updates them",
          "[distributed][shard][storage]") {
  Communicator& w = world();
  const int N = w.size(), r = w.rank();
  const Dataset d = data();
  Run full = fresh(d, "sgd"), sh = fresh_deferred(d, "sgd");
  sh.se = std::make_unique<ShardedEmbeddings>(w, *sh.model, *sh.opt);
  ParamStore<float>& ps = sh.model->params();
  const ParamStore<float>& pf = full.model->params();
  REQUIRE(sh.se->num_tables() == 1);
  const NodeId p = sh.se->table(0);
  const RowShardedTable& st = sh.se->storage(0);
  REQUIRE(&ps.table(p) == &st);
  const auto D = static_cast<std::size_t>(st.dim());
  CHECK(st.rows() == pf.table(p).rows());
  CHECK(st.held_rows() == sh.se->owned_rows(0));
  // Held row i is table row i·N + rank, with the whole store's initial bits.
  for (std::int64_t i = 0; i < st.held_rows(); ++i) {
    CHECK(st.table_row(i) == i * N + r);
    CHECK(same_bits(st.held_values() + static_cast<std::size_t>(i) * D,
                    pf.value(p).data() + static_cast<std::size_t>(i * N + r) * D, D));
  }
  // A batch's lookups read the rows their owners hold: after the fetch every (remapped) id's working row is the
  // table row it stood for.
  std::vector<std::int64_t> rows(16);
  std::iota(rows.begin(), rows.end(), std::int64_t{16} * r);
  sh.model->bind(d, rows);
  const NodeId ids = sh.model->handle().ids;
  const std::vector<std::int64_t> asked = sh.model->exec().ids(ids).ids;
  sh.se->fetch(true);
  const std::vector<std::int64_t>& work = sh.model->exec().ids(ids).ids;
  REQUIRE(work.size() == asked.size());
  for (std::size_t k = 0; k < asked.size(); ++k) {
    INFO("id " << asked[k] << ", working row " << work[k]);
    CHECK(same_bits(ps.value(p).data() + static_cast<std::size_t>(work[k]) * D,
                    pf.value(p).data() + static_cast<std::size_t>(asked[k]) * D, D));
  }
  // A gradient over held rows moves those rows only (by the optimizer's rule), and nothing else.
  const std::vector<float> before(st.values());
  SparseRows<float> g;
  g.init(st.held_rows(), st.dim());
  const std::int32_t slot0 = g.index(0);  // (first: it grows the values)
  float* g0 = g.values.data() + static_cast<std::size_t>(slot0) * D;
  for (std::size_t j = 0; j < D; ++j) g0[j] = 1.0f;
  const std::int64_t step = sh.opt->begin_step(ps);  // makes the optimizer's slots, the storage's included
  CHECK(st.num_slots() == sh.opt->slot_names().size());
  ps.table(p).apply(g, *sh.opt, step);
  for (std::size_t j = 0; j < D; ++j) CHECK(st.values()[j] < before[j]);
  CHECK(std::memcmp(st.values().data() + D, before.data() + D, (before.size() - D) * sizeof(float)) == 0);
  // The working rows' gradient is not applied in place: it goes to the owners.
  CHECK_THROWS_WITH(ps.table(p).apply_lookup(ps.sparse_grad(p), *sh.opt, 1),
                    Catch::Matchers::Contains("owners"));
}
