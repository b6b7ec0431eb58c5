#include <catch2/catch.hpp>

#include "support/files.hpp"
#include "core/error.hpp"
#include "data/readers.hpp"

using namespace funnel;

namespace {

using funnel::test::fixture;

Dataset slots(const std::string& text, ReadOptions o = {}, ReadReport* rep = nullptr) {
  FeatureMap m;
  return read_slots_buffer(text, "s.txt", o, m, rep);
}

std::int64_t cell_size(const Dataset& d, std::int64_t r, std::int64_t f) {
  const auto i = static_cast<std::size_t>(r * d.num_fields + f);
  return d.offsets[i + 1] - d.offsets[i];
}

std::int64_t field(const Dataset& d, const std::string& name) {
  for (std::size_t i = 0; i < d.field_names.size(); ++i)
    if (d.field_names[i] == name) return static_cast<std::int64_t>(i);
  FAIL("no field " << name);
  return -1;
}

}  // namespace

TEST_CASE("slots: PaddleRec ESMM sample with multi-valued and absent fields", "[slots]") {
  FeatureMap map;
  ReadOptions o;
  o.mapping.buckets = 5000;
  ReadReport rep;
  const Dataset d = read_dataset("slots:" + fixture("paddlerec_esmm_train_small.txt"), o, map, &rep);
  CHECK(d.rows() == 10);
  CHECK(d.num_fields == 22);
  CHECK(d.num_dense == 0);
  CHECK(std::is_sorted(d.field_names.begin(), d.field_names.end()));
  CHECK(d.field_names.front() == "101");
  CHECK(map.fields() == d.field_names);
  // Row 0: 117 values of 109_14, 342 of 110_14, 191 of 150_14, 3 of 210; 509/702/853 absent.
  CHECK(cell_size(d, 0, field(d, "109_14")) == 117);
  CHECK(cell_size(d, 0, field(d, "110_14")) == 342);
  CHECK(cell_size(d, 0, field(d, "150_14")) == 191);
  CHECK(cell_size(d, 0, field(d, "210")) == 3);
  CHECK(cell_size(d, 0, field(d, "509")) == 0);
  CHECK(cell_size(d, 0, field(d, "853")) == 0);
  CHECK(cell_size(d, 2, field(d, "853")) == 1);
  CHECK(d.labels[0] == 1);
  CHECK(d.labels[1] == 1);
  CHECK(d.labels[2] == 0);
  std::int64_t clicks = 0, convs = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    clicks += d.label(r, 0);
    convs += d.label(r, 1);
  }
  CHECK(clicks == 2);
  CHECK(convs == 1);
  for (std::int64_t f = 0; f < d.num_fields; ++f)
    for (auto k = d.offsets[static_cast<std::size_t>(f)]; k < d.offsets[static_cast<std::size_t>(f) + 1]; ++k) {
      CHECK(d.ids[static_cast<std::size_t>(k)] / 5000 == f);
      CHECK(d.weights[static_cast<std::size_t>(k)] == 1.0f);
    }
  CHECK(rep.rows_kept == 10);
  CHECK_FALSE(rep.unterminated_last_line);
}

TEST_CASE("slots: field set is sorted and stable, repeated fields pool in one cell", "[slots]") {
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  FeatureMap m;
  const Dataset d = read_slots_buffer("s1,1,0,b:x,a:y,b:z\ns2,0,0,c:x\n", "s.txt", o, m);
  CHECK(d.field_names == std::vector<std::string>{"a", "b", "c"});
  CHECK(d.offsets == std::vector<std::int64_t>{0, 1, 3, 3, 3, 3, 4});
  // b:x and b:z are distinct values of b; c:x is another field's x.
  CHECK(d.ids[1] != d.ids[2]);
  CHECK(d.ids[3] != d.ids[1]);
  // A row without features is valid (all cells empty).
  CHECK(slots("s1,1,0,a:1\ns2,0,0\n").offsets == std::vector<std::int64_t>{0, 1, 1});
}

TEST_CASE("slots: ready map drops unknown fields and counts them", "[slots]") {
  ReadOptions o;
  FeatureMap m = FeatureMap::hashed({"a", "b"}, 10);
  ReadReport rep;
  const Dataset d = read_slots_buffer("s1,1,0,a:1,zz:2,zz:3,b:4\n", "s.txt", o, m, &rep);
  CHECK(d.ids.size() == 2u);
  CHECK(rep.dropped_features.at("unknown_field:zz") == 2);
}

TEST_CASE("slots: bad rows throw with file, line and field", "[slots]") {
  CHECK_THROWS_WITH(slots("s1,1,0,a:1\ns2,1\n"), Catch::Contains("s.txt:2: field 'row': expected at least 3"));
  CHECK_THROWS_WITH(slots("s1,1,0,a:1\ns2,7,0,a:1\n"), Catch::Contains("s.txt:2: field 'click': expected 0 or 1, got '7'"));
  CHECK_THROWS_WITH(slots("s1,1,y,a:1\n"), Catch::Contains("s.txt:1: field 'conversion': expected 0 or 1, got 'y'"));
  CHECK_THROWS_WITH(slots("s1,0,1,a:1\n"), Catch::Contains("s.txt:1: field 'conversion': expected 0 when click is 0"));
  CHECK_THROWS_WITH(slots("s1,1,0,a:1,a2\n"),
                    Catch::Contains("s.txt:1: field 'feature #2': expected field:feature, got 'a2'"));
  CHECK_THROWS_WITH(slots("s1,1,0,a:1,\n"), Catch::Contains("field 'feature #2': expected field:feature, got ''"));
  CHECK_THROWS_WITH(slots("s1,1,0,a:\n"), Catch::Contains("field 'feature #1': expected a non-empty feature"));
  CHECK_THROWS_WITH(slots("s1,1,0,:3\n"), Catch::Contains("field 'feature #1': expected a non-empty field name"));
  CHECK_THROWS_WITH(slots(",1,0,a:1\n"), Catch::Contains("field 'sample_id'"));
  CHECK_THROWS_WITH(slots("s1,1,0,a:1\ns2,1,0,a:"), Catch::Contains("s.txt:2:") && Catch::Contains("cut short"));
}

TEST_CASE("slots: skip mode counts by reason, file-level errors", "[slots]") {
  ReadOptions o;
  o.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  const Dataset d = slots("s1,1,0,a:1\ns2\ns3,2,0,a:1\ns4,0,1,a:1\ns5,1,1,a1\ns6,0,0,bad:\ns7,1,1,b:2\n", o, &rep);
  CHECK(d.rows() == 2);
  // The field set comes from valid rows only: 'bad' (from a skipped row) is not a field.
  CHECK(d.field_names == std::vector<std::string>{"a", "b"});
  CHECK(rep.rows_skipped == 5);
  CHECK(rep.skipped_by_reason.at("column_count") == 1);
  CHECK(rep.skipped_by_reason.at("bad_label") == 1);
  CHECK(rep.skipped_by_reason.at("conversion_without_click") == 1);
  CHECK(rep.skipped_by_reason.at("missing_separator") == 1);
  CHECK(rep.skipped_by_reason.at("empty_value") == 1);
  CHECK(d.labels == std::vector<std::uint8_t>{1, 0, 1, 1});

  CHECK_THROWS_WITH(slots(""), Catch::Contains("s.txt: empty file"));
  CHECK_THROWS_WITH(slots("s1,1,0\n"), Catch::Contains("no fields"));
  FeatureMap m;
  CHECK_THROWS_WITH(read_dataset("slots:/no/such/file.txt", {}, m), Catch::Contains("/no/such/file.txt"));
}

TEST_CASE("slots: a quoted token is a bad row, never a field named with a quote", "[slots]") {
  CHECK_THROWS_WITH(slots("1,1,0,\"210:1\",u:a\n"), Catch::Contains("s.txt:1") && Catch::Contains("feature #1") &&
                                                      Catch::Contains("without quotes"));
  ReadOptions o;
  o.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  const Dataset d = slots("1,1,0,\"210:1\",u:a\n2,0,0,210:1,u:b\n", o, &rep);
  CHECK(d.rows() == 1);
  CHECK(rep.skipped_by_reason.at("bad_quotes") == 1);
  for (const auto& f : d.field_names) CHECK(f.find('"') == std::string::npos);
}
