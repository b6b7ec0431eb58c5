// funnel-synth: writes raw Ali-CCP release files with realistic proportions (data/aliccp_synth.hpp), so that
// benchmarks at scale are reproducible: funnel-synth --out DIR --rows N [--test-rows M] [--users U] [--seed S].
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "data/aliccp_synth.hpp"

namespace {

int usage(const char* msg) {
  std::fprintf(stderr,
               "funnel-synth: %s\n"
               "usage: funnel-synth --out DIR --rows N [--test-rows M] [--users U] [--seed S]\n"
               "  writes DIR/sample_skeleton_train.csv + DIR/common_features_train.csv (N rows) and, with\n"
               "  --test-rows M > 0, the _test files (M rows). Users default to rows * 0.73 / 42.\n",
               msg);
  return 2;
}

// "" when `s` is an integer >= min (stored in out), else what is wrong with it.
std::string parse_int(const char* s, long long min, long long& out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || end == s || *end) return std::string("expected an integer, got '") + s + "'";
  if (v < min) return "must be at least " + std::to_string(min) + ", got " + s;
  out = v;
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  long long rows = -1, test_rows = 0, users = 0, seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage("raw Ali-CCP generator");
      return 0;
    }
    if (i + 1 >= argc) return usage(("missing value for " + a).c_str());
    const char* v = argv[++i];
    std::string bad;
    if (a == "--out") out = v;
    else if (a == "--rows") bad = parse_int(v, 1, rows);
    else if (a == "--test-rows") bad = parse_int(v, 0, test_rows);
    else if (a == "--users") bad = parse_int(v, 1, users);
    else if (a == "--seed") bad = parse_int(v, 0, seed);
    else return usage(("unknown flag " + a).c_str());
    if (a == "--rows" && !bad.empty() && rows < 0 && std::strcmp(v, "0") == 0)
      bad = "must be at least 1 (the train split's rows; --test-rows M adds a test split), got 0";
    if (!bad.empty()) return usage((a + ": " + bad).c_str());
  }
  if (out.empty()) return usage("--out DIR is required");
  if (rows < 0) return usage("--rows N is required");
  try {
    for (int s = 0; s < 2; ++s) {
      funnel::AliccpSynthConfig c;
      c.split = s == 0 ? "train" : "test";
      c.rows = s == 0 ? rows : test_rows;
      if (c.rows == 0) continue;
      c.users = users;
      c.seed = static_cast<std::uint64_t>(seed);
      const auto t0 = std::chrono::steady_clock::now();
      const auto r = funnel::write_aliccp_synth(c, out);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double mb = static_cast<double>(r.skeleton_bytes + r.common_bytes) / 1e6;
      std::printf("%s: %lld rows, %lld users, %lld clicks (%.2f%%), %lld conversions (%.2f%% of clicks); "
                  "%.1f MB in %.2f s (%.0f MB/s)\n",
                  c.split.c_str(), static_cast<long long>(r.rows), static_cast<long long>(r.users),
                  static_cast<long long>(r.clicks), 100.0 * static_cast<double>(r.clicks) / static_cast<double>(r.rows),
                  static_cast<long long>(r.conversions),
                  r.clicks ? 100.0 * static_cast<double>(r.conversions) / static_cast<double>(r.clicks) : 0.0, mb, sec,
                  sec > 0 ? mb / sec : 0.0);
    }
  } catch (const funnel::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
