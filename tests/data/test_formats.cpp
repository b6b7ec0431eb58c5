// The data-format registry (data/formats.hpp): a format registered from a test file — as a user's project would —
// is read by spec, its files are the spec's inputs, and help and errors list it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "core/error.hpp"
#include "data/formats.hpp"
#include "support/files.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// Tab-separated values with a header, read as the csv reader reads commas.
Dataset read_tsv(const std::string& spec, const std::string& rest, const ReadOptions& options, FeatureMap& map,
                 ReadReport& rep) {
  const std::string file = detail::spec_file(spec, rest);
  std::string text = funnel::test::slurp(file);
  std::replace(text.begin(), text.end(), '\t', ',');
  return read_csv_buffer(text, file, options, map, &rep);
}

}  // namespace

FUNNEL_REGISTER_DATA_FORMAT(tsv, .prefix = "tsv", .usage = "tsv:FILE", .help = "tab-separated values (a test's own)",
                            .inputs = [](const std::string& rest) { return std::vector<std::string>{rest}; },
                            .read = read_tsv, .order = 200);

TEST_CASE("a data format registered from a test file is readable by spec", "[data][formats]") {
  funnel::test::TempDir t("formats");
  t.write("d.tsv", "click\tpurchase\tuser\titem\n1\t0\tu1\ti1\n0\t0\tu2\ti2\n1\t1\tu1\ti3\n");
  FeatureMap map;
  ReadReport rep;
  const Dataset d = read_dataset("tsv:" + t.file("d.tsv"), ReadOptions{}, map, &rep);
  CHECK(d.rows() == 3);
  CHECK(d.num_fields == 2);
  CHECK(rep.rows_kept == 3);
  CHECK(rep.source == "tsv:" + t.file("d.tsv"));
  CHECK(dataset_spec_inputs("tsv:" + t.file("d.tsv")) == std::vector<std::string>{t.file("d.tsv")});
  CHECK_THAT(dataset_spec_help(), Contains("tsv:FILE (tab-separated values (a test's own))"));
  CHECK_THAT(data_format_usages(), Contains("csv:FILE, slots:FILE, aliccp:DIR[:train|:test], cache:FILE, tsv:FILE"));
  CHECK_THAT(data_format_usages(true), !Contains("cache:FILE") && Contains("tsv:FILE"));
  CHECK_THROWS_WITH(read_dataset("parquet:x", ReadOptions{}, map), Contains("expected one of") && Contains("tsv:FILE"));
  CHECK_THROWS_WITH(read_dataset("tsv:", ReadOptions{}, map), Contains("expected a file name"));
  DataFormat again;
  again.prefix = "tsv";
  again.usage = "tsv:FILE";
  again.read = read_tsv;
  CHECK_THROWS_WITH(register_data_format(again), Contains("already registered"));
}

TEST_CASE("funnel's own formats are registered in their order", "[data][formats]") {
  const auto fs = data_formats();
  REQUIRE(fs.size() >= 5);
  CHECK(fs[0]->prefix == "csv");
  CHECK(fs[1]->prefix == "slots");
  CHECK(fs[2]->prefix == "aliccp");
  CHECK(fs[3]->prefix == "cache");
  CHECK(find_data_format("columns:x") != nullptr);
  CHECK(find_data_format("csv") == nullptr);  // no colon: no format
  CHECK(dataset_spec_inputs("aliccp:/d:test") ==
        std::vector<std::string>{"/d/sample_skeleton_test.csv", "/d/common_features_test.csv"});
}
