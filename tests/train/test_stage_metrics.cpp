// Per-stage metrics from the model's handle (train/metrics.*, train/metrics_stream.cpp, train/metrics_report.*):
// GAUC against a hand computation, every stage of a 3-stage funnel against the in-memory reference, ESMM's
// named two-stage numbers unchanged, user keys through a cache, and the JSON shape.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "data/aliccp_synth.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"
#include "data/synthetic.hpp"
#include "support/small_model.hpp"
#include "support/temp_dir.hpp"
#include "train/batch_source.hpp"
#include "train/loop.hpp"
#include "train/metrics_report.hpp"

using namespace funnel;

namespace {

// Users A (3 rows, AUC 1), B (2 rows, AUC 0), C (positives only: left out), D (4 rows: 3.5 of 4 pairs), and a
// row without a user (-1: left out). GAUC = (3·1 + 2·0 + 4·0.875) / 9.
const std::vector<float> kScores{0.9f, 0.2f, 0.5f, 0.3f, 0.6f, 0.4f, 0.5f, 0.5f, 0.1f, 0.7f, 0.95f};
const std::vector<float> kLabels{1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0};
const std::vector<std::int64_t> kUsers{10, 10, 10, 20, 20, 30, 40, 40, 40, 40, -1};
constexpr double kGauc = 6.5 / 9.0;

SyntheticConfig small(std::int64_t stages) {
  SyntheticConfig c;
  c.rows = 12000;
  c.fields = 5;
  c.vocab_per_field = 40;
  c.stages = stages;
  c.seed = 3;
  c.ctr = 0.2;
  c.ctcvr = 0.06;
  c.later_stage_ratio = 0.5;
  return c;
}

ModelConfig model_for(const Dataset& d) { return test::sized_for(d, "esmm", 4, {12, 6}); }

// A few epochs of Adam so that the predictions separate the classes.
void fit(Model& m, const Dataset& d) {
  m.exec().init_params(5);
  OptimizerConfig oc;
  oc.lr = 0.02;
  auto opt = make_optimizer<float>("adam", oc);
  TrainOptions o;
  o.epochs = 2;
  o.batch_size = 512;
  train(m, *opt, d, nullptr, o, {});
}

std::vector<float> column(const Dataset& d, std::int64_t s, bool entire = false) {
  std::vector<float> y(static_cast<std::size_t>(d.rows()));
  for (std::int64_t r = 0; r < d.rows(); ++r)
    y[static_cast<std::size_t>(r)] =
        entire ? d.entire_labels[static_cast<std::size_t>(r * d.num_stages + s)] : d.label(r, s);
  return y;
}

}  // namespace

TEST_CASE("group_auc: a hand-computed example", "[metrics][gauc]") {
  CHECK(group_auc(kScores, kLabels, kUsers) == Approx(kGauc).epsilon(1e-12));
  // Not the AUC of all rows together: the grouping matters.
  CHECK(std::abs(roc_auc(kScores, kLabels) - kGauc) > 0.05);
  // A mask selects rows before grouping: without user B's negative, B has one class and drops out.
  std::vector<std::uint8_t> mask(kScores.size(), 1);
  mask[4] = 0;
  CHECK(group_auc(kScores, kLabels, kUsers, mask) == Approx((3.0 + 3.5) / 7.0).epsilon(1e-12));
  CHECK(std::isnan(group_auc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1, 0}, std::vector<std::int64_t>{1, 2})));
}

TEST_CASE("streaming GAUC equals the hand-computed example, batch by batch", "[metrics][gauc]") {
  StreamingFunnelMetrics acc;
  // Two batches (split inside user D), one stage: reach = given previous.
  for (auto [lo, hi] : {std::pair<std::size_t, std::size_t>{0, 7}, {7, kScores.size()}}) {
    StreamingFunnelMetrics::Batch b;
    b.n = static_cast<std::int64_t>(hi - lo);
    b.reach = b.cond = {kScores.data() + lo};
    b.labels = {kLabels.data() + lo};
    b.users = kUsers.data() + lo;
    acc.add(b);
  }
  const FunnelMetrics m = acc.result();
  REQUIRE(m.has_users);
  REQUIRE(m.stages.size() == 1);
  CHECK(m.stages[0].gauc == Approx(kGauc).epsilon(1e-12));
  CHECK(m.stages[0].auc == roc_auc(kScores, kLabels));
}

TEST_CASE("a 3-stage ESMM is evaluated at every stage, each equal to the reference computation", "[metrics]") {
  const Dataset d = make_synthetic(small(3));
  Model m(model_for(d));
  fit(m, d);
  const FunnelMetrics got = evaluate(m, d, 1000);
  REQUIRE(got.stages.size() == 3);
  CHECK(got.stages[2].name == "stage2");
  CHECK_FALSE(got.has_users);
  const ModelHandle& h = m.handle();
  std::vector<NodeId> nodes(h.stage_probs);
  nodes.insert(nodes.end(), h.cond_probs.begin(), h.cond_probs.end());
  const auto p = predict_nodes(m, d, 777, nodes);
  for (std::int64_t s = 0; s < 3; ++s) {
    INFO("stage " << s);
    const auto y = column(d, s);
    std::vector<std::uint8_t> prev(y.size(), 1);
    if (s > 0)
      for (std::int64_t r = 0; r < d.rows(); ++r) prev[static_cast<std::size_t>(r)] = d.label(r, s - 1);
    const auto& reach = p[static_cast<std::size_t>(s)];
    const auto& cond = p[static_cast<std::size_t>(3 + s)];
    const StageMetrics& x = got.stages[static_cast<std::size_t>(s)];
    CHECK(x.auc == roc_auc(reach, y));
    CHECK(x.auc > 0.6);
    CHECK(x.logloss == Approx(log_loss(reach, y)).epsilon(1e-9));
    CHECK(x.mean_pred == Approx(mean_of(reach)).epsilon(1e-9));
    CHECK(x.rate == Approx(mean_of(y)).epsilon(1e-12));
    CHECK(x.cond_auc == roc_auc(cond, y, prev));
    CHECK(x.cond_logloss == Approx(log_loss(cond, y, prev)).epsilon(1e-9));
    CHECK(x.cond_mean_pred == Approx(mean_of(cond, prev)).epsilon(1e-9));
    CHECK(x.cond_rate == Approx(mean_of(y, prev)).epsilon(1e-12));
    CHECK(x.cond_rows == static_cast<std::int64_t>(std::count(prev.begin(), prev.end(), 1)));
    if (s > 0) {
      REQUIRE(x.has_entire_space);
      const auto e = column(d, s, true);
      CHECK(x.entire_auc == roc_auc(cond, e));
      CHECK(x.entire_logloss == Approx(log_loss(cond, e)).epsilon(1e-9));
      CHECK(x.entire_rate == Approx(mean_of(e)).epsilon(1e-12));
    }
  }
  // The table and the JSON show the third stage.
  EpochReport rep;
  rep.has_eval = true;
  rep.eval = got;
  const std::string table = metrics_table({rep});
  CHECK(table.find("stage2_auc") != std::string::npos);
  CHECK(table.find("stage2_cond_auc") != std::string::npos);
  const nlohmann::json j = metrics_to_json(got);
  REQUIRE(j.at("stages").size() == 3);
  CHECK(j["stages"][2]["name"] == "stage2");
  CHECK(j["stages"][2]["auc"].get<double>() == got.stages[2].auc);
  CHECK(j["stages"][2]["cond_logloss"].get<double>() == got.stages[2].cond_logloss);
  CHECK_FALSE(j["stages"][2].contains("gauc"));
  CHECK(j["stages"][2].contains("entire_auc"));
}

TEST_CASE("ESMM's named metrics are today's numbers on the same run, and the stages repeat them", "[metrics]") {
  const Dataset d = make_synthetic(small(2));
  Model m(model_for(d));
  fit(m, d);
  const FunnelMetrics got = evaluate(m, d, 1000);
  // Today's reference: evaluate_funnel on the model's pctr, pcvr, pctcvr columns.
  const ModelHandle& h = m.handle();
  const auto p = predict_nodes(m, d, 1000, {h.column("pctr"), h.column("pcvr"), h.column("pctcvr")});
  const auto click = column(d, 0), ctcvr = column(d, 1), entire = column(d, 1, true);
  const FunnelMetrics ref = evaluate_funnel({p[0], p[1], p[2], click, ctcvr, entire});
  CHECK(got.rows == ref.rows);
  CHECK(got.clicks == ref.clicks);
  CHECK(got.conversions == ref.conversions);
  CHECK(got.ctr_auc == ref.ctr_auc);
  CHECK(got.cvr_auc == ref.cvr_auc);
  CHECK(got.ctcvr_auc == ref.ctcvr_auc);
  CHECK(got.cvr_auc_entire_space == ref.cvr_auc_entire_space);
  CHECK(got.ctr_logloss == Approx(ref.ctr_logloss).epsilon(1e-9));
  CHECK(got.cvr_logloss == Approx(ref.cvr_logloss).epsilon(1e-9));
  CHECK(got.ctcvr_logloss == Approx(ref.ctcvr_logloss).epsilon(1e-9));
  CHECK(got.cvr_logloss_entire_space == Approx(ref.cvr_logloss_entire_space).epsilon(1e-9));
  CHECK(got.mean_pcvr_clicked == Approx(ref.mean_pcvr_clicked).epsilon(1e-9));
  CHECK(got.cvr_rate == Approx(ref.cvr_rate).epsilon(1e-12));
  CHECK(got.mean_pcvr_all == Approx(ref.mean_pcvr_all).epsilon(1e-9));
  CHECK(got.cvr_rate_entire_space == Approx(ref.cvr_rate_entire_space).epsilon(1e-12));
  // The per-stage report holds the same numbers under the stage names.
  REQUIRE(got.stages.size() == 2);
  CHECK(got.stages[0].name == "click");
  CHECK(got.stages[1].name == "conversion");
  CHECK(got.stages[0].auc == ref.ctr_auc);
  CHECK(got.stages[1].auc == ref.ctcvr_auc);
  CHECK(got.stages[1].cond_auc == ref.cvr_auc);
  CHECK(got.stages[1].entire_auc == ref.cvr_auc_entire_space);
  // The JSON keys of today's reports are all there with today's values.
  const nlohmann::json j = metrics_to_json(got);
  for (const char* k : {"rows", "clicks", "conversions", "ctr_auc", "cvr_auc", "ctcvr_auc", "ctr_logloss",
                        "cvr_logloss", "ctcvr_logloss", "mean_pctr", "click_rate", "mean_pcvr_clicked", "cvr_rate",
                        "mean_pctcvr", "ctcvr_rate", "cvr_auc_entire_space", "cvr_logloss_entire_space"})
    CHECK(j.contains(k));
  CHECK(j["cvr_auc"].get<double>() == ref.cvr_auc);
  CHECK(j["stages"].size() == 2);
  // The table keeps today's column names.
  EpochReport rep;
  rep.has_eval = true;
  rep.eval = got;
  const std::string table = metrics_table({rep});
  for (const char* k : {"ctr_auc", "cvr_auc", "ctcvr_auc", "cvr_auc_entire", "ctr_logloss", "ctcvr_logloss"})
    CHECK(table.find(k) != std::string::npos);
  CHECK(table.find("stage2") == std::string::npos);
}

TEST_CASE("Ali-CCP data's common-feature index is the user key, in memory and streamed from a cache", "[metrics][gauc]") {
  test::TempDir dir{"stage_metrics"};
  AliccpSynthConfig c;
  c.rows = 3000;
  c.seed = 4;
  write_aliccp_synth(c, dir.path.string());
  ReadOptions o;
  o.mapping.buckets = 1 << 8;
  FeatureMap map;
  const std::string cache = dir.file("a.cache");
  convert_to_cache("aliccp:" + dir.path.string(), o, map, cache, nullptr, 400);
  const CacheFile f(cache);
  REQUIRE(f.has_user_keys());
  const Dataset d = f.to_dataset();
  REQUIRE(d.has_user_keys());
  ModelConfig mc = model_for(d);
  Model m(mc);
  m.exec().init_params(2);
  StreamOptions so;
  so.batch_size = 333;
  so.shuffle = false;
  CacheSource src(CachePart{&f}, so);
  const FunnelMetrics streamed = evaluate(m, src);
  const FunnelMetrics mem = evaluate(m, d, 512);
  REQUIRE(streamed.has_users);
  REQUIRE(mem.has_users);
  // The reference: group_auc over the rows' common-feature blocks.
  const auto p = predict_nodes(m, d, 1000, {m.handle().column("pctr"), m.handle().column("pcvr")});
  std::vector<std::int64_t> users(static_cast<std::size_t>(d.rows()));
  for (std::int64_t r = 0; r < d.rows(); ++r) users[static_cast<std::size_t>(r)] = d.row_block[static_cast<std::size_t>(r)];
  const auto click = column(d, 0), conv = column(d, 1);
  std::vector<std::uint8_t> clicked(click.begin(), click.end());
  const double ctr_gauc = group_auc(p[0], click, users);
  const double cvr_gauc = group_auc(p[1], conv, users, clicked);
  REQUIRE_FALSE(std::isnan(ctr_gauc));
  CHECK(mem.stages[0].gauc == Approx(ctr_gauc).epsilon(1e-12));
  CHECK(streamed.stages[0].gauc == Approx(ctr_gauc).epsilon(1e-12));
  if (std::isnan(cvr_gauc)) CHECK(std::isnan(streamed.stages[1].cond_gauc));
  else CHECK(streamed.stages[1].cond_gauc == Approx(cvr_gauc).epsilon(1e-12));
  const nlohmann::json j = metrics_to_json(streamed);
  CHECK(j.contains("ctr_gauc"));
  CHECK(j["stages"][0].contains("gauc"));
}

TEST_CASE("a csv user column becomes user keys that survive a cache", "[metrics][gauc]") {
  const std::string text = "click,purchase,user,item\n1,0,u1,a\n0,0,u1,b\n1,1,u2,a\n0,0,,c\n";
  ReadOptions o;
  o.user_column = "user";
  FeatureMap map;
  const Dataset d = read_csv_buffer(text, "t.csv", o, map);
  REQUIRE(d.user_keys.size() == 4);
  CHECK(d.user_keys[0] == d.user_keys[1]);
  CHECK(d.user_keys[0] != d.user_keys[2]);
  CHECK(d.user_keys[0] >= 0);
  CHECK(d.user_keys[3] == -1);
  CHECK(d.num_fields == 2);  // the user column stays a field
  test::TempDir dir{"stage_metrics_csv"};
  write_cache(d, map, dir.file("u.cache"));
  FeatureMap m2;
  const Dataset back = read_cache(dir.file("u.cache"), m2);
  CHECK(back.user_keys == d.user_keys);
  const CacheFile f(dir.file("u.cache"));
  CHECK(f.has_user_keys());
  CHECK(f.user_key(2) == d.user_keys[2]);
  // Without the option: no keys, no memory.
  FeatureMap m3;
  CHECK(read_csv_buffer(text, "t.csv", ReadOptions{}, m3).user_keys.empty());
  o.user_column = "nobody";
  FeatureMap m4;
  CHECK_THROWS_WITH(read_csv_buffer(text, "t.csv", o, m4), Catch::Contains("t.csv:1: field 'nobody'"));
}
