// data/columns.hpp: a table of typed columns in memory reads like the same cells in a csv: file.
#include <catch2/catch.hpp>

#include <cmath>

#include "data/columns.hpp"
#include "data/data_error.hpp"
#include "data/readers.hpp"

using namespace funnel;

namespace {

struct Table {
  std::vector<std::int64_t> click, purchase, user;
  std::vector<double> price;
  std::vector<std::string> item_text;
  ColumnTable t;
  Table() {
    click = {1, 0, 1, 1};
    purchase = {1, 0, 0, 1};
    user = {7, 8, 7, 9};
    price = {0.5, 1.25, NAN, 3.0};  // a float categorical column: NaN absent, 3.0 is "3"
    item_text = {"a", "b", "", "a"};
    t.name.assign(1, 'T');  // (not = "T": GCC 12 warns falsely on that assignment)
    t.rows = 4;
    auto num = [](const char* n, ColumnArray::Type ty, const void* v) {
      ColumnArray c;
      c.name = n;
      c.type = ty;
      c.values = v;
      return c;
    };
    t.columns.push_back(num("click", ColumnArray::Type::Int64, click.data()));
    t.columns.push_back(num("purchase", ColumnArray::Type::Int64, purchase.data()));
    t.columns.push_back(num("user", ColumnArray::Type::Int64, user.data()));
    t.columns.push_back(num("price", ColumnArray::Type::Float64, price.data()));
    ColumnArray item;
    item.name = "item";
    item.type = ColumnArray::Type::Text;
    for (auto& s : item_text) item.text.push_back(s.empty() ? std::string_view() : std::string_view(s));
    t.columns.push_back(item);
    t.columns.push_back(num("Dprice", ColumnArray::Type::Float64, price.data()));
  }
};

const char* kSameCsv =
    "click,purchase,user,price,item,Dprice\n"
    "1,1,7,0.5,a,0.5\n"
    "0,0,8,1.25,b,1.25\n"
    "1,0,7,,,0\n"
    "1,1,9,3,a,3.0\n";

}  // namespace

TEST_CASE("columns: a table reads as the same csv file", "[columns]") {
  for (auto kind : {MapKind::Hash, MapKind::Vocab}) {
    Table tb;
    tb.price[2] = NAN;
    std::vector<double> dense = {0.5, 1.25, 0.0, 3.0};
    tb.t.columns[5].values = dense.data();
    ReadOptions o;
    o.mapping.kind = kind;
    FeatureMap m1, m2;
    ReadReport rep;
    Dataset a = read_columns(tb.t, o, m1, &rep);
    Dataset b = read_csv_buffer(kSameCsv, "t.csv", o, m2);
    REQUIRE(a.rows() == 4);
    CHECK(a.field_names == b.field_names);
    CHECK(a.dense_names == b.dense_names);
    CHECK(a.offsets == b.offsets);
    CHECK(a.ids == b.ids);
    CHECK(a.labels == b.labels);
    CHECK(a.dense == b.dense);
    CHECK(a.vocab == b.vocab);
    CHECK(m1.to_json() == m2.to_json());
    CHECK(rep.header == std::vector<std::string>{"click", "purchase", "user", "price", "item", "Dprice"});
    // Read with a ready map (prediction): the same ids.
    Dataset c = read_columns(tb.t, o, m1);
    CHECK(c.ids == a.ids);
  }
}

TEST_CASE("columns: bad cells are errors naming the table, row and field, or counted skips", "[columns]") {
  Table tb;
  tb.click[2] = 2;
  FeatureMap m;
  try {
    read_columns(tb.t, {}, m);
    FAIL("no error");
  } catch (const DataError& e) {
    CHECK(e.file == "T");
    CHECK(e.line == 3);
    CHECK(e.field == "click");
    CHECK(std::string(e.what()) == "T:3: field 'click': expected 0 or 1, got '2'");
  }
  CHECK(m.empty());
  ReadOptions skip;
  skip.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  Dataset d = read_columns(tb.t, skip, m, &rep);
  CHECK(d.rows() == 3);
  CHECK(rep.skipped_rows == std::vector<std::int64_t>{3});

  Table conv;
  conv.click[1] = 0;
  conv.purchase[1] = 1;
  FeatureMap m2;
  CHECK_THROWS_WITH(read_columns(conv.t, {}, m2), "T:2: field 'purchase': expected 0 when click is 0 (a conversion "
                                                  "needs a click), got '1'");
  Table dense;
  dense.price[0] = INFINITY;
  FeatureMap m3;
  CHECK_THROWS_WITH(read_columns(dense.t, {}, m3), Catch::Contains("T:1: field 'Dprice': expected a finite number"));
}

TEST_CASE("columns: registered tables are specs while registered", "[columns]") {
  Table tb;
  auto t = std::make_shared<ColumnTable>(tb.t);
  std::string spec;
  {
    ColumnsRegistration reg(t);
    spec = reg.spec();
    REQUIRE(spec.rfind("columns:T", 0) == 0);
    FeatureMap m;
    ReadOptions o;
    // NaN in the dense column (Dprice reads price) is a bad number: skip it.
    o.on_bad_row = OnBadRow::Skip;
    CHECK(read_dataset(spec, o, m).rows() == 3);
    CHECK(dataset_spec_inputs(spec).empty());
  }
  FeatureMap m;
  CHECK_THROWS_WITH(read_dataset(spec, {}, m), Catch::Contains("no such table in memory"));
}
