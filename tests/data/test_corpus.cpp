// Regression corpus (tests/data/corpus/<reader>/*): inputs that once mattered to the fuzzers (fuzz/). Each must be
// read successfully or rejected with funnel::Error, under every policy, and a successful read must be a valid
// Dataset. The aliccp inputs are `common \0 skeleton` (no \0: the same bytes for both), as in fuzz/fuzz_aliccp.cpp.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "support/files.hpp"
#include "core/error.hpp"
#include "data/readers.hpp"

using namespace funnel;
namespace fs = std::filesystem;

namespace {

std::vector<fs::path> corpus(const char* reader) {
  std::vector<fs::path> files;
  const fs::path dir = fs::path(FUNNEL_SOURCE_DIR) / "tests/data/corpus" / reader;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

using funnel::test::slurp;

// Returns the number of successful reads over the 4 policy combinations.
template <class Read>
int run(const fs::path& file, Read&& read) {
  int ok = 0;
  for (auto bad : {OnBadRow::Error, OnBadRow::Skip})
    for (auto kind : {MapKind::Hash, MapKind::Vocab}) {
      ReadOptions o;
      o.on_bad_row = bad;
      o.mapping.kind = kind;
      o.mapping.buckets = 97;
      o.weights = kind == MapKind::Vocab ? PoolWeights::Values : PoolWeights::Ones;
      FeatureMap map;
      ReadReport rep;
      INFO(file.filename().string() << (bad == OnBadRow::Skip ? " skip" : " error") << " " << to_string(kind));
      try {
        const Dataset d = read(o, map, rep);
        ++ok;
        REQUIRE(d.offsets.size() == static_cast<std::size_t>(d.rows() * d.num_fields + 1));
        REQUIRE(d.offsets.back() == static_cast<std::int64_t>(d.ids.size()));
        REQUIRE(d.weights.size() == d.ids.size());
        for (auto id : d.ids) REQUIRE((id >= 0 && id < d.vocab));
        REQUIRE(dataset_problem(d) == "");  // also the shared blocks of aliccp data
        REQUIRE(rep.rows_read == rep.rows_kept + rep.rows_skipped);
        REQUIRE(map.ready());
      } catch (const Error& e) {
        REQUIRE(map.empty());  // a failed read leaves the caller's empty map empty
        REQUIRE(std::string(e.what()).size() > 0);
      }
    }
  return ok;
}

// run() over every file of the corpus of a one-file reader, `read_buffer(text, name, options, map, report)`, of
// which there must be at least `min_files`. Returns the number of successful reads.
template <class ReadBuffer>
int run_corpus(const char* reader, std::size_t min_files, ReadBuffer read_buffer) {
  const auto files = corpus(reader);
  REQUIRE(files.size() >= min_files);
  int ok = 0;
  for (const auto& f : files) {
    const std::string text = slurp(f);
    ok += run(f, [&](const ReadOptions& o, FeatureMap& m, ReadReport& r) {
      return read_buffer(text, f.filename().string(), o, m, &r);
    });
  }
  return ok;
}

}  // namespace

TEST_CASE("corpus: csv inputs never crash", "[corpus]") {
  CHECK(run_corpus("csv", 5, read_csv_buffer) > 0);  // the corpus holds valid inputs too
}

TEST_CASE("corpus: slots inputs never crash", "[corpus]") { CHECK(run_corpus("slots", 3, read_slots_buffer) > 0); }

TEST_CASE("corpus: aliccp inputs never crash", "[corpus]") {
  const auto files = corpus("aliccp");
  REQUIRE(files.size() >= 3);
  int ok = 0;
  for (const auto& f : files) {
    const std::string all = slurp(f);
    const auto nul = all.find('\0');
    const std::string common = nul == std::string::npos ? all : all.substr(0, nul);
    const std::string skeleton = nul == std::string::npos ? all : all.substr(nul + 1);
    ok += run(f, [&](const ReadOptions& o, FeatureMap& m, ReadReport& r) {
      return read_aliccp_buffers(skeleton, "skeleton", common, "common", o, m, &r);
    });
  }
  CHECK(ok > 0);
}
