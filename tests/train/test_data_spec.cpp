// Training data from specs (train/data_spec.*): synthetic or read data, the held-out tail or a separate evaluation
// set mapped with the training data's map, and the one-line descriptions.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "train/data_spec.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

TEST_CASE("synthetic data: the tail is held out for evaluation, stages are passed to the generator", "[train][data]") {
  auto d = load_train_data({.train = "synthetic:rows=1000,fields=3,vocab=20", .eval_fraction = 0.25}, ReadOptions{});
  CHECK(d->has_eval);
  CHECK(d->train.data.rows() == 750);
  CHECK(d->eval.rows() == 250);
  CHECK(d->train.json["kind"] == "synthetic");
  CHECK_THAT(d->train.description, Contains("1000 rows") && Contains("training on the first 750"));
  CHECK_THAT(d->eval_description, Contains("last 250 rows held out"));
  auto three = load_train_data({.train = "synthetic:rows=300,fields=3,vocab=20", .stages = 3}, ReadOptions{});
  CHECK(three->train.data.num_stages == 3);
  CHECK_THAT(describe(three->eval), Contains("3 stages"));
  CHECK_THROWS_AS(load_train_data({.train = "synthetic:rows=300", .eval_fraction = 1.5}, ReadOptions{}), Error);
}

TEST_CASE("a separate evaluation set is mapped with the training set's map, skipped rows are noted", "[train][data]") {
  const auto dir = std::filesystem::temp_directory_path() / ("funnel_data_spec_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream tr(dir / "train.csv"), ev(dir / "eval.csv");
    tr << "click,conversion,a,b\n1,0,x,p\n0,0,y,q\n1,1,x,q\n";
    ev << "click,conversion,a,b\n0,0,x,q\n1,0,z,p\nbad\n";
  }
  ReadOptions ro;
  ro.on_bad_row = OnBadRow::Skip;
  auto d = load_train_data({.train = "csv:" + (dir / "train.csv").string(), .eval = "csv:" + (dir / "eval.csv").string()},
                           ro);
  CHECK(d->train.data.rows() == 3);
  CHECK(d->eval.rows() == 2);
  CHECK(d->train.json["kind"] == "mapped");
  // The evaluation set is read with the training set's map: the same fields and embedding rows.
  CHECK(d->eval.num_fields == d->train.data.num_fields);
  CHECK(d->eval.vocab == d->train.data.vocab);
  REQUIRE(d->notes.size() == 1);
  CHECK_THAT(d->notes[0], Contains("skipped 1 of 3 rows"));
  // A model trained on synthetic data refuses real data and the other way round; the messages speak of the
  // model's training data (there may be no checkpoint: train --eval-data).
  const nlohmann::json synth{{"kind", "synthetic"}, {"fields", 3}, {"vocab_per_field", 20}};
  CHECK_THROWS_WITH(load_data("csv:" + (dir / "eval.csv").string(), ro, &synth),
                    Contains("trained on synthetic data") && !Contains("checkpoint"));
  CHECK_THROWS_WITH(load_data("synthetic:fields=3", ro, &d->train.json),
                    Contains("training data is real data read through a feature map") && !Contains("checkpoint"));
  std::filesystem::remove_all(dir);
}
