#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "data/feature_map.hpp"

using namespace funnel;

TEST_CASE("feature_hash is stable (part of the checkpoint format)", "[feature_map]") {
  // Fixed values: changing the hash silently breaks every saved hash-mode checkpoint.
  CHECK(feature_hash("", 0) == 0x1e610c40a257ddd1ULL);
  CHECK(feature_hash("8718436", 0) == 0xc4b8e554c730719aULL);
  CHECK(feature_hash("a longer value of 24 byt", 7) == 0xa60775b50b89e730ULL);
  CHECK(feature_hash("8718436", 0) != feature_hash("8718436", 1));
  CHECK(feature_hash("1", 0) != feature_hash(std::string_view("1\0", 2), 0));
}

TEST_CASE("hash map: each field owns its block of buckets", "[feature_map]") {
  auto m = FeatureMap::hashed({"a", "b", "c"}, 100);
  REQUIRE(m.ready());
  CHECK(m.vocab() == 300);
  CHECK(m.field_base(2) == 200);
  for (std::int64_t f = 0; f < 3; ++f) {
    for (const char* v : {"x", "y", "12345", ""}) {
      const auto id = m.lookup(f, v);
      CHECK(id >= f * 100);
      CHECK(id < (f + 1) * 100);
      CHECK(m.map(f, v) == id);
    }
  }
  CHECK(m.lookup(0, "x") + 100 == m.lookup(1, "x"));  // same bucket, next block
  CHECK(m.field_index("b") == 1);
  CHECK(m.field_index("z") == -1);
  // Many values spread over the buckets.
  std::vector<int> hit(100);
  for (int i = 0; i < 2000; ++i) hit[static_cast<std::size_t>(m.lookup(0, std::to_string(i)))] = 1;
  int used = 0;
  for (int h : hit) used += h;
  CHECK(used > 95);
}

TEST_CASE("vocab map: min_count, OOV row, order independent of reading order", "[feature_map]") {
  auto build = [](const std::vector<std::pair<int, std::string>>& seq) {
    FeatureMap m;
    FeatureMapConfig c;
    c.kind = MapKind::Vocab;
    c.min_count = 2;
    m.start(c, {"f0", "f1"}, {"Dx"});
    std::vector<std::int64_t> ids;
    for (const auto& [f, v] : seq) ids.push_back(m.map(f, v));
    m.count(ids);
    m.finish(ids);
    return std::make_pair(std::move(m), ids);
  };
  auto [m, ids] = build({{0, "b"}, {0, "a"}, {0, "b"}, {0, "a"}, {0, "rare"}, {1, "b"}, {1, "b"}});
  REQUIRE(m.ready());
  // f0: OOV, a, b -> rows 0,1,2; f1: OOV, b -> rows 3,4.
  CHECK(m.vocab() == 5);
  CHECK(ids == std::vector<std::int64_t>{2, 1, 2, 1, 0, 4, 4});
  CHECK(m.lookup(0, "unseen") == 0);
  CHECK(m.lookup(1, "a") == 3);
  CHECK(m.oov_row(1) == 3);
  auto [m2, ids2] = build({{1, "b"}, {0, "a"}, {0, "a"}, {0, "rare"}, {1, "b"}, {0, "b"}, {0, "b"}});
  CHECK(m2 == m);
  CHECK(m2.dense_names() == std::vector<std::string>{"Dx"});
}

TEST_CASE("feature map JSON round trip", "[feature_map]") {
  SECTION("hash") {
    auto m = FeatureMap::hashed({"101", "205"}, 1000, 42);
    const auto j = m.to_json();
    const auto back = FeatureMap::from_json(nlohmann::json::parse(j.dump()));
    CHECK(back == m);
    CHECK(back.lookup(1, "abc") == m.lookup(1, "abc"));
    CHECK(back.config().seed == 42);
  }
  SECTION("vocab") {
    FeatureMap m;
    FeatureMapConfig c;
    c.kind = MapKind::Vocab;
    m.start(c, {"u", "i"}, {});
    std::vector<std::int64_t> ids{m.map(0, "p"), m.map(0, "q"), m.map(1, "p")};
    m.count(ids);
    m.finish(ids);
    const auto back = FeatureMap::from_json(nlohmann::json::parse(m.to_json().dump()));
    CHECK(back == m);
    CHECK(back.vocab() == 5);
    for (const char* v : {"p", "q", "zz"}) CHECK(back.lookup(0, v) == m.lookup(0, v));
    CHECK(back.lookup(1, "p") == m.lookup(1, "p"));
  }
  SECTION("malformed documents") {
    auto j = FeatureMap::hashed({"a"}, 10).to_json();
    auto no_buckets = j;
    no_buckets.erase("buckets");
    CHECK_THROWS_WITH(FeatureMap::from_json(no_buckets), Catch::Contains("'buckets'"));
    auto bad_kind = j;
    bad_kind["kind"] = "bloom";
    CHECK_THROWS_WITH(FeatureMap::from_json(bad_kind), Catch::Contains("'bloom'"));
    auto wrong_type = j;
    wrong_type["fields"] = 3;
    CHECK_THROWS_AS(FeatureMap::from_json(wrong_type), Error);
    CHECK_THROWS_AS(FeatureMap::from_json(nlohmann::json::array()), Error);
  }
}

TEST_CASE("feature map rejects bad configurations", "[feature_map]") {
  FeatureMap m;
  FeatureMapConfig c;
  c.buckets = 0;
  CHECK_THROWS_WITH(m.start(c, {"a"}, {}), Catch::Contains("buckets"));
  c.buckets = 10;
  CHECK_THROWS_WITH(m.start(c, {"a", "a"}, {}), Catch::Contains("'a' appears twice"));
  CHECK_THROWS_AS(m.start(c, {}, {}), Error);
  CHECK(m.empty());
  CHECK_THROWS_AS(m.vocab(), Error);
  m.start(c, {"a"}, {});
  CHECK_THROWS_AS(m.start(c, {"a"}, {}), Error);
  CHECK_THROWS_AS(parse_map_kind("x"), Error);
}
