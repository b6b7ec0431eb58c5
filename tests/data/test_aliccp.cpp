// Raw Ali-CCP reader: files in the release format are written to a temporary directory.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "support/files.hpp"
#include "core/error.hpp"
#include "support/temp_dir.hpp"
#include "data/readers.hpp"

using namespace funnel;
using funnel::test::aliccp_field;
namespace fs = std::filesystem;

namespace {

// A directory for the release's files, and the --data spec that reads it.
struct AliccpDir : funnel::test::TempDir {
  AliccpDir() : funnel::test::TempDir("aliccp") {}
  std::string spec(const std::string& split = "") const {
    return "aliccp:" + path.string() + (split.empty() ? "" : ":" + split);
  }
};

// One feature `field \x02 feature \x03 value` (built char by char: "\x02" followed by digits is a longer escape).
std::string feat(const std::string& field, const std::string& id, const std::string& value = "1.0") {
  return field + '\x02' + id + '\x03' + value;
}
std::string list(std::initializer_list<std::string> fs) {
  std::string s;
  for (const auto& f : fs) s += (s.empty() ? "" : "\x01") + f;
  return s;
}

const std::string kCommon = "u1,5," +
                            list({feat("101", "1001"), feat("121", "7"), feat("109_14", "a", "0.5"),
                                  feat("109_14", "b", "1.5"), feat("150_14", "c", "2.0")}) +
                            "\n" + "u2,2," + list({feat("101", "1002"), feat("124", "1")}) + "\n";
const std::string kSkeleton = "1,1,1,u1,3," + list({feat("205", "9001"), feat("206", "77"), feat("301", "1")}) +
                              "\n" + "2,0,0,u2,2," + list({feat("205", "9002"), feat("210", "x", "3.0")}) + "\n" +
                              "3,1,0,u1,0,\n";


// A cell's ids / weights: the row's own, then those of its shared block (the common features).
std::vector<std::int64_t> cell(const Dataset& d, std::int64_t r, const std::string& field) {
  std::vector<std::int64_t> v;
  d.for_each_id(r, aliccp_field(field), [&](std::int64_t id, float) { v.push_back(id); });
  return v;
}
std::vector<float> cell_w(const Dataset& d, std::int64_t r, const std::string& field) {
  std::vector<float> v;
  d.for_each_id(r, aliccp_field(field), [&](std::int64_t, float w) { v.push_back(w); });
  return v;
}

// A directory with the good common file and a skeleton whose line 2 is `bad_line`.
Dataset read_with_bad_skeleton_line(const std::string& bad_line) {
  AliccpDir t;
  t.write("common_features_train.csv", kCommon);
  t.write("sample_skeleton_train.csv", "1,1,1,u1,1," + feat("205", "1") + "\n" + bad_line + "\n");
  FeatureMap m;
  return read_dataset(t.spec(), {}, m);
}

}  // namespace

TEST_CASE("aliccp: join, multi-valued fields, absent fields, value weights", "[aliccp]") {
  AliccpDir t;
  t.write("common_features_train.csv", kCommon);
  t.write("sample_skeleton_train.csv", kSkeleton);
  FeatureMap map;
  ReadOptions o;
  o.weights = PoolWeights::Values;
  o.mapping.buckets = 1 << 12;
  ReadReport rep;
  const Dataset d = read_dataset(t.spec(), o, map, &rep);
  REQUIRE(d.rows() == 3);
  CHECK(d.num_fields == 23);
  CHECK(d.field_names == aliccp_fields());
  CHECK(d.vocab == 23 * (1 << 12));
  CHECK(d.labels == std::vector<std::uint8_t>{1, 1, 0, 0, 1, 0});
  // Row 0: skeleton item features + user u1's common features.
  CHECK(cell(d, 0, "205") == std::vector<std::int64_t>{map.lookup(aliccp_field("205"), "9001")});
  CHECK(cell(d, 0, "101") == std::vector<std::int64_t>{map.lookup(aliccp_field("101"), "1001")});
  CHECK(cell(d, 0, "109_14") ==
        std::vector<std::int64_t>{map.lookup(aliccp_field("109_14"), "a"), map.lookup(aliccp_field("109_14"), "b")});
  CHECK(cell_w(d, 0, "109_14") == std::vector<float>{0.5f, 1.5f});
  CHECK(cell_w(d, 0, "150_14") == std::vector<float>{2.0f});
  CHECK(cell(d, 0, "124").empty());  // absent
  CHECK(cell(d, 0, "853").empty());
  // Row 1: user u2; value weight 3 on field 210.
  CHECK(cell(d, 1, "109_14").empty());
  CHECK(cell(d, 1, "124").size() == 1u);
  CHECK(cell_w(d, 1, "210") == std::vector<float>{3.0f});
  // Row 2: empty skeleton feature list, user u1 again.
  CHECK(cell(d, 2, "205").empty());
  CHECK(cell(d, 2, "109_14") == cell(d, 0, "109_14"));
  CHECK(d.total_ids() == 3 + 5 + 2 + 2 + 5);
  CHECK(rep.rows_read == 3);
  CHECK(rep.common_rows == 2);
  CHECK(rep.bytes == static_cast<std::int64_t>(kCommon.size() + kSkeleton.size()));

  // Default pooling weights are 1.
  FeatureMap m2;
  const Dataset ones = read_dataset(t.spec("train"), {}, m2);
  for (float w : ones.weights) CHECK(w == 1.0f);
  for (float w : ones.block_weights) CHECK(w == 1.0f);
}

TEST_CASE("aliccp: test split and vocab mapping with min_count", "[aliccp]") {
  AliccpDir t;
  t.write("common_features_test.csv", kCommon);
  t.write("sample_skeleton_test.csv", kSkeleton);
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  o.mapping.min_count = 2;
  FeatureMap map;
  const Dataset d = read_dataset(t.spec("test"), o, map);
  // u1's features are used by 2 rows -> own rows; u2's and every item feature once -> OOV.
  CHECK(cell(d, 0, "101") == std::vector<std::int64_t>{map.field_base(aliccp_field("101")) + 1});
  CHECK(cell(d, 1, "101") == std::vector<std::int64_t>{map.oov_row(aliccp_field("101"))});
  CHECK(cell(d, 0, "205") == std::vector<std::int64_t>{map.oov_row(aliccp_field("205"))});
  CHECK(map.field_size(aliccp_field("109_14")) == 3);  // OOV, a, b
  CHECK(map.field_size(aliccp_field("205")) == 1);     // OOV only
  CHECK(d.vocab == map.vocab());
  FeatureMap none;
  CHECK_THROWS_WITH(read_dataset(t.spec("train"), o, none), Catch::Contains("sample_skeleton_train.csv") ||
                                                              Catch::Contains("common_features_train.csv"));
  CHECK(none.empty());
}

TEST_CASE("aliccp: every kind of bad skeleton row throws with file, line and field", "[aliccp]") {
  auto err = [](const std::string& line) {
    try {
      read_with_bad_skeleton_line(line);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  using Catch::Contains;
  const std::string at = "sample_skeleton_train.csv:2: field '";
  CHECK_THAT(err("2,0,0,u1,1"), Contains(at + "row': expected 6 comma-separated columns"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("205", "1") + ",x"), Contains(at + "row': expected 6"));
  CHECK_THAT(err("2,0,0,u1,one," + feat("205", "1")), Contains(at + "feature_num': expected a non-negative integer, got 'one'"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("205", "1", "abc")), Contains(at + "feature_list #1': expected a finite number as the value, got 'abc'"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("205", "1", "")), Contains(at + "feature_list #1': expected a finite number"));
  CHECK_THAT(err("2,0,0,u1,1,2051\x03" "1.0"), Contains(at + "feature_list #1': expected field\\x02feature\\x03value, got '2051\\x031.0'"));
  CHECK_THAT(err("2,0,0,u1,2," + feat("205", "1") + "\x01" "206\x02" "5"), Contains(at + "feature_list #2': expected field\\x02feature\\x03value"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("205", "")), Contains(at + "feature_list #1': expected a non-empty feature id"));
  CHECK_THAT(err("2,0,0,nope,1," + feat("205", "1")), Contains(at + "common_feature_index': expected a key of ") && Contains("got 'nope'"));
  CHECK_THAT(err("2,2,0,u1,1," + feat("205", "1")), Contains(at + "click': expected 0 or 1, got '2'"));
  CHECK_THAT(err("2,1,-1,u1,1," + feat("205", "1")), Contains(at + "conversion': expected 0 or 1, got '-1'"));
  CHECK_THAT(err("2,0,1,u1,1," + feat("205", "1")), Contains(at + "conversion': expected 0 when click is 0"));
  CHECK_THAT(err("2,0,0,u1,2," + feat("205", "1")), Contains(at + "feature_num': expected the number of features in feature_list (1), got '2'"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("999", "1")), Contains(at + "feature_list #1': expected an Ali-CCP field id") && Contains("got '999'"));
  CHECK_THAT(err(",0,0,u1,1," + feat("205", "1")), Contains(at + "sample_id'"));
  CHECK_THAT(err("2,0,0,u1,2," + feat("205", "1") + "\x01"), Contains(at + "feature_list #2'"));
  CHECK_THAT(err("2,0,0,u1,1," + feat("205", "1")), Contains("no error"));  // control: the good line is accepted
}

TEST_CASE("aliccp: skip mode counts every reason, including common-file rows", "[aliccp]") {
  AliccpDir t;
  t.write("common_features_train.csv", kCommon + "u3,1\n" + "u4,2," + feat("101", "1") + "\n" + "u1,0,\n" +
                                           "u5,1," + feat("101", "5", "x") + "\n");
  const std::string f = feat("205", "1");
  t.write("sample_skeleton_train.csv", kSkeleton +               // 3 good rows
                                           "4,0,0,u1,1\n" +      // column_count
                                           "5,0,0,u1,x," + f + "\n" +   // bad_number (feature_num)
                                           "6,0,0,u1,1," + feat("205", "1", "1e999") + "\n" +  // bad_number (value)
                                           "7,0,0,u1,1,2051\n" +   // missing_separator
                                           "8,0,0,nope,1," + f + "\n" +  // unknown_common_index
                                           "9,0,0,u4,1," + f + "\n" +    // unknown_common_index (bad common row)
                                           "10,3,0,u1,1," + f + "\n" +   // bad_label
                                           "11,0,1,u1,1," + f + "\n" +   // conversion_without_click
                                           "12,0,0,u1,3," + f + "\n" +   // feature_num_mismatch
                                           "13,0,0,u1,1," + feat("888", "1") + "\n" +  // unknown_field
                                           "14,0,0,u2,1," + feat("205", "")  + "\n" +  // empty_value
                                           "15,1,0,u2,1," + f);  // no line end: a valid last row
  ReadOptions o;
  o.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  FeatureMap map;
  const Dataset d = read_dataset(t.spec(), o, map, &rep);
  CHECK(d.rows() == 4);
  CHECK(rep.rows_read == 15);
  CHECK(rep.rows_kept == 4);
  CHECK(rep.rows_skipped == 11);
  const std::map<std::string, std::int64_t> want{
      {"column_count", 1},          {"bad_number", 2},
      {"missing_separator", 1},     {"unknown_common_index", 2},
      {"bad_label", 1},             {"conversion_without_click", 1},
      {"feature_num_mismatch", 1},  {"unknown_field", 1},
      {"empty_value", 1},           {"common:column_count", 1},
      {"common:feature_num_mismatch", 1}, {"common:duplicate_common_index", 1},
      {"common:bad_number", 1}};
  CHECK(rep.skipped_by_reason == want);
  std::int64_t rows = 0;
  for (const auto& [k, v] : rep.skipped_by_reason)
    if (k.rfind("common:", 0) != 0) rows += v;
  CHECK(rows == rep.rows_skipped);
  CHECK(rep.common_rows == 6);
  // The common file's summary adds up too: 2 good rows, 4 bad ones, of which u3 and u5 are used by no sample.
  CHECK(rep.common_rows_skipped == 4);
  CHECK(rep.common_rows_unused == 2);
  CHECK(rep.rows_read == rep.rows_kept + rep.rows_skipped);
  const std::string summary = read_summary(rep);
  using Catch::Contains;
  CHECK_THAT(summary, Contains("skipped 11 of 15 rows") && Contains("the last line has no line end") &&
                          Contains("common features file: skipped 4 of 6 rows") && Contains("2 of them used by no sample"));
  CHECK(rep.unterminated_last_line);
  CHECK(rep.first_errors.size() == 10u);
  CHECK(rep.first_errors[0].find("common_features_train.csv:3: field 'row'") != std::string::npos);
}

TEST_CASE("aliccp: bad common rows throw in error mode", "[aliccp]") {
  AliccpDir t;
  t.write("sample_skeleton_train.csv", kSkeleton);
  FeatureMap m;
  t.write("common_features_train.csv", kCommon + "u1,0,\n");
  CHECK_THROWS_WITH(read_dataset(t.spec(), {}, m),
                    Catch::Contains("common_features_train.csv:3: field 'common_feature_index': expected a key not seen"));
  t.write("common_features_train.csv", kCommon + "u9,3," + feat("101", "1"));
  CHECK_THROWS_WITH(read_dataset(t.spec(), {}, m),
                    Catch::Contains("common_features_train.csv:3: field 'feature_num'") && Catch::Contains("cut short"));
  CHECK(m.empty());
  // A complete last line without a line end is valid, in both files.
  t.write("common_features_train.csv", kCommon.substr(0, kCommon.size() - 1));
  std::string sk = kSkeleton;
  sk.pop_back();
  t.write("sample_skeleton_train.csv", sk);
  ReadReport rep;
  FeatureMap ok;
  CHECK(read_dataset(t.spec(), {}, ok, &rep).rows() == 3);
  CHECK(rep.unterminated_last_line);
}

TEST_CASE("aliccp: file-level errors", "[aliccp]") {
  FeatureMap m;
  ReadOptions o;
  CHECK_THROWS_WITH(read_dataset("aliccp:/no/such/dir", o, m), Catch::Contains("'/no/such/dir'"));
  AliccpDir t;
  CHECK_THROWS_WITH(read_dataset(t.spec(), o, m), Catch::Contains("common_features_train.csv") &&
                                                      Catch::Contains("No such file"));
  t.write("common_features_train.csv", kCommon);
  CHECK_THROWS_WITH(read_dataset(t.spec(), o, m), Catch::Contains("sample_skeleton_train.csv"));
  t.write("sample_skeleton_train.csv", "");
  CHECK_THROWS_WITH(read_dataset(t.spec(), o, m), Catch::Contains("sample_skeleton_train.csv: empty file"));
  t.write("sample_skeleton_train.csv", kSkeleton);
  t.write("common_features_train.csv", "");
  CHECK_THROWS_WITH(read_dataset(t.spec(), o, m), Catch::Contains("common_features_train.csv: empty file"));
  CHECK_THROWS_WITH(read_dataset(t.spec("valid"), o, m), Catch::Contains("'train' or 'test'"));
  CHECK_THROWS_WITH(read_dataset("aliccp:" + (t.path / "sample_skeleton_train.csv").string(), o, m),
                    Catch::Contains("not a directory"));
  FeatureMap wrong = FeatureMap::hashed({"a"}, 4);
  t.write("common_features_train.csv", kCommon);
  CHECK_THROWS_WITH(read_dataset(t.spec(), o, wrong), Catch::Contains("Ali-CCP fields"));
  CHECK(m.empty());
}

TEST_CASE("aliccp: max_rows and a ready map", "[aliccp]") {
  AliccpDir t;
  t.write("common_features_train.csv", kCommon);
  t.write("sample_skeleton_train.csv", kSkeleton);
  ReadOptions o;
  o.max_rows = 2;
  ReadReport rep;
  FeatureMap m = FeatureMap::hashed(aliccp_fields(), 64);
  const Dataset d = read_dataset(t.spec(), o, m, &rep);
  CHECK(d.rows() == 2);
  CHECK(d.vocab == 23 * 64);
  CHECK(rep.stopped_at_max_rows);
}
