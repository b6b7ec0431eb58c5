#include <unistd.h>

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

std::string fixture(const char* name) { return std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/" + name; }

struct TempFile {
  fs::path path;
  explicit TempFile(const std::string& tag) {
    path = fs::temp_directory_path() / ("funnel_cache_" + std::to_string(::getpid()) + "_" + tag + ".bin");
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

using funnel::test::slurp;
using funnel::test::spit;

void check_same(const Dataset& a, const Dataset& b) {
  CHECK(a.num_fields == b.num_fields);
  CHECK(a.num_stages == b.num_stages);
  CHECK(a.num_dense == b.num_dense);
  CHECK(a.vocab == b.vocab);
  CHECK(a.field_names == b.field_names);
  CHECK(a.dense_names == b.dense_names);
  CHECK(a.offsets == b.offsets);
  CHECK(a.ids == b.ids);
  CHECK(a.weights == b.weights);
  CHECK(a.dense == b.dense);
  CHECK(a.labels == b.labels);
  CHECK(a.true_prob == b.true_prob);
  CHECK(a.entire_labels == b.entire_labels);
}

}  // namespace

TEST_CASE("cache: round trip of a dataset and its feature map", "[cache]") {
  TempFile tf("rt");
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  FeatureMap map;
  const Dataset d = read_dataset("csv:" + fixture("rechub_train_sample.csv"), o, map);
  write_cache(d, map, tf.path.string());
  CHECK_FALSE(fs::exists(tf.path.string() + ".tmp." + std::to_string(::getpid())));

  FeatureMap loaded;
  ReadReport rep;
  const Dataset back = read_dataset("cache:" + tf.path.string(), o, loaded, &rep);
  check_same(d, back);
  CHECK(loaded == map);
  CHECK(rep.rows_kept == 100);
  // With the same ready map: fine. With another map: refused.
  FeatureMap same = map;
  CHECK(read_cache(tf.path.string(), same).rows() == 100);
  FeatureMap other = FeatureMap::hashed(map.fields(), 10);
  CHECK_THROWS_WITH(read_cache(tf.path.string(), other), Catch::Contains("different feature map"));

  // Slots data (multi-valued cells) and synthetic-style ground truth arrays survive too.
  FeatureMap sm;
  Dataset s = read_dataset("slots:" + fixture("paddlerec_esmm_train_small.txt"), {}, sm);
  s.true_prob.assign(static_cast<std::size_t>(s.rows() * 2), 0.25f);
  s.entire_labels.assign(static_cast<std::size_t>(s.rows() * 2), 1);
  write_cache(s, sm, tf.path.string());  // overwrites
  FeatureMap sm2;
  check_same(s, read_cache(tf.path.string(), sm2));
}

TEST_CASE("cache: truncated, corrupted and foreign files are clear errors", "[cache]") {
  TempFile tf("bad");
  FeatureMap map;
  ReadOptions skip;
  skip.on_bad_row = OnBadRow::Skip;
  const Dataset d = read_dataset("csv:" + fixture("paddlerec_aitm_train.csv"), skip, map);
  write_cache(d, map, tf.path.string());
  const std::string good = slurp(tf.path);
  REQUIRE(good.size() > 200);
  FeatureMap m;

  spit(tf.path, good.substr(0, good.size() - 100));
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("truncated"));
  spit(tf.path, good.substr(0, 40));
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("truncated"));
  spit(tf.path, good.substr(0, 12));
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("truncated"));
  std::string flipped = good;
  flipped[good.size() - 20] ^= 0x40;
  spit(tf.path, flipped);
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("checksum"));
  spit(tf.path, good + "extra");
  CHECK_THROWS_AS(read_cache(tf.path.string(), m), Error);
  spit(tf.path, "click,purchase\n0,0\n");
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("magic"));
  spit(tf.path, "");
  CHECK_THROWS_WITH(read_cache(tf.path.string(), m), Catch::Contains("empty file"));
  CHECK_THROWS_WITH(read_dataset("cache:/no/such.bin", {}, m), Catch::Contains("/no/such.bin"));
  CHECK(m.empty());

  FeatureMap not_ready;
  CHECK_THROWS_WITH(write_cache(d, not_ready, tf.path.string()), Catch::Contains("not ready"));
  CHECK_THROWS_WITH(write_cache(d, map, "/no/such/dir/x.bin"), Catch::Contains("cannot create"));
}
