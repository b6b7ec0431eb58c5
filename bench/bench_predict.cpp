// One prediction call on rows held in memory, as the Python module's Predictor.predict makes it: the columns
// registered as a table (data/columns.hpp), read with the checkpoint's feature map and scored by the serving
// Predictor (serving/predictor.hpp), the values turned into one array per prediction column. The C++ side of the
// per-call cost that tools/python_bench.py measures from Python.
//   build/bin/funnel-bench --benchmark_filter=PredictorColumns
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "data/columns.hpp"
#include "serving/predictor.hpp"
#include "train/trainer.hpp"

namespace {

using namespace funnel;

// Four integer fields of 50 values and the labels, `rows` rows (seeded).
struct Columns {
  std::vector<std::vector<std::int64_t>> cols;
  ColumnTable table;
  explicit Columns(std::int64_t rows) {
    std::mt19937_64 rng(3);
    const char* names[] = {"click", "purchase", "f0", "f1", "f2", "f3"};
    cols.resize(6);
    for (auto& c : cols) c.resize(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto i = static_cast<std::size_t>(r);
      cols[0][i] = static_cast<std::int64_t>(rng() % 2);
      cols[1][i] = cols[0][i] * static_cast<std::int64_t>(rng() % 2);
      for (std::size_t k = 2; k < 6; ++k) cols[k][i] = static_cast<std::int64_t>(rng() % 50);
    }
    table.name = "bench";
    table.rows = rows;
    for (std::size_t k = 0; k < 6; ++k) {
      ColumnArray a;
      a.name = names[k];
      a.values = cols[k].data();
      table.columns.push_back(a);
    }
  }
};

// A trained ESMM (the paper's dims) saved as a checkpoint in a temporary directory (removed once loaded) and loaded
// by a Predictor, once.
struct Trained {
  std::unique_ptr<Predictor> p;
  static Trained& get() {
    static Trained tr = [] {
      Trained x;
      Columns c(2000);
      ColumnsRegistration reg(std::make_shared<ColumnTable>(c.table));
      TrainerOptions o;
      o.train.epochs = 1;
      o.train.batch_size = 256;
      Trainer t(o, load_train_data({.train = reg.spec()}, ReadOptions{}));
      const TrainResult r = t.train();
      char tmpl[] = "/tmp/funnel-bench-predict-XXXXXX";
      if (!::mkdtemp(tmpl)) std::abort();
      const std::string dir = tmpl;
      t.save(dir + "/ck", r.steps);
      x.p = std::make_unique<Predictor>(dir + "/ck");
      std::filesystem::remove_all(dir);
      return x;
    }();
    return tr;
  }
};

void BM_PredictorColumns(benchmark::State& state) {
  Trained& tr = Trained::get();
  Columns c(state.range(0));
  auto table = std::make_shared<ColumnTable>(c.table);
  for (auto _ : state) {
    ColumnsRegistration reg(table);
    const auto m = tr.p->current();
    const Dataset d = m->read_data(reg.spec(), ReadOptions{});
    const std::size_t nc = m->columns().size(), n = static_cast<std::size_t>(d.rows());
    std::vector<float> out(n * nc);
    m->predict(d, 0, d.rows(), out);
    std::vector<std::vector<float>> cols(nc, std::vector<float>(n));
    for (std::size_t k = 0; k < nc; ++k)
      for (std::size_t r = 0; r < n; ++r) cols[k][r] = out[r * nc + k];
    benchmark::DoNotOptimize(cols[0].data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PredictorColumns)->Arg(1)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
