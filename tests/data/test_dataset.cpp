// gather_batch (data/dataset.cpp) on a hand-made dataset with multi-valued and empty cells, weights, dense
// features and three funnel stages.
#include <catch2/catch.hpp>

#include <vector>

#include "data/dataset.hpp"

using namespace funnel;

namespace {

// 3 rows × 2 fields, 3 stages, 2 dense features.
//   row 0: field 0 {1}            field 1 {10 (w 0.5), 11 (w 0.25)}   labels 1 1 0   dense 0.5 1.5
//   row 1: field 0 {2, 3}         field 1 {}  (absent)                 labels 0 0 0   dense 2.5 3.5
//   row 2: field 0 {4 (w 2)}      field 1 {12}                         labels 1 1 1   dense 4.5 5.5
Dataset hand_made() {
  Dataset d;
  d.num_fields = 2;
  d.num_stages = 3;
  d.num_dense = 2;
  d.vocab = 13;
  d.field_names = {"user", "tags"};
  d.dense_names = {"price", "age"};
  d.offsets = {0, 1, 3, 5, 5, 6, 7};
  d.ids = {1, 10, 11, 2, 3, 4, 12};
  d.weights = {1, 0.5f, 0.25f, 1, 1, 2, 1};
  d.labels = {1, 1, 0, 0, 0, 0, 1, 1, 1};
  d.dense = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
  return d;
}

}  // namespace

TEST_CASE("a hand-made dataset reports its rows and labels", "[data][dataset]") {
  const Dataset d = hand_made();
  CHECK(d.rows() == 3);
  CHECK_FALSE(d.has_truth());
  CHECK(d.label(0, 1) == 1);
  CHECK(d.label(0, 2) == 0);
  CHECK(d.label(2, 2) == 1);
}

TEST_CASE("gather_batch copies ids, weights, labels and dense features of the chosen rows", "[data][dataset]") {
  const Dataset d = hand_made();
  IdBatch ids;
  std::vector<std::int64_t> rows{2, 0, 1};
  std::vector<float> labels(rows.size() * 3, -1.0f), dense(rows.size() * 2, -1.0f);
  gather_batch(d, rows, ids, labels.data(), dense.data());

  CHECK(ids.batch == 3);
  CHECK(ids.fields == 2);
  CHECK(ids.complete());
  CHECK(ids.offsets == std::vector<std::int64_t>{0, 1, 2, 3, 5, 7, 7});
  CHECK(ids.ids == std::vector<std::int64_t>{4, 12, 1, 10, 11, 2, 3});
  CHECK(ids.weights == std::vector<float>{2, 1, 1, 0.5f, 0.25f, 1, 1});
  CHECK(labels == std::vector<float>{1, 1, 1, 1, 1, 0, 0, 0, 0});
  CHECK(dense == std::vector<float>{4.5f, 5.5f, 0.5f, 1.5f, 2.5f, 3.5f});
}

TEST_CASE("gather_batch handles repeated rows, empty batches and null outputs", "[data][dataset]") {
  const Dataset d = hand_made();
  IdBatch ids;

  SECTION("repeated rows") {
    std::vector<std::int64_t> rows{1, 1};
    std::vector<float> labels(6, -1.0f);
    gather_batch(d, rows, ids, labels.data(), nullptr);
    CHECK(ids.offsets == std::vector<std::int64_t>{0, 2, 2, 4, 4});
    CHECK(ids.ids == std::vector<std::int64_t>{2, 3, 2, 3});
    CHECK(labels == std::vector<float>(6, 0.0f));
  }
  SECTION("no labels and no dense features requested") {
    std::vector<std::int64_t> rows{0};
    gather_batch(d, rows, ids, nullptr, nullptr);
    CHECK(ids.complete());
    CHECK(ids.ids == std::vector<std::int64_t>{1, 10, 11});
  }
  SECTION("empty row list") {
    gather_batch(d, std::span<const std::int64_t>{}, ids, nullptr, nullptr);
    CHECK(ids.batch == 0);
    CHECK(ids.complete());
    CHECK(ids.ids.empty());
    CHECK(ids.offsets == std::vector<std::int64_t>{0});
  }
}

TEST_CASE("gather_batch reuses an IdBatch without carrying over the previous batch", "[data][dataset]") {
  const Dataset d = hand_made();
  IdBatch ids;
  std::vector<float> labels(9);
  std::vector<std::int64_t> big{0, 1, 2}, small{2};
  gather_batch(d, big, ids, labels.data(), nullptr);
  REQUIRE(ids.ids.size() == 7);
  const auto cap = ids.ids.capacity();
  gather_batch(d, small, ids, labels.data(), nullptr);
  CHECK(ids.batch == 1);
  CHECK(ids.offsets == std::vector<std::int64_t>{0, 1, 2});
  CHECK(ids.ids == std::vector<std::int64_t>{4, 12});
  CHECK(ids.weights == std::vector<float>{2, 1});
  CHECK(ids.ids.capacity() == cap);  // no reallocation in a steady-state loop
  CHECK(labels[0] == 1.0f);
  CHECK(labels[2] == 1.0f);
}

TEST_CASE("gather_batch on a dataset without dense features ignores the dense pointer", "[data][dataset]") {
  Dataset d = hand_made();
  d.num_dense = 0;
  d.dense.clear();
  IdBatch ids;
  std::vector<std::int64_t> rows{1};
  float sentinel = -7.0f;
  gather_batch(d, rows, ids, nullptr, &sentinel);
  CHECK(sentinel == -7.0f);
}
