// The Predictor: the same numbers as `funnel predict` and the training-side forward for every registered model,
// structured rows == training-format lines, documented behaviour of unknown fields and unseen values, threads,
// no allocation in steady state, and hot swap.
#include <catch2/catch.hpp>

#include <atomic>
#include <charconv>
#include <cmath>
#include <thread>

#include "autodiff/executor.hpp"
#include "models/model.hpp"
#include "serving/predictor.hpp"
#include "serving_util.hpp"
#include "support/alloc_counter.hpp"
#include "support/temp_dir.hpp"
#include "train/loop.hpp"
#include "train/trainer.hpp"

using namespace funnel;
using namespace funnel::test;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string cell;
  std::stringstream ss(s);
  while (std::getline(ss, cell, ',')) out.push_back(cell);
  if (!s.empty() && s.back() == ',') out.push_back("");
  return out;
}

// The fixture's data lines as structured rows (labels dropped, D* columns dense, the rest categorical).
struct Rows {
  std::vector<std::vector<FeatureValue>> f;
  std::vector<std::vector<DenseValue>> d;
  std::vector<PredictRow> rows;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> cells;
  explicit Rows(const std::vector<std::string>& lines) {
    header = split(lines[0]);
    for (std::size_t i = 1; i < lines.size(); ++i) cells.push_back(split(lines[i]));
    f.resize(cells.size());
    d.resize(cells.size());
    for (std::size_t r = 0; r < cells.size(); ++r) {
      for (std::size_t c = 0; c < header.size(); ++c) {
        const auto& h = header[c];
        if (h == "click" || h == "purchase") continue;
        if (h[0] == 'D') {
          float v = 0;
          std::from_chars(cells[r][c].data(), cells[r][c].data() + cells[r][c].size(), v);
          d[r].push_back({h, v});
        } else if (!cells[r][c].empty()) {
          f[r].push_back({h, cells[r][c]});
        }
      }
      rows.push_back({f[r], d[r]});
    }
  }
};

std::vector<std::string_view> views(const std::vector<std::string>& v, std::size_t from = 0) {
  return {v.begin() + static_cast<std::ptrdiff_t>(from), v.end()};
}

}  // namespace

TEST_CASE("every registered model: Predictor == funnel predict == the training-side forward", "[serving]") {
  const auto lines = read_lines(kRechub);
  const auto data = views(lines, 1);
  Rows rows(lines);
  for (const auto& kind : model_kinds()) {
    INFO("model " << kind);
    const RechubCheckpoint rc(kind, "predictor_" + kind);
    const auto& cli = rc.cli;
    const std::string& ck = rc.ck;
    Predictor p(ck);
    const auto m = p.current();
    CHECK(m->kind() == kind);
    const std::size_t nc = m->columns().size();
    REQUIRE(nc >= 1);
    std::vector<float> from_csv(data.size() * nc), from_rows(data.size() * nc);
    m->predict_csv(data, from_csv);
    m->predict(rows.rows, from_rows);
    // The training side: the model loaded as eval/predict always did, forward over the file read by the reader.
    LoadedModel lm = load_model(ck);
    LoadedData ld = load_data("csv:" + kRechub, ReadOptions{}, &lm.info.data);
    const Predictions ref = predict(*lm.model, ld.data, 4096);
    REQUIRE(ref.names == m->columns());
    REQUIRE(cli.size() == data.size());
    // Exactly the training side's bits for the same batch: one pass of 64 rows against a batch of 64 (the mapped
    // tables' pooled rows are the embedding op's).
    const Predictions ref64 = predict(*lm.model, ld.data, 64);
    std::vector<float> p64(64 * nc);
    m->predict(ld.data, 0, 64, p64);
    CHECK(m->mapped_tables() >= 1);
    for (std::size_t r = 0; r < 64; ++r)
      for (std::size_t c = 0; c < nc; ++c) CHECK(p64[r * nc + c] == ref64.columns[c][r]);
    for (std::size_t r = 0; r < data.size(); ++r)
      for (std::size_t c = 0; c < nc; ++c) {
        const float v = from_csv[r * nc + c];
        CHECK(from_rows[r * nc + c] == v);  // structured rows map exactly as the training reader does
        CHECK(std::fabs(ref.columns[c][r] - v) <= 2e-6f);  // another pass size: the last bits may differ
        CHECK(static_cast<float>(cli[r][c]) == v);           // funnel predict scores through the Predictor
      }
  }
}

TEST_CASE("Predictor: unknown fields, wrong kinds, missing dense values and unseen values", "[serving]") {
  const auto lines = read_lines(kRechub);
  TempDir t("predictor_errors");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--min-count 2");
  Predictor p(ck);
  auto m = p.current();
  REQUIRE(m->feature_map()->config().kind == MapKind::Vocab);
  Rows rows(lines);
  std::vector<float> out(m->columns().size());
  auto f = rows.f[0];
  auto d = rows.d[0];
  auto expect_error = [&](std::int64_t row, const std::string& field, const std::string& what) {
    PredictRow r{f, d};
    std::vector<PredictRow> two{PredictRow{rows.f[1], rows.d[1]}, r};
    std::vector<float> o(2 * m->columns().size());
    try {
      m->predict(two, o);
      FAIL("no error");
    } catch (const PredictError& e) {
      CHECK(e.row() == row);
      CHECK(e.field() == field);
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  SECTION("unknown field: an error naming row and field, or ignored when asked") {
    f.push_back({"nope", "1"});
    expect_error(1, "nope", "unknown");
    PredictorOptions o;
    o.unknown_fields = UnknownFields::Ignore;
    Predictor q(ck, o);
    std::vector<float> a(out.size()), b(out.size());
    PredictRow with{f, d}, without{rows.f[0], rows.d[0]};
    q.predict({&with, 1}, a);
    q.predict({&without, 1}, b);
    CHECK(a == b);
  }
  SECTION("a dense feature given as a category, a field given as a number") {
    f.push_back({"D508", "x"});
    expect_error(1, "D508", "dense feature");
    f = rows.f[0];
    d.push_back({"205", 1.0f});
    expect_error(1, "205", "categorical");
  }
  SECTION("missing, repeated and non-finite dense values") {
    d.pop_back();
    expect_error(1, "D853", "missing");
    d = rows.d[0];
    d.push_back(d[0]);
    expect_error(1, std::string(d[0].name), "more than once");
    d = rows.d[0];
    d[0].value = std::nanf("");
    expect_error(1, std::string(d[0].name), "finite");
  }
  SECTION("unseen values of a vocabulary go to the field's out-of-vocabulary row, as in training") {
    std::vector<float> a(out.size()), b(out.size()), c(out.size());
    auto g = rows.f[0];
    for (auto& v : g)
      if (v.field == "205") v.value = "never-seen-1";
    PredictRow r1{g, d};
    m->predict({&r1, 1}, a);
    for (auto& v : g)
      if (v.field == "205") v.value = "never-seen-2";
    m->predict({&r1, 1}, b);
    CHECK(a == b);
    // The same row as a csv line through the training reader.
    auto cells = rows.cells[0];
    for (std::size_t k = 0; k < rows.header.size(); ++k)
      if (rows.header[k] == "205") cells[k] = "never-seen-3";
    std::string line;
    for (std::size_t k = 0; k < cells.size(); ++k) line += (k ? "," : "") + cells[k];
    std::vector<std::string_view> l{line};
    m->predict_csv(l, c);
    CHECK(a == c);
  }
  SECTION("a bad csv line: the reader's error, with the row and field") {
    std::vector<std::string> ls{lines[1], lines[2]};
    ls[1].replace(0, 1, "7");  // click = 7
    std::vector<float> o(2 * m->columns().size());
    try {
      m->predict_csv(views(ls), o);
      FAIL("no error");
    } catch (const PredictError& e) {
      CHECK(e.row() == 1);
      CHECK(e.field() == "click");
    }
    std::vector<std::string> nl{lines[1] + "\n" + lines[2]};
    CHECK_THROWS_AS(m->predict_csv(views(nl), o), PredictError);
  }
}

TEST_CASE("Predictor: slots lines score as `funnel predict` on the slots file", "[serving]") {
  TempDir t("predictor_slots");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "slots:" + kSlots, ck, "--eval-fraction 0.3");
  REQUIRE(shell(kFunnelBin + " predict --checkpoint " + ck + " --data slots:" + kSlots + " --out " + t.file("p.csv") +
                " 2>/dev/null") == 0);
  const auto cli = read_predictions(t.file("p.csv"));
  const auto lines = read_lines(kSlots);
  Predictor p(ck);
  const auto m = p.current();
  std::vector<float> out(lines.size() * m->columns().size());
  m->predict_slots(views(lines), out);
  REQUIRE(cli.size() == lines.size());
  for (std::size_t r = 0; r < lines.size(); ++r)
    for (std::size_t c = 0; c < m->columns().size(); ++c)
      CHECK(static_cast<float>(cli[r][c]) == out[r * m->columns().size() + c]);
}

TEST_CASE("Predictor: many threads at once give the single-threaded results", "[serving]") {
  const auto lines = read_lines(kRechub);
  TempDir t("predictor_threads");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck);
  Predictor p(ck);
  Rows rows(lines);
  const std::size_t nc = p.current()->columns().size(), n = rows.rows.size();
  // Each thread's calls, scored one by one first (a row's last bits may depend on the pass sizes it was in).
  auto call = [&](int k, int it) {
    const auto first = static_cast<std::size_t>((k * 7 + it * 13) % 50);
    const auto len = 1 + static_cast<std::size_t>((it * 11 + k) % 50);
    return std::span<const PredictRow>(rows.rows).subspan(first, len);
  };
  std::vector<std::vector<std::vector<float>>> ref(4);
  for (int k = 0; k < 4; ++k)
    for (int it = 0; it < 50; ++it) {
      ref[k].emplace_back(call(k, it).size() * nc);
      p.predict(call(k, it), ref[k].back());
    }
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k)
    ts.emplace_back([&, k] {
      std::vector<float> out(n * nc);
      for (int it = 0; it < 50; ++it) {
        const auto rs = call(k, it);
        p.predict(rs, out);
        for (std::size_t i = 0; i < rs.size() * nc; ++i)
          if (out[i] != ref[k][it][i]) ++bad;
      }
    });
  for (auto& th : ts) th.join();
  CHECK(bad == 0);
  CHECK(p.current()->workspaces() >= 1);
  CHECK(p.current()->workspaces() <= 4);
}

TEST_CASE("Predictor: a steady prediction allocates nothing", "[serving]") {
  const auto lines = read_lines(kRechub);
  TempDir t("predictor_alloc");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck);
  Predictor p(ck);
  const auto m = p.current();
  Rows rows(lines);
  const std::size_t nc = m->columns().size();
  std::vector<float> out(rows.rows.size() * nc);
  LoadedData ld = load_data("csv:" + kRechub, ReadOptions{}, &m->manifest_data());
  for (std::size_t n : {1, 7, 64, 100}) {
    m->predict(std::span<const PredictRow>(rows.rows).first(n), out);  // warm-up: executors of each size
    m->predict(ld.data, 0, static_cast<std::int64_t>(n), out);
  }
  funnel::test::prime_backtrace();
  for (std::size_t n : {1, 7, 64, 100}) {
    INFO("rows " << n);
    CountAllocs c;
    m->predict(std::span<const PredictRow>(rows.rows).first(n), out);
    m->predict(ld.data, 0, static_cast<std::int64_t>(n), out);
    const long allocs = c.stop();
    if (allocs) funnel::test::print_traces(allocs);
    CHECK(allocs == 0);
  }
}

TEST_CASE("Predictor: reload swaps in the new version, calls in flight finish on the old one", "[serving]") {
  const auto lines = read_lines(kRechub);
  TempDir t("predictor_reload");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 1");
  Predictor p(ck);
  Rows rows(lines);
  const auto v1 = p.current();
  const std::size_t nc = v1->columns().size(), n = rows.rows.size();
  std::vector<float> a(n * nc), b(n * nc), a2(n * nc);
  v1->predict(rows.rows, a);
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 2 --epochs 2");
  // Threads scoring while the reload happens: every answer is exactly version 1's or version 2's.
  std::atomic<bool> done{false};
  std::atomic<int> answers{0};
  std::vector<std::vector<float>> seen;
  std::mutex mu;
  std::vector<std::thread> ts;
  for (int k = 0; k < 2; ++k)
    ts.emplace_back([&] {
      std::vector<float> out(n * nc);
      while (!done) {
        p.predict(rows.rows, out);
        ++answers;
        std::lock_guard<std::mutex> l(mu);
        if (seen.size() < 64) seen.push_back(out);
      }
    });
  const auto v2 = p.reload();
  while (answers < 10) std::this_thread::yield();
  done = true;
  for (auto& th : ts) th.join();
  CHECK(v2->step() > v1->step());
  CHECK(p.current() == v2);
  CHECK(p.reloads() == 1);
  v2->predict(rows.rows, b);
  CHECK(a != b);
  v1->predict(rows.rows, a2);  // the old version still answers as before
  CHECK(a2 == a);
  for (const auto& s : seen) CHECK((s == a || s == b));
  // A failed reload keeps the current version.
  std::filesystem::remove(std::filesystem::path(ck) / "manifest.json");
  CHECK_THROWS_AS(p.reload(), Error);
  CHECK(p.current() == v2);
}

TEST_CASE("a values-only parameter store holds no gradient arrays and runs the same forward pass", "[serving]") {
  ModelConfig c;
  c.num_fields = 3;
  c.vocab = 5000;
  c.dim = 4;
  c.hidden = {8, 4};
  Graph g;
  const ModelHandle h = build_model(g, c);
  ParamStore<float> full(g);
  ParamStoreOptions vo;
  vo.values_only = true;
  ParamStore<float> lean(g, vo);
  full.init(3);
  lean.init(3);
  // Values only: the embedding table's sparse row index (vocab int32s) and the dense gradients are not there.
  CHECK(lean.allocated_bytes() + 5000 * sizeof(std::int32_t) <= full.allocated_bytes());
  Executor<float> a(g, full), b(g, lean);
  for (Executor<float>* ex : {&a, &b}) {
    ex->set_batch(2);
    IdBatch& ib = ex->ids(h.ids);
    ib.reset(2, 3);
    for (int k = 0; k < 6; ++k) {
      ib.push(k * 100 + 7);
      ib.end_cell();
    }
    ex->forward({h.column("pctr"), h.column("pctcvr")});
  }
  for (const char* col : {"pctr", "pctcvr"})
    for (int r = 0; r < 2; ++r) CHECK(a.value(h.column(col)).data()[r] == b.value(h.column(col)).data()[r]);
}
