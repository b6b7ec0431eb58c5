// One prediction call on rows held in memory, as the Python module's Predictor.predict makes it: the columns
// registered as a table (data/columns.hpp), mapped with the training data's feature map, checked against the
// model and predicted. The C++ side of the per-call cost that tools/python_bench.py measures from Python.
//   build/bin/funnel-bench --benchmark_filter=PredictColumns
#include <benchmark/benchmark.h>

#include <random>

#include "data/columns.hpp"
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

// A trained ESMM (the paper's dims) and its feature map, made once.
struct Trained {
  std::unique_ptr<Trainer> t;
  nlohmann::json map;
  static Trained& get() {
    static Trained tr = [] {
      Trained x;
      Columns c(2000);
      ColumnsRegistration reg(std::make_shared<ColumnTable>(c.table));
      TrainerOptions o;
      o.train.epochs = 1;
      o.train.batch_size = 256;
      x.t = std::make_unique<Trainer>(o, load_train_data({.train = reg.spec()}, ReadOptions{}));
      x.t->train();
      x.map = x.t->data().train.json;
      return x;
    }();
    return tr;
  }
};

void BM_PredictColumns(benchmark::State& state) {
  Trained& tr = Trained::get();
  Columns c(state.range(0));
  auto table = std::make_shared<ColumnTable>(c.table);
  for (auto _ : state) {
    ColumnsRegistration reg(table);
    LoadedData d = load_data(reg.spec(), ReadOptions{}, &tr.map);
    check_compatible(tr.t->model().config(), d.data, reg.spec());
    Predictions p = predict(tr.t->model(), d.data, 4096);
    benchmark::DoNotOptimize(p.columns[0].data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PredictColumns)->Arg(1)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
