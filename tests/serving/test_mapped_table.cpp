// The Predictor's embedding tables are memory-mapped from the checkpoint: the table's data lies inside a read-only
// file mapping, the process's anonymous memory does not grow by the table's size, a damaged or truncated table file
// is an error naming it, and an old version's mapping lives until its last user lets it go.
#include <catch2/catch.hpp>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "serving/mapped_table.hpp"
#include "serving/predictor.hpp"
#include "serving_util.hpp"
#include "support/temp_dir.hpp"
#include "train/checkpoint.hpp"
#include "train/loop.hpp"
#include "train/trainer.hpp"

using namespace funnel;
using namespace funnel::test;

namespace mapped_test {

// What /proc/self/smaps says of the mapping that contains `addr`.
struct Region {
  bool found = false;
  std::string path;
  long rss_kb = 0, anon_kb = 0;
  std::string perms;
};

Region region_of(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  Region r;
  bool in_it = false;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  for (std::string line; std::getline(in, line);) {
    unsigned long lo = 0, hi = 0;
    char dash = 0;
    std::istringstream ss(line);
    if (line.find('-') < 16 && (ss >> std::hex >> lo >> dash >> hi) && dash == '-') {
      if (in_it) break;
      in_it = a >= lo && a < hi;
      if (in_it) {
        r.found = true;
        std::string perms, off, dev, inode;
        ss >> perms >> off >> dev >> inode;
        r.perms = perms;
        std::getline(ss, r.path);
        r.path.erase(0, r.path.find_first_not_of(' '));
      }
      continue;
    }
    if (!in_it) continue;
    auto field = [&](const char* name) {
      if (line.rfind(name, 0) != 0) return -1L;
      return std::stol(line.substr(std::string(name).size()));
    };
    if (long v = field("Rss:"); v >= 0) r.rss_kb = v;
    if (long v = field("Anonymous:"); v >= 0) r.anon_kb = v;
  }
  return r;
}

long rss_anon_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
  return -1;
}

std::vector<std::string> cells(const std::string& s) {
  std::vector<std::string> out;
  std::string c;
  std::stringstream ss(s);
  while (std::getline(ss, c, ',')) out.push_back(c);
  if (!s.empty() && s.back() == ',') out.push_back("");
  return out;
}

// The fixture's csv lines (without the header) as views, and the embedding table's manifest entry.
std::vector<std::string_view> data_lines(const std::vector<std::string>& lines) {
  return {lines.begin() + 1, lines.end()};
}

const CheckpointParam& table_entry(const CheckpointInfo& info) {
  for (const auto& p : info.params)
    if (p.shape.size() == 2 && p.name.find("emb") != std::string::npos) return p;
  FAIL("no embedding table in the manifest");
  return info.params.front();
}

}  // namespace mapped_test

using namespace mapped_test;

TEST_CASE("Predictor: the embedding table is read from a read-only mapping of its checkpoint file", "[serving]") {
  const auto lines = read_lines(kRechub);
  TempDir t("mapped_rss");
  const std::string ck = t.file("ck");
  // 23 fields × 32768 buckets × dim 8: a 24 MiB table, the rest of the model a few KiB.
  REQUIRE(shell(kFunnelBin + " train --quiet --model esmm --data csv:" + kRechub +
                " --embedding-dim 8 --hidden 8,4 --batch-size 50 --epochs 1 --buckets 32768 --optimizer sgd --save " +
                ck + " >/dev/null 2>&1") == 0);
  const CheckpointInfo info = read_checkpoint_info(ck);
  const CheckpointParam& tab = table_entry(info);
  const long table_kb = tab.shape[0] * tab.shape[1] * 4 / 1024;
  REQUIRE(table_kb > 20000);
  const auto data = data_lines(lines);
  std::vector<float> out;
  const long anon0 = rss_anon_kb();
  REQUIRE(anon0 > 0);
  {
    Predictor p(ck);
    const auto m = p.current();
    REQUIRE(m->mapped_tables() == 1);
    const MappedTable& mt = m->mapped_table(0);
    CHECK(mt.rows() == tab.shape[0]);
    CHECK(mt.dim() == tab.shape[1]);
    CHECK(mt.path() == ck + "/" + tab.file);
    // The table's rows lie inside the file mapping, which is read-only and private, and holds no anonymous pages.
    const auto* b = static_cast<const char*>(mt.map_begin());
    const auto* d = reinterpret_cast<const char*>(mt.data());
    CHECK(d >= b);
    CHECK(d + tab.shape[0] * tab.shape[1] * 4 == b + mt.map_bytes());
    Region r = region_of(mt.data());
    REQUIRE(r.found);
    CHECK(r.perms == "r--p");
    CHECK(r.path.find(tab.file) != std::string::npos);
    CHECK(r.anon_kb == 0);
    // Loading checked the whole file (its checksum) and then let its pages go: little of it stays resident.
    CHECK(r.rss_kb < table_kb / 4);
    out.resize(data.size() * m->columns().size());
    m->predict_csv(data, out);
    r = region_of(mt.data());
    CHECK(r.anon_kb == 0);
    // The process's anonymous memory grew by far less than the table (model, executors, buffers: a few MiB).
    const long grown = rss_anon_kb() - anon0;
    INFO("RssAnon grew by " << grown << " kB, the table is " << table_kb << " kB");
    CHECK(grown < table_kb / 2);
    // The same numbers as the model loaded into memory by the training side (within the blocking of the gemms).
    const Predictions ref = [&] {
      LoadedModel lm = load_model(ck);
      LoadedData ld = load_data("csv:" + kRechub, ReadOptions{}, &lm.info.data);
      return predict(*lm.model, ld.data, 4096);
    }();
    const std::size_t nc = m->columns().size();
    for (std::size_t i = 0; i < data.size(); ++i)
      for (std::size_t c = 0; c < nc; ++c) CHECK(std::fabs(ref.columns[c][i] - out[i * nc + c]) <= 2e-6f);
  }
}

TEST_CASE("Predictor: a damaged or truncated table file is an error naming it", "[serving]") {
  TempDir t("mapped_damaged");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck);
  const CheckpointInfo info = read_checkpoint_info(ck);
  const CheckpointParam& tab = table_entry(info);
  const std::string file = ck + "/" + tab.file;
  const auto size = std::filesystem::file_size(file);
  auto message = [&] {
    try {
      Predictor p(ck);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  std::string original;
  {
    std::ifstream in(file, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& bytes) {
    std::filesystem::remove(file);  // a new inode, as a save would make
    std::ofstream(file, std::ios::binary) << bytes;
  };
  SECTION("truncated") {
    write(original.substr(0, size - 100));
    const std::string m = message();
    CHECK_THAT(m, Catch::Contains(file) && Catch::Contains("truncated"));
  }
  SECTION("shorter than a header") {
    write(original.substr(0, 8));
    CHECK_THAT(message(), Catch::Contains(file));
  }
  SECTION("a flipped bit in the data") {
    std::string b = original;
    b[b.size() - 7] ^= 0x10;
    write(b);
    CHECK_THAT(message(), Catch::Contains(file) && Catch::Contains("checksum mismatch"));
  }
  SECTION("another dtype in the header") {
    std::string b = original;
    const auto at = b.find("<f4");
    REQUIRE(at != std::string::npos);
    b.replace(at, 3, "<i4");
    write(b);
    CHECK_THAT(message(), Catch::Contains(file));
  }
  SECTION("a directory in its place") {
    std::filesystem::remove(file);
    std::filesystem::create_directory(file);
    CHECK_THAT(message(), Catch::Contains(file));
  }
}

TEST_CASE("Predictor: reload maps the new version, and the old mapping goes with its last user", "[serving]") {
  const auto lines = read_lines(kRechub);
  const auto data = data_lines(lines);
  TempDir t("mapped_reload");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 1");
  Predictor p(ck);
  auto v1 = p.current();
  const std::size_t nc = v1->columns().size();
  std::vector<float> a(data.size() * nc), b(a.size()), a2(a.size());
  v1->predict_csv(data, a);
  const void* old_map = v1->mapped_table(0).map_begin();
  train_checkpoint("esmm", "csv:" + kRechub, ck, "--seed 2 --epochs 2");
  const auto v2 = p.reload();
  REQUIRE(v2->mapped_tables() == 1);
  CHECK(v2->mapped_table(0).map_begin() != old_map);
  v2->predict_csv(data, b);
  CHECK(a != b);
  // The old version's files were replaced by the save; its mapping still holds their bytes.
  REQUIRE(region_of(old_map).found);
  v1->predict_csv(data, a2);
  CHECK(a2 == a);
  v1.reset();  // the last user of version 1: its mapping is released
  CHECK_FALSE(region_of(old_map).found);
  CHECK(region_of(v2->mapped_table(0).map_begin()).found);
}

TEST_CASE("Predictor: mean-pooled multi-valued fields from the mapping give the training side's bits", "[serving]") {
  TempDir t("mapped_mean");
  const std::string ck = t.file("ck");
  train_checkpoint("esmm", "slots:" + kSlots, ck, "--pool mean");
  Predictor p(ck);
  const auto m = p.current();
  REQUIRE(m->mapped_tables() == 1);
  LoadedModel lm = load_model(ck);
  LoadedData ld = load_data("slots:" + kSlots, ReadOptions{}, &lm.info.data);
  REQUIRE(ld.data.rows() >= 8);
  const Predictions ref = predict(*lm.model, ld.data, 8);  // a batch of 8 == one pass of 8
  const std::size_t nc = m->columns().size();
  std::vector<float> out(8 * nc);
  m->predict(ld.data, 0, 8, out);
  for (std::size_t r = 0; r < 8; ++r)
    for (std::size_t c = 0; c < nc; ++c) CHECK(out[r * nc + c] == ref.columns[c][r]);
}
