// Streaming training / evaluation / prediction from a v3 cache against the in-memory path on the same rows.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "data/aliccp_synth.hpp"
#include "data/readers.hpp"
#include "data/stream.hpp"
#include "data/stream_cache.hpp"
#include "support/alloc_counter.hpp"
#include "support/temp_dir.hpp"
#include "train/batch_source.hpp"
#include "train/loop.hpp"

using namespace funnel;

namespace {

struct Fixture {
  test::TempDir dir{"stream_loop"};
  std::string cache;
  Fixture() {
    AliccpSynthConfig c;
    c.rows = 2500;
    c.seed = 11;
    write_aliccp_synth(c, dir.path.string());
    ReadOptions o;
    o.mapping.buckets = 1 << 8;
    o.weights = PoolWeights::Values;
    FeatureMap map;
    cache = dir.file("c.cache");
    convert_to_cache("aliccp:" + dir.path.string(), o, map, cache, nullptr, 300);
  }
};

ModelConfig config(const CacheFile& f) {
  ModelConfig c;
  c.num_fields = f.num_fields();
  c.vocab = f.vocab();
  c.dim = 4;
  c.hidden = {16, 8};
  return c;
}

bool same_params(Model& a, Model& b) {
  const auto& pa = a.exec().params();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const auto& x = a.exec().param(pa[i]);
    const auto& y = b.exec().param(b.exec().params()[i]);
    if (x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("stream loop: unshuffled streaming training is bit-identical to the in-memory loop", "[stream]") {
  const Fixture fx;
  const CacheFile f(fx.cache);
  FeatureMap map;
  const Dataset d = read_cache(fx.cache, map);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 128;
  o.shuffle = false;
  o.eval_batch_size = 500;
  Model a(config(f)), b(config(f));
  a.exec().init_params(3);
  b.exec().init_params(3);
  OptimizerConfig oc;
  oc.lr = 0.01;
  auto oa = make_optimizer<float>("adam", oc);
  auto ob = make_optimizer<float>("adam", oc);
  const TrainResult ra = train(a, *oa, d, &d, o, {});
  StreamOptions so;
  so.batch_size = 128;
  so.shuffle = false;
  so.prefetch = 3;
  CacheSource src({&f}, so);
  so.batch_size = o.eval_batch_size;
  CacheSource eval_src({&f}, so);
  const TrainResult rb = train(b, *ob, src, [&](Model& m) { return evaluate(m, eval_src); }, o, {});
  CHECK(ra.steps == rb.steps);
  CHECK(same_params(a, b));
  REQUIRE(ra.epochs.size() == 2);
  REQUIRE(rb.epochs.size() == 2);
  for (int e = 0; e < 2; ++e) {
    CHECK(ra.epochs[e].mean_losses == rb.epochs[e].mean_losses);
    const auto &x = ra.epochs[e].eval, &y = rb.epochs[e].eval;
    CHECK(x.rows == y.rows);
    CHECK(x.clicks == y.clicks);
    CHECK(x.ctr_auc == y.ctr_auc);
    CHECK(x.cvr_auc == y.cvr_auc);
    CHECK(x.ctcvr_auc == y.ctcvr_auc);
    CHECK(x.ctr_logloss == y.ctr_logloss);
    CHECK(x.ctcvr_logloss == y.ctcvr_logloss);
    CHECK(x.mean_pctr == y.mean_pctr);
    CHECK(x.cvr_rate == y.cvr_rate);
  }
  // Predictions in order equal the in-memory ones.
  const Predictions p = predict(b, d, 300);
  std::int64_t at = 0;
  bool same = true;
  so.batch_size = 300;
  CacheSource pred_src({&f}, so);
  std::vector<NodeId> cols_of;
  for (const auto& c : b.handle().columns) cols_of.push_back(c.node);
  forward_each_batch(b, pred_src, cols_of, [&](const std::vector<const float*>& cols, std::int64_t n) {
    REQUIRE(cols.size() == p.columns.size());
    for (std::int64_t i = 0; i < n; ++i, ++at)
      for (std::size_t k = 0; k < cols.size(); ++k) same = same && cols[k][i] == p.columns[k][static_cast<std::size_t>(at)];
  });
  CHECK(at == d.rows());
  CHECK(same);

  // A part of the cache (a held-out tail of whole chunks) streams just those rows.
  const std::int64_t cut = tail_split_chunk(f, 0.2);
  CHECK(cut == 7);  // 2500 rows in chunks of 300: rows 2100.. are the last fifth (nearest chunk boundary)
  Dataset head, tail;
  split_tail(d, static_cast<double>(d.rows() - f.chunk_begin(cut)) / static_cast<double>(d.rows()), head, tail);
  REQUIRE(tail.rows() == d.rows() - f.chunk_begin(cut));
  const FunnelMetrics want = evaluate(b, tail, 256);
  so.batch_size = 256;
  CacheSource tail_src({&f, cut, -1}, so);
  const FunnelMetrics got = evaluate(b, tail_src);
  CHECK(got.rows == want.rows);
  CHECK(got.ctr_auc == want.ctr_auc);
  CHECK(got.ctcvr_logloss == want.ctcvr_logloss);
}

TEST_CASE("stream loop: shuffled streaming training is deterministic for a seed and differs across seeds", "[stream]") {
  const Fixture fx;
  const CacheFile f(fx.cache);
  auto run = [&](std::uint64_t seed) {
    auto m = std::make_unique<Model>(config(f));
    m->exec().init_params(1);
    OptimizerConfig oc;
    auto opt = make_optimizer<float>("adam", oc);
    TrainOptions o;
    o.batch_size = 100;
    StreamOptions so;
    so.batch_size = 100;
    so.shuffle_window = 700;
    so.seed = seed;
    CacheSource src({&f}, so);
    train(*m, *opt, src, {}, o, {});
    return m;
  };
  auto a = run(5), b = run(5), c = run(6);
  CHECK(same_params(*a, *b));
  CHECK_FALSE(same_params(*a, *c));
}

TEST_CASE("stream loop: streamed metrics equal evaluate_funnel on the same predictions", "[stream][metrics]") {
  std::vector<float> pctr{0.1f, 0.4f, 0.4f, 0.9f, 0.2f, 0.0f}, pcvr{0.5f, 0.2f, 0.3f, 0.3f, 0.1f, 0.7f},
      pctcvr{0.05f, 0.08f, 0.12f, 0.27f, 0.02f, 0.0f}, click{0, 1, 0, 1, 1, 0}, ctcvr{0, 1, 0, 0, 1, 0};
  FunnelInputs in;
  in.pctr = pctr;
  in.pcvr = pcvr;
  in.pctcvr = pctcvr;
  in.click = click;
  in.ctcvr = ctcvr;
  const FunnelMetrics want = evaluate_funnel(in);
  StreamingFunnelMetrics s;
  s.add(pctr.data(), pcvr.data(), pctcvr.data(), click.data(), ctcvr.data(), nullptr, 4);
  s.add(pctr.data() + 4, pcvr.data() + 4, pctcvr.data() + 4, click.data() + 4, ctcvr.data() + 4, nullptr, 2);
  const FunnelMetrics got = s.result();
  CHECK(got.ctr_auc == want.ctr_auc);
  CHECK(got.cvr_auc == want.cvr_auc);
  CHECK(got.ctcvr_auc == want.ctcvr_auc);
  CHECK(got.ctr_logloss == want.ctr_logloss);
  CHECK(got.cvr_logloss == want.cvr_logloss);
  CHECK(got.mean_pcvr_clicked == want.mean_pcvr_clicked);
  CHECK(got.clicks == 3);
  CHECK(std::isnan(StreamingFunnelMetrics().result().ctr_auc));
}

TEST_CASE("stream loop: steady training steps streamed from a cache do not allocate (reader thread included)",
          "[stream][no_alloc]") {
  funnel::test::prime_backtrace();
  const Fixture fx;
  const CacheFile f(fx.cache);
  Model m(config(f));
  m.exec().init_params(2);
  OptimizerConfig oc;
  auto opt = make_optimizer<float>("adam", oc);
  for (const bool shuffle : {false, true}) {
    INFO("shuffle " << shuffle);
    StreamOptions so;
    so.batch_size = 100;  // 25 batches of 100 rows: no shorter last batch
    so.shuffle = shuffle;
    so.shuffle_window = 400;
    so.prefetch = 2;
    CacheSource src({&f}, so);
    TrainOptions o;
    o.epochs = 3;
    TrainHooks h;
    // Count from the middle of the second epoch (every buffer has seen the batch shapes by then) to its end (not
    // across the boundary: a new epoch starts a reader thread, and std::thread allocates its state).
    long counted = -1;
    std::int64_t last_step = 0;
    h.on_step = [&](const StepInfo& i) {
      if (i.epoch == 1 && i.rows_done == 1200) funnel::test::start_counting();
      if (i.epoch == 1 && i.rows_done == 2500) counted = funnel::test::stop_counting();
      last_step = i.step;
    };
    train(m, *opt, src, {}, o, h);
    CHECK(last_step == 75);
    if (counted) funnel::test::print_traces(counted);
    CHECK(counted == 0);
  }
}
