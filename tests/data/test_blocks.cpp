// Shared blocks (Dataset::row_block): the raw Ali-CCP reader stores each common-features row once and rows refer
// to it. Everything that reads a dataset must see the same cells as if the common features had been copied into
// every row (the layout before blocks): gather_batch, split_tail, the cache, vocabulary counts.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>

#include "support/files.hpp"
#include "core/error.hpp"
#include "support/temp_dir.hpp"
#include "data/readers.hpp"
#include "train/loop.hpp"

using namespace funnel;
namespace fs = std::filesystem;

namespace {

using funnel::test::TempDir;
using funnel::test::aliccp_field;


// The same dataset with every row's block copied into its cells, after the row's own ids (written against the raw
// arrays, independently of the library's accessors).
Dataset materialize(const Dataset& d) {
  Dataset m = d;
  m.offsets.assign(1, 0);
  m.ids.clear();
  m.weights.clear();
  m.row_block.clear();
  m.block_offsets.clear();
  m.block_ids.clear();
  m.block_weights.clear();
  const auto F = static_cast<std::size_t>(d.num_fields);
  for (std::size_t r = 0; r < static_cast<std::size_t>(d.rows()); ++r) {
    for (std::size_t f = 0; f < F; ++f) {
      for (auto k = d.offsets[r * F + f]; k < d.offsets[r * F + f + 1]; ++k) {
        m.ids.push_back(d.ids[static_cast<std::size_t>(k)]);
        m.weights.push_back(d.weights[static_cast<std::size_t>(k)]);
      }
      if (!d.row_block.empty() && d.row_block[r] >= 0) {
        const auto b = static_cast<std::size_t>(d.row_block[r]);
        for (auto k = d.block_offsets[b * F + f]; k < d.block_offsets[b * F + f + 1]; ++k) {
          m.ids.push_back(d.block_ids[static_cast<std::size_t>(k)]);
          m.weights.push_back(d.block_weights[static_cast<std::size_t>(k)]);
        }
      }
      m.offsets.push_back(static_cast<std::int64_t>(m.ids.size()));
    }
  }
  return m;
}

void check_same_batches(const Dataset& a, const Dataset& b, std::uint32_t seed) {
  REQUIRE(a.rows() == b.rows());
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> row(0, a.rows() - 1);
  IdBatch ia, ib;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(1 + round * 7));
    for (auto& r : rows) r = row(rng);  // repeats allowed
    if (round == 0) {
      rows.resize(static_cast<std::size_t>(a.rows()));
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
    }
    std::vector<float> la(rows.size() * 2), lb(rows.size() * 2);
    gather_batch(a, rows, ia, la.data(), nullptr);
    gather_batch(b, rows, ib, lb.data(), nullptr);
    REQUIRE(ia.offsets == ib.offsets);
    REQUIRE(ia.ids == ib.ids);
    REQUIRE(ia.weights == ib.weights);
    REQUIRE(la == lb);
  }
}

// A raw Ali-CCP pair: `users` common rows (plus one nobody uses, and one bad row), `rows` skeleton rows (plus a
// bad one). Field 109_14 occurs in both files, so the order of own vs shared ids within a cell matters. Records
// how often each (field, value) occurs in the kept rows, common features counted once per row using them.
struct Generated {
  TempDir dir;
  std::map<std::pair<std::string, std::string>, std::int64_t> counts;
  std::int64_t kept = 0;

  Generated(int users, int rows, std::uint32_t seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint32_t>(n)); };
    auto feat = [](const std::string& field, const std::string& id, const std::string& v) {
      return field + '\x02' + id + '\x03' + v;
    };
    const char* values[] = {"1.0", "0.5", "2.25"};
    std::vector<std::vector<std::pair<std::string, std::string>>> user_feats;
    std::string common;
    for (int u = 0; u < users + 1; ++u) {  // the last user is never referenced
      std::vector<std::pair<std::string, std::string>> fs{{"101", std::to_string(pick(8))},
                                                          {"121", std::to_string(pick(3))}};
      for (int k = pick(4); k > 0; --k) fs.emplace_back("109_14", "u" + std::to_string(pick(6)));
      for (int k = pick(3); k > 0; --k) fs.emplace_back("150_14", std::to_string(pick(5)));
      std::shuffle(fs.begin(), fs.end(), rng);
      std::string list;
      for (const auto& [f, v] : fs) {
        if (!list.empty()) list += '\x01';  // appended piece by piece: GCC 12 warns falsely on "lit" + string
        list += feat(f, v, values[pick(3)]);
      }
      common += "c" + std::to_string(u) + "," + std::to_string(fs.size()) + "," + list + "\n";
      if (u == 2) common += "cbad,2," + feat("101", "1", "1.0") + "\n";  // feature_num mismatch
      user_feats.push_back(std::move(fs));
    }
    std::string skel;
    for (int r = 0; r < rows; ++r) {
      const int u = pick(users);
      std::vector<std::pair<std::string, std::string>> fs{{"205", std::to_string(pick(40))}};
      for (int k = pick(3); k > 0; --k) fs.emplace_back("109_14", "s" + std::to_string(pick(4)));
      if (pick(2)) fs.emplace_back("206", std::to_string(pick(7)));
      std::shuffle(fs.begin(), fs.end(), rng);
      std::string list;
      for (const auto& [f, v] : fs) {
        if (!list.empty()) list += '\x01';  // appended piece by piece: GCC 12 warns falsely on "lit" + string
        list += feat(f, v, values[pick(3)]);
      }
      const int click = pick(3) == 0, conv = click && pick(2);
      skel += std::to_string(r) + "," + std::to_string(click) + "," + std::to_string(conv) + ",c" + std::to_string(u) +
              "," + std::to_string(fs.size()) + "," + list + "\n";
      for (const auto& fv : fs) ++counts[fv];
      for (const auto& fv : user_feats[static_cast<std::size_t>(u)]) ++counts[fv];
      ++kept;
      if (r == 5) skel += "x,1,0,cbad,1," + feat("205", "1", "1.0") + "\n";  // refers to the bad common row
    }
    dir.write("common_features_train.csv", common);
    dir.write("sample_skeleton_train.csv", skel);
  }
  std::string spec() const { return "aliccp:" + dir.path.string(); }
};

ReadOptions skip_values(MapKind kind, std::int64_t min_count = 1) {
  ReadOptions o;
  o.on_bad_row = OnBadRow::Skip;
  o.weights = PoolWeights::Values;
  o.mapping.kind = kind;
  o.mapping.min_count = min_count;
  o.mapping.buckets = 64;
  return o;
}

using funnel::test::slurp;

}  // namespace

TEST_CASE("blocks: the aliccp reader shares common rows and gathers the same batches as copied rows", "[blocks]") {
  const Generated g(12, 200, 7);
  for (auto kind : {MapKind::Hash, MapKind::Vocab}) {
    FeatureMap map;
    ReadReport rep;
    const Dataset d = read_dataset(g.spec(), skip_values(kind), map, &rep);
    INFO(to_string(kind));
    REQUIRE(d.rows() == g.kept);
    CHECK(rep.skipped_by_reason == std::map<std::string, std::int64_t>{{"common:feature_num_mismatch", 1},
                                                                       {"unknown_common_index", 1}});
    CHECK(dataset_problem(d).empty());
    REQUIRE(d.has_blocks());
    // One block per user used (the unreferenced and the bad common rows have none).
    std::set<std::int32_t> used(d.row_block.begin(), d.row_block.end());
    CHECK(used.size() == 12u);
    CHECK(d.num_blocks() == 12);
    CHECK_FALSE(used.count(-1));
    const Dataset m = materialize(d);
    CHECK(dataset_problem(m).empty());
    CHECK(d.total_ids() == static_cast<std::int64_t>(m.ids.size()));
    for (std::int64_t r = 0; r < d.rows(); ++r)
      for (std::int64_t f = 0; f < d.num_fields; ++f)
        REQUIRE(d.cell_size(r, f) ==
                m.offsets[static_cast<std::size_t>(r * d.num_fields + f + 1)] -
                    m.offsets[static_cast<std::size_t>(r * d.num_fields + f)]);
    check_same_batches(d, m, 1);
  }
}

TEST_CASE("blocks: own ids come before shared ids within a cell", "[blocks]") {
  TempDir t;
  auto feat = [](const std::string& f, const std::string& id) { return f + '\x02' + id + '\x03' + "1.0"; };
  t.write("common_features_train.csv", "u,2," + feat("109_14", "c1") + "\x01" + feat("109_14", "c2") + "\n");
  t.write("sample_skeleton_train.csv", "1,0,0,u,1," + feat("109_14", "s1") + "\n");
  FeatureMap map;
  ReadOptions o;
  o.mapping.buckets = 1 << 20;
  const Dataset d = read_dataset("aliccp:" + t.path.string(), o, map);
  const std::int64_t f = aliccp_field("109_14");
  std::vector<std::int64_t> ids;
  d.for_each_id(0, f, [&](std::int64_t id, float) { ids.push_back(id); });
  CHECK(ids == std::vector<std::int64_t>{map.lookup(f, "s1"), map.lookup(f, "c1"), map.lookup(f, "c2")});
}

TEST_CASE("blocks: vocabulary counts a common feature once per kept row that uses it", "[blocks]") {
  const Generated g(10, 150, 11);
  for (std::int64_t min_count : {1, 3, 12, 40}) {
    FeatureMap map;
    const Dataset d = read_dataset(g.spec(), skip_values(MapKind::Vocab, min_count), map);
    INFO("min_count " << min_count);
    for (const auto& [fv, n] : g.counts) {
      const std::int64_t f = aliccp_field(fv.first);
      INFO(fv.first << "=" << fv.second << " seen " << n);
      CHECK((map.lookup(f, fv.second) != map.oov_row(f)) == (n >= min_count));
    }
    CHECK(dataset_problem(d).empty());
  }
}

TEST_CASE("blocks: max_rows keeps only the blocks of the rows read", "[blocks]") {
  const Generated g(12, 200, 3);
  FeatureMap map;
  ReadOptions o = skip_values(MapKind::Hash);
  o.max_rows = 4;
  const Dataset d = read_dataset(g.spec(), o, map);
  REQUIRE(d.rows() == 4);
  const std::set<std::int32_t> used(d.row_block.begin(), d.row_block.end());
  CHECK(d.num_blocks() == static_cast<std::int64_t>(used.size()));
  CHECK(dataset_problem(d).empty());
}

TEST_CASE("blocks: split_tail gives each part the blocks its rows use", "[blocks]") {
  const Generated g(15, 120, 5);
  FeatureMap map;
  const Dataset d = read_dataset(g.spec(), skip_values(MapKind::Hash), map);
  const Dataset m = materialize(d);
  Dataset head, tail, mhead, mtail;
  split_tail(d, 0.1, head, tail);
  split_tail(m, 0.1, mhead, mtail);
  REQUIRE(tail.rows() == 12);
  CHECK(dataset_problem(head).empty());
  CHECK(dataset_problem(tail).empty());
  CHECK_FALSE(mtail.has_blocks());
  for (const Dataset* p : {&head, &tail}) {
    const std::set<std::int32_t> used(p->row_block.begin(), p->row_block.end());
    CHECK(p->num_blocks() == static_cast<std::int64_t>(used.size()));
    CHECK(*used.rbegin() == p->num_blocks() - 1);
  }
  CHECK(tail.num_blocks() < d.num_blocks());
  check_same_batches(head, mhead, 2);
  check_same_batches(tail, mtail, 3);
  CHECK(materialize(tail).ids == mtail.ids);
  CHECK(materialize(head).offsets == mhead.offsets);
}

TEST_CASE("blocks: the cache stores the blocks, a cache of the old format is refused by name", "[blocks][cache]") {
  const Generated g(9, 80, 13);
  FeatureMap map;
  const Dataset d = read_dataset(g.spec(), skip_values(MapKind::Vocab, 2), map);
  const fs::path file = g.dir.path / "data.cache";
  write_cache(d, map, file.string());
  FeatureMap loaded;
  ReadReport rep;
  const Dataset back = read_dataset("cache:" + file.string(), {}, loaded, &rep);
  CHECK(loaded == map);
  CHECK(rep.rows_kept == d.rows());
  CHECK(back.offsets == d.offsets);
  CHECK(back.ids == d.ids);
  CHECK(back.weights == d.weights);
  CHECK(back.labels == d.labels);
  CHECK(back.row_block == d.row_block);
  CHECK(back.block_offsets == d.block_offsets);
  CHECK(back.block_ids == d.block_ids);
  CHECK(back.block_weights == d.block_weights);
  check_same_batches(back, materialize(d), 4);

  // Version 1 (no blocks): the header's version field is the u32 after the 8-byte magic.
  std::string bytes = slurp(file);
  const std::uint32_t v1 = 1;
  std::memcpy(bytes.data() + 8, &v1, 4);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  FeatureMap m;
  CHECK_THROWS_WITH(read_cache(file.string(), m), Catch::Contains(file.string()) &&
                                                      Catch::Contains("expected format version 3") &&
                                                      Catch::Contains("got version 1") &&
                                                      Catch::Contains("funnel convert"));
  CHECK(m.empty());
}

TEST_CASE("blocks: dataset_problem finds broken block references", "[blocks]") {
  Dataset d;
  d.num_fields = 2;
  d.vocab = 10;
  d.field_names = {"a", "b"};
  d.offsets = {0, 1, 1, 1, 2};
  d.ids = {1, 2};
  d.weights = {1, 1};
  d.labels = {0, 0, 1, 0};
  d.row_block = {0, -1};
  d.block_offsets = {0, 2, 3};
  d.block_ids = {3, 4, 5};
  d.block_weights = {1, 1, 1};
  CHECK(dataset_problem(d).empty());
  CHECK(d.total_ids() == 5);
  CHECK(d.cell_size(0, 0) == 3);
  CHECK(d.cell_size(1, 0) == 0);
  IdBatch b;
  const std::vector<std::int64_t> rows{1, 0};
  gather_batch(d, rows, b, nullptr, nullptr);
  CHECK(b.offsets == std::vector<std::int64_t>{0, 0, 1, 4, 5});
  CHECK(b.ids == std::vector<std::int64_t>{2, 1, 3, 4, 5});

  Dataset bad = d;
  bad.row_block[1] = 1;
  CHECK_THAT(dataset_problem(bad), Catch::Contains("refers to block 1"));
  bad = d;
  bad.row_block.pop_back();
  CHECK_THAT(dataset_problem(bad), Catch::Contains("row_block"));
  bad = d;
  bad.block_ids[2] = 10;
  CHECK_THAT(dataset_problem(bad), Catch::Contains("block ids"));
  bad = d;
  bad.block_offsets = {0, 3, 2};
  CHECK_THAT(dataset_problem(bad), Catch::Contains("decrease"));
  bad = d;
  bad.row_block.clear();
  CHECK_THAT(dataset_problem(bad), Catch::Contains("without row_block"));
}
