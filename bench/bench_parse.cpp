// Raw Ali-CCP parsing throughput. Generates, once per process, a sample_skeleton + common_features pair of about
// 210 MB in the release format (23 fields, multi-valued user fields of 5..40 values, \x01 \x02 \x03 separators)
// in a temporary directory, then times read_dataset("aliccp:DIR") on one core. Bytes/s counts both files.
// tools/parse_baseline.py parses the same files the way public preprocessing scripts do, for comparison:
//   FUNNEL_BENCH_KEEP=1 build/bin/funnel-bench --benchmark_filter=Aliccp   (prints and keeps the directory)
//   python3 tools/parse_baseline.py DIR
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/readers.hpp"

namespace {

namespace fs = std::filesystem;

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return next() % n; }
};

class AliccpFiles {
 public:
  static const AliccpFiles& get() {
    static const AliccpFiles f;
    return f;
  }
  std::string dir;
  std::int64_t bytes = 0;
  std::int64_t rows = 0;

 private:
  AliccpFiles() {
    dir = (fs::temp_directory_path() / ("funnel_bench_aliccp_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    keep_ = std::getenv("FUNNEL_BENCH_KEEP") != nullptr;
    Rng rng{12345};
    constexpr int kUsers = 40000;
    constexpr int kRows = 600000;
    std::string buf;
    auto feat = [&](const char* field, std::uint64_t id, const char* value, bool first) {
      if (!first) buf += '\x01';
      buf += field;
      buf += '\x02';
      buf += std::to_string(id);
      buf += '\x03';
      buf += value;
    };
    static const char* kValues[] = {"0.693147", "1.098612", "1.386294", "1.609438", "2.079442", "2.302585"};
    {
      std::FILE* f = std::fopen((dir + "/common_features_train.csv").c_str(), "wb");
      for (int u = 0; u < kUsers; ++u) {
        buf.clear();
        int n = 0;
        bool first = true;
        for (const char* fld : {"101", "121", "122", "124", "125", "126", "127", "128", "129"}) {
          feat(fld, rng.below(fld[2] == '1' ? 400000 : 100) + 1, "1.0", first);
          first = false;
          ++n;
        }
        for (const char* fld : {"109_14", "110_14", "127_14", "150_14"}) {
          const int k = 5 + static_cast<int>(rng.below(36));
          for (int i = 0; i < k; ++i) feat(fld, 1000000 + rng.below(9000000), kValues[rng.below(6)], false);
          n += k;
        }
        char key[32];
        std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(rng.next()));
        keys_.emplace_back(key);
        const std::string line = std::string(key) + "," + std::to_string(n) + "," + buf + "\n";
        std::fwrite(line.data(), 1, line.size(), f);
        bytes += static_cast<std::int64_t>(line.size());
      }
      std::fclose(f);
    }
    {
      std::FILE* f = std::fopen((dir + "/sample_skeleton_train.csv").c_str(), "wb");
      for (int r = 0; r < kRows; ++r) {
        buf.clear();
        int n = 0;
        bool first = true;
        for (const char* fld : {"205", "206", "207", "216", "508", "509", "702", "853", "301"}) {
          if (fld[0] != '2' && fld[0] != '3' && rng.below(4) == 0) continue;  // combination fields sometimes absent
          feat(fld, rng.below(fld[0] == '3' ? 3 : 5000000) + 1, "1.0", first);
          first = false;
          ++n;
        }
        const int k = 1 + static_cast<int>(rng.below(3));
        for (int i = 0; i < k; ++i, ++n) feat("210", 9000000 + rng.below(100000), "1.0", false);
        const int click = rng.below(25) == 0;
        const int conv = click && rng.below(20) == 0;
        const std::string line = std::to_string(r + 1) + "," + std::to_string(click) + "," + std::to_string(conv) +
                                 "," + keys_[rng.below(keys_.size())] + "," + std::to_string(n) + "," + buf + "\n";
        std::fwrite(line.data(), 1, line.size(), f);
        bytes += static_cast<std::int64_t>(line.size());
      }
      std::fclose(f);
      rows = kRows;
    }
    if (keep_) std::fprintf(stderr, "bench_parse: Ali-CCP files kept in %s (%lld bytes)\n", dir.c_str(),
                            static_cast<long long>(bytes));
  }
  ~AliccpFiles() {
    if (!keep_) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
  bool keep_ = false;
  std::vector<std::string> keys_;
};

void run(benchmark::State& state, funnel::MapKind kind, funnel::PoolWeights w) {
  const AliccpFiles& files = AliccpFiles::get();
  funnel::ReadOptions o;
  o.mapping.kind = kind;
  o.mapping.buckets = 1 << 18;
  o.weights = w;
  std::int64_t ids = 0;
  for (auto _ : state) {
    funnel::FeatureMap map;
    funnel::Dataset d = funnel::read_dataset("aliccp:" + files.dir, o, map, nullptr);
    ids = d.total_ids();  // own and shared ids, as if every row held its common features
    benchmark::DoNotOptimize(d.ids.data());
  }
  state.SetBytesProcessed(state.iterations() * files.bytes);
  state.SetItemsProcessed(state.iterations() * files.rows);
  state.counters["MB"] = static_cast<double>(files.bytes) / 1e6;
  state.counters["ids"] = static_cast<double>(ids);
}

void BM_ParseAliccpHash(benchmark::State& s) { run(s, funnel::MapKind::Hash, funnel::PoolWeights::Ones); }
void BM_ParseAliccpHashValues(benchmark::State& s) { run(s, funnel::MapKind::Hash, funnel::PoolWeights::Values); }
void BM_ParseAliccpVocab(benchmark::State& s) { run(s, funnel::MapKind::Vocab, funnel::PoolWeights::Ones); }

BENCHMARK(BM_ParseAliccpHash)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_ParseAliccpHashValues)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_ParseAliccpVocab)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace

// funnel-bench links benchmark::benchmark (no main). This weak main is used only if no other bench file defines
// one, so adding a strong main (or linking benchmark_main) elsewhere does not clash.
__attribute__((weak)) int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
