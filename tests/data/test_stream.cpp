// Cache v3 and streaming batches: the streaming path against the in-memory one, epoch orders, broken files.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>

#include "core/error.hpp"
#include "data/aliccp_synth.hpp"
#include "data/readers.hpp"
#include "data/stream.hpp"
#include "data/stream_cache.hpp"
#include "support/files.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;

namespace {

using funnel::test::slurp;
using funnel::test::spit;

// A small generated Ali-CCP directory.
struct Generated {
  test::TempDir dir{"stream"};
  explicit Generated(std::int64_t rows, std::uint64_t seed = 3) {
    AliccpSynthConfig c;
    c.rows = rows;
    c.seed = seed;
    write_aliccp_synth(c, dir.path.string());
  }
  std::string spec() const { return "aliccp:" + dir.path.string(); }
};

ReadOptions options(MapKind kind, PoolWeights w = PoolWeights::Values) {
  ReadOptions o;
  o.mapping.kind = kind;
  o.mapping.buckets = 1 << 10;
  o.mapping.min_count = 2;
  o.weights = w;
  return o;
}

void check_same_batch(const IdBatch& a, const IdBatch& b) {
  REQUIRE(a.batch == b.batch);
  REQUIRE(a.fields == b.fields);
  CHECK(a.offsets == b.offsets);
  CHECK(a.ids == b.ids);
  // bit-identical weights
  REQUIRE(a.weights.size() == b.weights.size());
  CHECK(std::memcmp(a.weights.data(), b.weights.data(), a.weights.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("stream: convert streams into a v3 cache whose batches equal the in-memory reader's", "[stream]") {
  const Generated g(3000);
  for (const MapKind kind : {MapKind::Hash, MapKind::Vocab}) {
    for (const PoolWeights w : {PoolWeights::Ones, PoolWeights::Values}) {
      // In memory: the reader's Dataset. Streaming: convert (chunks of 257 rows) and read batches in place.
      FeatureMap mem_map;
      const Dataset d = read_dataset(g.spec(), options(kind, w), mem_map);
      const std::string file = g.dir.file("c.cache");
      FeatureMap map;
      ReadReport rep;
      CHECK(convert_to_cache(g.spec(), options(kind, w), map, file, &rep, 257) == 3000);
      CHECK(rep.rows_kept == 3000);
      CHECK(map == mem_map);
      const CacheFile cf(file);
      CHECK(cf.rows() == d.rows());
      CHECK(cf.vocab() == d.vocab);
      CHECK(cf.num_chunks() == (3000 + 256) / 257);
      CHECK(cf.map() == mem_map);

      StreamOptions so;
      so.batch_size = 100;
      so.shuffle = false;
      so.prefetch = 2;
      BatchStream bs(cf, so);
      for (int epoch = 0; epoch < 2; ++epoch) {
        bs.start_epoch(epoch);
        std::int64_t next_row = 0;
        IdBatch want;
        std::vector<float> want_labels;
        while (StreamBatch* b = bs.next()) {
          std::vector<std::int64_t> rows(static_cast<std::size_t>(b->size));
          std::iota(rows.begin(), rows.end(), next_row);
          CHECK(b->rows == rows);
          want_labels.resize(rows.size() * 2);
          gather_batch(d, rows, want, want_labels.data(), nullptr);
          check_same_batch(b->ids, want);
          CHECK(b->labels == want_labels);
          next_row += b->size;
        }
        CHECK(next_row == 3000);
      }
      // The in-memory path from the same cache (read_cache) gives the same batches too.
      FeatureMap m2;
      const Dataset back = read_cache(file, m2);
      std::vector<std::int64_t> some{2999, 0, 256, 257, 1234};
      IdBatch a, b;
      std::vector<float> la(10), lb(10);
      gather_batch(back, some, a, la.data(), nullptr);
      cf.gather(some, b, lb.data(), nullptr);
      check_same_batch(a, b);
      CHECK(la == lb);
      std::filesystem::remove(file);
    }
  }
}

TEST_CASE("stream: csv data with dense columns round-trips through the streaming convert", "[stream]") {
  test::TempDir t("stream_csv");
  std::string text = "click,purchase,a,b,D1,D2\n";
  for (int i = 0; i < 500; ++i)
    text += std::to_string(i % 7 == 0) + "," + std::to_string(i % 21 == 0) + ",x" + std::to_string(i % 13) + ",y" +
            std::to_string(i % 5) + "," + std::to_string(i * 0.5) + "," + std::to_string(-i) + "\n";
  t.write("d.csv", text);
  FeatureMap m1, m2;
  const Dataset d = read_dataset("csv:" + t.file("d.csv"), options(MapKind::Vocab), m1);
  convert_to_cache("csv:" + t.file("d.csv"), options(MapKind::Vocab), m2, t.file("d.cache"), nullptr, 64);
  CHECK(m1 == m2);
  FeatureMap m3;
  const Dataset back = read_cache(t.file("d.cache"), m3);
  CHECK(back.offsets == d.offsets);
  CHECK(back.ids == d.ids);
  CHECK(back.dense == d.dense);
  CHECK(back.labels == d.labels);
  CHECK(back.dense_names == d.dense_names);
}

TEST_CASE("stream: shuffled epochs visit every row exactly once, deterministically per seed and epoch", "[stream]") {
  const Generated g(2000);
  FeatureMap map;
  const std::string file = g.dir.file("c.cache");
  convert_to_cache(g.spec(), options(MapKind::Hash), map, file, nullptr, 128);
  const CacheFile cf(file);
  REQUIRE(cf.num_chunks() == 16);
  auto order = [&](std::uint64_t seed, std::int64_t epoch, std::int64_t window) {
    EpochOrder o(cf, true, window, seed, epoch);
    std::vector<std::int64_t> all, buf(97);
    while (const std::size_t n = o.next(buf.data(), buf.size())) all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    return all;
  };
  std::vector<std::int64_t> iota(2000);
  std::iota(iota.begin(), iota.end(), 0);
  for (const std::int64_t window : {1, 50, 300, 5000}) {
    const auto a = order(7, 0, window);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == iota);                 // every row exactly once
    CHECK(order(7, 0, window) == a);       // deterministic
    CHECK(order(7, 1, window) != a);       // another epoch, another order
    CHECK(order(8, 0, window) != a);       // another seed, another order
    CHECK(a != iota);
  }
  // Window 1: chunks shuffled, rows inside a chunk in order.
  const auto w1 = order(7, 0, 1);
  for (std::size_t i = 0; i < w1.size(); ++i)
    if (w1[i] % 128 != 0) CHECK(w1[i] == w1[i - 1] + 1);  // chunk starts are multiples of 128
  // A window larger than a chunk mixes rows of several chunks within one batch.
  const auto w5 = order(7, 0, 300);
  std::set<std::int64_t> chunks;
  for (std::size_t i = 0; i < 100; ++i) chunks.insert(cf.chunk_of(w5[i]));
  CHECK(chunks.size() >= 2);
  // The batch stream follows the same order.
  StreamOptions so;
  so.batch_size = 97;
  so.shuffle_window = 300;
  so.seed = 7;
  BatchStream bs(cf, so);
  bs.start_epoch(0);
  std::vector<std::int64_t> seen;
  while (StreamBatch* b = bs.next()) seen.insert(seen.end(), b->rows.begin(), b->rows.end());
  CHECK(seen == w5);
  // Restarting in the middle of an epoch is fine.
  bs.start_epoch(1);
  REQUIRE(bs.next() != nullptr);
  bs.start_epoch(1);
  std::int64_t n = 0;
  while (StreamBatch* b = bs.next()) n += b->size;
  CHECK(n == 2000);
}

TEST_CASE("stream: per-process chunk shares (chunk i to process i % N) cover every row exactly once per epoch",
          "[stream]") {
  const Generated g(2000);
  FeatureMap map;
  const std::string file = g.dir.file("c.cache");
  convert_to_cache(g.spec(), options(MapKind::Hash), map, file, nullptr, 128);
  const CacheFile cf(file);
  REQUIRE(cf.num_chunks() == 16);  // the last one holds 80 rows
  for (const std::int64_t N : {1, 3, 5}) {
    for (const std::int64_t epoch : {0, 1}) {
      std::vector<std::int64_t> all;
      std::int64_t counted = 0;
      for (std::int64_t r = 0; r < N; ++r) {
        EpochOrder o(cf, true, 200, 7, epoch, 0, -1, N, r);
        std::vector<std::int64_t> mine, buf(64);
        while (const std::size_t n = o.next(buf.data(), buf.size()))
          mine.insert(mine.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
        for (const std::int64_t row : mine) CHECK(cf.chunk_of(row) % N == r);  // only this process's chunks
        CHECK(static_cast<std::int64_t>(mine.size()) == rows_in_chunks(cf, 0, -1, N, r));
        counted += rows_in_chunks(cf, 0, -1, N, r);
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::sort(all.begin(), all.end());
      std::vector<std::int64_t> iota(2000);
      std::iota(iota.begin(), iota.end(), 0);
      CHECK(all == iota);
      CHECK(counted == 2000);
    }
  }
  // A share of a chunk range: chunks 4.. of the file, every second from the second.
  EpochOrder o(cf, false, 1, 1, 0, 4, -1, 2, 1);
  std::vector<std::int64_t> rows(4000);
  rows.resize(o.next(rows.data(), rows.size()));
  std::set<std::int64_t> chunks;
  for (const std::int64_t row : rows) chunks.insert(cf.chunk_of(row));
  CHECK(chunks == std::set<std::int64_t>{5, 7, 9, 11, 13, 15});
  CHECK_THROWS_WITH(rows_in_chunks(cf, 0, -1, 2, 2), Catch::Contains("offset"));
}

TEST_CASE("stream: truncated, corrupt and old caches are clear errors", "[stream]") {
  const Generated g(1500);
  FeatureMap map;
  const std::string file = g.dir.file("c.cache");
  convert_to_cache(g.spec(), options(MapKind::Hash), map, file, nullptr, 256);
  const std::string good = slurp(file);
  const std::string bad = g.dir.file("bad.cache");
  auto open_err = [&](const std::string& bytes) -> std::string {
    spit(bad, bytes);
    try {
      const CacheFile cf(bad);
      StreamOptions so;
      so.shuffle = false;
      BatchStream bs(cf, so);
      bs.start_epoch(0);
      while (bs.next()) {
      }
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(open_err(good.substr(0, good.size() / 2)), Catch::Contains("truncated") && Catch::Contains(bad));
  CHECK_THAT(open_err(good.substr(0, 100)), Catch::Contains("truncated"));
  CHECK_THAT(open_err(good.substr(0, 12)), Catch::Contains("truncated"));
  CHECK_THAT(open_err(good + "xx"), Catch::Contains("truncated"));
  CHECK_THAT(open_err(""), Catch::Contains("empty file"));
  CHECK_THAT(open_err("click,purchase\n0,0\n"), Catch::Contains("magic"));
  // A flipped byte inside a chunk: found when the chunk is read (by the reader thread), with its number.
  std::string flipped = good;
  flipped[300] ^= 0x10;
  CHECK_THAT(open_err(flipped), Catch::Contains("checksum mismatch in chunk 0"));
  // ... in the meta section (just before the 64-byte footer).
  flipped = good;
  flipped[good.size() - 70] ^= 0x10;
  CHECK_THAT(open_err(flipped), Catch::Contains("checksum"));
  // An older format: refused with what to do.
  std::string old = good;
  const std::uint32_t v2 = 2;
  std::memcpy(old.data() + 8, &v2, 4);
  CHECK_THAT(open_err(old), Catch::Contains("got version 2") && Catch::Contains("convert the data again"));
  CHECK(open_err(good).empty());
  // The in-memory path reports the same.
  spit(bad, good.substr(0, good.size() - 1));
  FeatureMap m;
  CHECK_THROWS_WITH(read_cache(bad, m), Catch::Contains("truncated"));
}

TEST_CASE("synth: generated Ali-CCP files are deterministic, readable and refuse to overwrite", "[stream][synth]") {
  const Generated a(4000, 5), b(4000, 5), c(4000, 6);
  const std::string sk = "/sample_skeleton_train.csv", cm = "/common_features_train.csv";
  CHECK(slurp(a.dir.path.string() + sk) == slurp(b.dir.path.string() + sk));
  CHECK(slurp(a.dir.path.string() + cm) == slurp(b.dir.path.string() + cm));
  CHECK(slurp(a.dir.path.string() + sk) != slurp(c.dir.path.string() + sk));
  FeatureMap map;
  ReadReport rep;
  const Dataset d = read_dataset(a.spec(), {}, map, &rep);
  CHECK(d.rows() == 4000);
  CHECK(rep.common_rows == 70);  // 4000 * 0.73 / 42
  std::int64_t clicks = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) clicks += d.label(r, 0);
  CHECK(clicks > 40);
  CHECK(clicks < 400);
  AliccpSynthConfig cfg;
  cfg.rows = 10;
  CHECK_THROWS_WITH(write_aliccp_synth(cfg, a.dir.path.string()), Catch::Contains("exists"));
}
