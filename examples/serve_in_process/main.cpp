// Scoring rows inside your own program with funnel::Predictor: train a small ESMM on a csv file, save a checkpoint,
// load it once and score raw rows (structured and as csv lines) from several threads, then hot-swap a newer
// checkpoint in. Usage: serve-in-process [WORK_DIR]  (default: a fresh folder under /tmp). Exits 0 when every check
// holds.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "serving/predictor.hpp"
#include "train/trainer.hpp"

namespace fs = std::filesystem;

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

// A small csv in the training format: labels, two categorical fields and one dense feature (a column named D...).
void write_csv(const std::string& file, int rows) {
  std::mt19937 rng(7);
  std::ofstream out(file);
  out << "click,purchase,user,item,Dprice\n";
  for (int i = 0; i < rows; ++i) {
    const int user = static_cast<int>(rng() % 50), item = static_cast<int>(rng() % 30);
    const int click = (user + item) % 3 == 0, buy = click && item % 4 == 0;
    out << click << ',' << buy << ",u" << user << ",i" << item << ',' << (item % 10) / 10.0 << '\n';
  }
}

std::int64_t train(const std::string& csv, const std::string& dir, std::int64_t epochs) {
  funnel::TrainerOptions o;
  o.model.kind = "esmm";
  o.model.dim = 4;
  o.model.hidden = {8, 4};
  o.train.epochs = epochs;
  o.train.batch_size = 32;
  funnel::DataSources src;
  src.train = "csv:" + csv;
  funnel::ReadOptions ro;
  ro.mapping.buckets = 256;  // hashed fields, 256 embedding rows each
  funnel::Trainer t(o, funnel::load_train_data(src, ro));
  const funnel::TrainResult r = t.train();
  t.save(dir, t.start_step() + r.steps);
  return t.start_step() + r.steps;
}

}  // namespace

int main(int argc, char** argv) {
  const fs::path work = argc > 1 ? fs::path(argv[1])
                                 : fs::temp_directory_path() / ("funnel_serve_in_process_" + std::to_string(::getpid()));
  fs::create_directories(work);
  const std::string csv = (work / "train.csv").string(), ck = (work / "checkpoint").string();
  write_csv(csv, 400);
  const std::int64_t step1 = train(csv, ck, 1);

  // Load once; any number of threads may score with it.
  funnel::Predictor predictor(ck);
  const auto model = predictor.current();  // one version: its columns and its predictions belong together
  std::printf("loaded %s (step %lld), columns:", model->kind().c_str(), static_cast<long long>(model->step()));
  for (const auto& c : model->columns()) std::printf(" %s", c.c_str());
  std::printf("\n");
  check(model->step() == step1, "the checkpoint's step");

  // Structured rows: field -> value (raw strings, mapped by the checkpoint's feature map), dense features by name.
  std::vector<funnel::FeatureValue> f0{{"user", "u3"}, {"item", "i8"}};
  std::vector<funnel::FeatureValue> f1{{"user", "u-never-seen"}, {"item", "i1"}};  // unseen: hashed as in training
  std::vector<funnel::DenseValue> d0{{"Dprice", 0.8f}}, d1{{"Dprice", 0.1f}};
  std::vector<funnel::PredictRow> rows{{f0, d0}, {f1, d1}};
  const std::size_t nc = model->columns().size();
  std::vector<float> out(rows.size() * nc);
  model->predict(rows, out);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::printf("row %zu:", r);
    for (std::size_t c = 0; c < nc; ++c) std::printf(" %s=%.6f", model->columns()[c].c_str(), out[r * nc + c]);
    std::printf("\n");
  }
  // ESMM: pctcvr = pctr * pcvr.
  check(std::fabs(out[2] - out[0] * out[1]) < 1e-6f, "pctcvr = pctr * pcvr");

  // The same rows as csv lines under the training header: the training reader maps them, the numbers agree.
  std::vector<std::string_view> lines{"0,0,u3,i8,0.8", "0,0,u-never-seen,i1,0.1"};
  std::vector<float> from_lines(lines.size() * nc);
  model->predict_csv(lines, from_lines);
  check(from_lines == out, "csv lines score as structured rows");

  // A bad row: an error naming the row and the field.
  std::vector<funnel::FeatureValue> bad{{"user", "u1"}, {"colour", "red"}};
  funnel::PredictRow bad_row{bad, d0};
  try {
    model->predict({&bad_row, 1}, out);
    check(false, "an unknown field is an error");
  } catch (const funnel::PredictError& e) {
    std::printf("rejected as expected: %s\n", e.what());
    check(e.row() == 0 && e.field() == "colour", "the error names row and field");
  }

  // Several threads at once, each with its own output buffer.
  std::vector<std::thread> threads;
  std::vector<int> agree(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      std::vector<float> mine(rows.size() * nc);
      for (int i = 0; i < 200; ++i) {
        predictor.predict(rows, mine);
        agree[static_cast<std::size_t>(k)] += mine == out;
      }
    });
  for (auto& t : threads) t.join();
  for (int a : agree) check(a == 200, "threads agree");

  // Train again, longer, into the same directory (the save replaces it atomically), then hot-swap it in.
  const std::int64_t step2 = train(csv, ck, 2);
  const auto next = predictor.reload();
  std::printf("reloaded: step %lld -> %lld\n", static_cast<long long>(model->step()), static_cast<long long>(next->step()));
  check(next->step() == step2 && step2 != step1, "reload loads the new version");
  std::vector<float> still(rows.size() * nc);
  model->predict(rows, still);  // the old version keeps answering for whoever still holds it
  check(still == out, "the old version is unchanged");

  fs::remove_all(work);
  if (failures) return 1;
  std::printf("serve_in_process: all checks passed\n");
  return 0;
}
