// funnel convert --data SPEC --out FILE: parse a data set once and write it as a binary cache (dataset + feature
// map), to be used later as --data cache:FILE (memory-mapped, no parsing).
#include <chrono>
#include <cstdio>

#include <unistd.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/files.hpp"
#include "data/readers.hpp"
#include "data/synthetic.hpp"
#include "tools/cli/common.hpp"

namespace funnel::cli {
namespace {

int run_convert(int argc, char** argv) {
  std::set<std::string> valued{"data", "out"};
  valued.insert(kDataFlags.begin(), kDataFlags.end());
  Flags flags(argc, argv, valued, {});
  const std::string spec = flags.required("data");
  const std::string out = flags.required("out");
  if (is_synthetic_spec(spec))
    throw UsageError("--data " + spec + ": synthetic data is generated in memory and needs no cache; convert "
                     "reads csv:, slots:, aliccp: or cache: specs");
  const OutputPlan target = check_output_target(out, dataset_spec_inputs(spec), "--out");
  const ReadOptions opts = read_options(flags);
  FeatureMap map;
  ReadReport rep;
  const auto t0 = std::chrono::steady_clock::now();
  Dataset d = read_dataset(spec, opts, map, &rep);
  const auto t1 = std::chrono::steady_clock::now();
  if (target.kind == OutputPlan::Kind::Replace) {
    write_cache(d, map, target.real_path);  // temp file beside the real target + rename
  } else {
    // A device, FIFO or descriptor: never renamed over. The cache is built in a temporary file and copied in.
    char tmpl[] = "/tmp/funnel-cache-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw Error("cannot create a temporary file in /tmp for the cache");
    ::close(fd);
    try {
      write_cache(d, map, tmpl);
      copy_to_output(tmpl, target);
    } catch (...) {
      ::unlink(tmpl);
      throw;
    }
    ::unlink(tmpl);
  }
  const auto t2 = std::chrono::steady_clock::now();
  const double parse_s = std::chrono::duration<double>(t1 - t0).count();
  const double write_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("%s: %s\n", spec.c_str(), describe(d).c_str());
  std::printf("read %lld rows (%lld kept, %lld skipped), %.1f MB in %.2f s (%.0f MB/s); wrote %s in %.2f s\n",
              static_cast<long long>(rep.rows_read), static_cast<long long>(rep.rows_kept),
              static_cast<long long>(rep.rows_skipped), static_cast<double>(rep.bytes) / 1e6, parse_s,
              parse_s > 0 ? static_cast<double>(rep.bytes) / 1e6 / parse_s : 0.0, out.c_str(), write_s);
  for (const auto& [reason, n] : rep.skipped_by_reason)
    std::printf("  skipped %lld rows: %s\n", static_cast<long long>(n), reason.c_str());
  for (const auto& [what, n] : rep.dropped_features)
    std::printf("  dropped %lld features: %s\n", static_cast<long long>(n), what.c_str());
  std::printf("use it as --data cache:%s\n", out.c_str());
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(convert, "convert", "parse a data set once into a binary cache (use as --data cache:FILE)",
               funnel::cli::run_convert);
