#include <catch2/catch.hpp>

#include "support/files.hpp"
#include "core/error.hpp"
#include "data/readers.hpp"

using namespace funnel;

namespace {

using funnel::test::fixture;

std::int64_t sum_stage(const Dataset& d, std::int64_t s) {
  std::int64_t n = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) n += d.label(r, s);
  return n;
}

void check_invariants(const Dataset& d) {
  REQUIRE(d.num_stages == 2);
  REQUIRE(static_cast<std::int64_t>(d.offsets.size()) == d.rows() * d.num_fields + 1);
  REQUIRE(d.offsets.back() == static_cast<std::int64_t>(d.ids.size()));
  REQUIRE(d.weights.size() == d.ids.size());
  REQUIRE(static_cast<std::int64_t>(d.dense.size()) == d.rows() * d.num_dense);
  for (std::size_t i = 1; i < d.offsets.size(); ++i) REQUIRE(d.offsets[i - 1] <= d.offsets[i]);
  for (auto id : d.ids) {
    REQUIRE(id >= 0);
    REQUIRE(id < d.vocab);
  }
  for (std::int64_t r = 0; r < d.rows(); ++r) REQUIRE(d.label(r, 1) <= d.label(r, 0));
}

Dataset csv(const std::string& text, ReadOptions o = {}, ReadReport* rep = nullptr) {
  FeatureMap m;
  return read_csv_buffer(text, "t.csv", o, m, rep);
}

}  // namespace

TEST_CASE("csv: torch-rechub Ali-CCP sample (categorical + dense)", "[csv]") {
  FeatureMap map;
  ReadOptions o;
  o.mapping.buckets = 1000;
  ReadReport rep;
  const Dataset d = read_dataset("csv:" + fixture("rechub_train_sample.csv"), o, map, &rep);
  check_invariants(d);
  CHECK(d.rows() == 100);
  CHECK(d.num_fields == 23);
  CHECK(d.num_dense == 8);
  CHECK(d.vocab == 23 * 1000);
  CHECK(d.field_names.front() == "101");
  CHECK(d.field_names.back() == "150_14");
  CHECK(d.dense_names.front() == "D109_14");
  CHECK(sum_stage(d, 0) == 7);
  CHECK(sum_stage(d, 1) == 1);
  CHECK(d.dense[0] == Approx(0.4734f));
  CHECK(d.dense[4] == Approx(0.07556f));
  CHECK(d.ids.size() == 100u * 23u);  // one id per cell
  CHECK(rep.rows_read == 100);
  CHECK(rep.rows_kept == 100);
  CHECK(rep.rows_skipped == 0);
  CHECK(map.dense_names().size() == 8u);
}

TEST_CASE("csv: PaddleRec AITM sample, vocab mapping, re-read with the ready map", "[csv]") {
  // This real sample has 2 rows with purchase=1 and click=0 (lines 9 and another): bad rows for a funnel.
  const std::string spec = "csv:" + fixture("paddlerec_aitm_train.csv");
  FeatureMap strict;
  CHECK_THROWS_WITH(read_dataset(spec, {}, strict, nullptr),
                    Catch::Contains("paddlerec_aitm_train.csv:9: field 'purchase': expected 0 when click is 0"));
  FeatureMap map;
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  o.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  const Dataset d = read_dataset(spec, o, map, &rep);
  check_invariants(d);
  CHECK(rep.rows_read == 48);
  CHECK(rep.rows_skipped == 2);
  CHECK(rep.skipped_by_reason.at("conversion_without_click") == 2);
  CHECK(d.rows() == 46);
  CHECK(d.num_fields == 18);
  CHECK(d.num_dense == 0);
  CHECK(sum_stage(d, 0) == 3);
  CHECK(sum_stage(d, 1) == 1);
  // Rows 0 and 1 share user 85077 (field 101) but not item 205.
  CHECK(d.ids[0] == d.ids[18]);
  CHECK(d.ids[9] != d.ids[18 + 9]);
  // Every field's ids lie in its block.
  for (std::int64_t r = 0; r < d.rows(); ++r)
    for (std::int64_t f = 0; f < d.num_fields; ++f) {
      const auto id = d.ids[static_cast<std::size_t>(r * d.num_fields + f)];
      CHECK(id > map.field_base(f));  // not OOV: every value was seen
      CHECK(id < map.field_base(f) + map.field_size(f));
    }
  // A second read with the ready (frozen) map maps identically.
  FeatureMap frozen = map;
  const Dataset again = read_dataset(spec, o, frozen, nullptr);
  CHECK(again.ids == d.ids);
  CHECK(frozen == map);
}

TEST_CASE("csv: ready map checks the columns and sends unseen values to OOV", "[csv]") {
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  FeatureMap map;
  const Dataset d = read_csv_buffer("click,purchase,u,i,Dx\n1,0,a,b,0.5\n0,0,a,c,1\n", "train.csv", o, map);
  CHECK(map.vocab() == 2 + 3);
  // Columns in another order are fine; unseen value 'zzz' -> OOV row of field i.
  const Dataset p = read_csv_buffer("Dx,i,u,purchase,click\n2,zzz,a,0,1\n", "new.csv", o, map);
  CHECK(p.ids == std::vector<std::int64_t>{d.ids[0], map.oov_row(1)});
  CHECK(p.dense == std::vector<float>{2.0f});
  CHECK_THROWS_WITH(read_csv_buffer("click,purchase,u,Dx\n1,0,a,1\n", "new.csv", o, map),
                    Catch::Contains("missing: i"));
  // A column the map does not know is not read, and reported.
  ReadReport rep;
  const Dataset w = read_csv_buffer("click,purchase,u,i,Dx,w\n1,0,a,b,1,c\n", "new.csv", o, map, &rep);
  CHECK(w.ids == std::vector<std::int64_t>{d.ids[0], d.ids[1]});
  CHECK(rep.ignored_columns == std::vector<std::string>{"w"});
  CHECK_THAT(read_summary(rep), Catch::Contains("ignored 1 column(s)") && Catch::Contains(" w"));
  // Nothing known at all: an error.
  CHECK_THROWS_WITH(read_csv_buffer("click,purchase,x,y\n1,0,a,b\n", "other.csv", o, map),
                    Catch::Contains("other.csv:1") && Catch::Contains("none of them"));
}

TEST_CASE("csv: empty categorical cells are absent values", "[csv]") {
  const Dataset d = csv("click,conversion,u,i\n1,1,,x\n0,0,y,\n");
  CHECK(d.offsets == std::vector<std::int64_t>{0, 0, 1, 2, 2});
  CHECK(d.labels == std::vector<std::uint8_t>{1, 1, 0, 0});
}

TEST_CASE("csv: bad rows throw with file, line and field", "[csv]") {
  const std::string head = "click,purchase,u,D1\n";
  CHECK_THROWS_WITH(csv(head + "0,0,a,1\n0,0,a\n"),
                    Catch::Contains("t.csv:3: field 'row': expected 4 comma-separated columns") &&
                        Catch::Contains("got '0,0,a'"));
  CHECK_THROWS_WITH(csv(head + "2,0,a,1\n"), Catch::Contains("t.csv:2: field 'click': expected 0 or 1, got '2'"));
  CHECK_THROWS_WITH(csv(head + "1,x,a,1\n"), Catch::Contains("t.csv:2: field 'purchase': expected 0 or 1, got 'x'"));
  CHECK_THROWS_WITH(csv(head + "1,0,a,1.5e\n"),
                    Catch::Contains("t.csv:2: field 'D1': expected a finite number, got '1.5e'"));
  CHECK_THROWS_WITH(csv(head + "1,0,a,nan\n"), Catch::Contains("field 'D1'"));
  CHECK_THROWS_WITH(csv(head + "1,0,a,\n"), Catch::Contains("field 'D1'"));
  CHECK_THROWS_WITH(csv(head + "0,1,a,1\n"),
                    Catch::Contains("t.csv:2: field 'purchase': expected 0 when click is 0"));
  // A last line cut short (no line end) fails its column count, and the message says it may have been cut.
  CHECK_THROWS_WITH(csv(head + "1,0,a,1\n1,0"), Catch::Contains("t.csv:3:") && Catch::Contains("columns") &&
                                                    Catch::Contains("cut short"));
  // A complete last line without a line end is valid (RFC 4180 §2.2).
  CHECK(csv(head + "1,0,a,1\n0,0,b,2").rows() == 2);
  // A number too small for a float underflows to 0; one too large is an error.
  CHECK(csv(head + "1,0,a,1e-400\n").dense == std::vector<float>{0.0f});
  CHECK(csv(head + "1,0,a,-1e-60\n").dense == std::vector<float>{0.0f});
  CHECK_THROWS_WITH(csv(head + "1,0,a,1e400\n"), Catch::Contains("field 'D1': expected a finite number"));
  // Labels written as floats are accepted.
  CHECK(csv(head + "1.0,0.0,a,1\n").labels == std::vector<std::uint8_t>{1, 0});
}

TEST_CASE("csv: skip mode counts every bad row by reason", "[csv]") {
  ReadOptions o;
  o.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  const Dataset d = csv(
      "click,purchase,u,D1\r\n"
      "1,1,a,0.5\r\n"
      "0,0,a\n"
      "5,0,a,1\n"
      "1,0,a,zz\n"
      "0,1,a,1\n"
      "\n"
      "0,0,b,2\n"
      "1,0,c,3",
      o, &rep);
  CHECK(d.rows() == 3);
  CHECK(rep.rows_read == 8);
  CHECK(rep.rows_kept == 3);
  CHECK(rep.rows_skipped == 5);
  CHECK(rep.skipped_by_reason.count("truncated_last_row") == 0);  // "1,0,c,3" has no line end: a valid last row
  CHECK(rep.skipped_by_reason.at("column_count") == 2);
  CHECK(rep.skipped_by_reason.at("bad_label") == 1);
  CHECK(rep.skipped_by_reason.at("bad_number") == 1);
  CHECK(rep.skipped_by_reason.at("conversion_without_click") == 1);
  CHECK(rep.first_errors.size() == 5u);
  CHECK(rep.unterminated_last_line);
  CHECK_THAT(read_summary(rep), Catch::Contains("the last line has no line end"));
  CHECK(d.dense == std::vector<float>{0.5f, 2.0f, 3.0f});
}

TEST_CASE("csv: file-level errors", "[csv]") {
  FeatureMap m;
  ReadOptions o;
  CHECK_THROWS_WITH(read_dataset("csv:/nonexistent/x.csv", o, m), Catch::Contains("'/nonexistent/x.csv'"));
  CHECK(m.empty());
  CHECK_THROWS_WITH(read_dataset("csv:" + std::string(FUNNEL_SOURCE_DIR), o, m), Catch::Contains("directory"));
  CHECK_THROWS_WITH(csv(""), Catch::Contains("t.csv: empty file"));
  CHECK_THROWS_WITH(csv("u,purchase\n0,0\n"), Catch::Contains("'click'"));
  CHECK_THROWS_WITH(csv("click,u\n0,0\n"), Catch::Contains("'purchase'"));
  CHECK_THROWS_WITH(csv("click,purchase,u,u\n"), Catch::Contains("field 'u'"));
  CHECK_THROWS_WITH(csv("click,purchase,u\n"), Catch::Contains("no valid rows"));
  ReadOptions skip;
  skip.on_bad_row = OnBadRow::Skip;
  CHECK_THROWS_WITH(csv("click,purchase,u\n3,0,a\n", skip), Catch::Contains("bad_label=1"));
  CHECK(m.empty());
  CHECK_THROWS_WITH(read_dataset("parquet:x", o, m), Catch::Contains("csv:FILE") && Catch::Contains("aliccp:DIR"));
  CHECK_THROWS_WITH(read_dataset("csv:", o, m), Catch::Contains("file name"));
}

TEST_CASE("csv: max_rows stops early", "[csv]") {
  ReadOptions o;
  o.max_rows = 10;
  FeatureMap m;
  ReadReport rep;
  const Dataset d = read_dataset("csv:" + fixture("rechub_train_sample.csv"), o, m, &rep);
  CHECK(d.rows() == 10);
  CHECK(rep.stopped_at_max_rows);
}
