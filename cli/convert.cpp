// funnel convert --data SPEC --out FILE: parse a data set once and write it as a binary cache (dataset + feature
// map), to be used later as --data cache:FILE (memory-mapped, no parsing).
#include <chrono>
#include <cstdio>

#include <unistd.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/files.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"
#include "data/synthetic.hpp"
#include "cli/common.hpp"

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
  std::vector<std::string> inputs = dataset_spec_inputs(spec);
  if (!flags.config_file().empty()) inputs.push_back(flags.config_file());
  const OutputPlan target = check_output_target(out, inputs, "--out");
  const ReadOptions opts = read_options(flags);
  FeatureMap map;
  ReadReport rep;
  const auto t0 = std::chrono::steady_clock::now();
  // Streaming: rows go to the cache a chunk at a time (data/stream_cache.hpp), so memory does not grow with rows.
  // A regular target is replaced atomically (temp file beside it + rename); a device, FIFO or descriptor is never
  // renamed over: the cache is built in a temporary file and copied in.
  std::string written_path = target.real_path;
  if (target.kind == OutputPlan::Kind::Replace) {
    convert_to_cache(spec, opts, map, target.real_path, &rep);
  } else {
    char tmpl[] = "/tmp/funnel-cache-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw Error("cannot create a temporary file in /tmp for the cache");
    ::close(fd);
    written_path = tmpl;
  }
  struct Unlink {
    std::string p;
    ~Unlink() { if (!p.empty()) ::unlink(p.c_str()); }
  } cleanup{target.kind == OutputPlan::Kind::Replace ? std::string() : written_path};
  if (target.kind != OutputPlan::Kind::Replace) convert_to_cache(spec, opts, map, written_path, &rep);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const CacheFile written(written_path);
  if (target.kind != OutputPlan::Kind::Replace) copy_to_output(written_path, target);
  std::printf("%s: %lld rows, %lld clicks, %lld conversions, %lld fields, vocab %lld, %lld shared blocks\n",
              spec.c_str(), static_cast<long long>(written.rows()), static_cast<long long>(written.clicks()),
              static_cast<long long>(written.conversions()), static_cast<long long>(written.num_fields()),
              static_cast<long long>(written.vocab()), static_cast<long long>(written.num_blocks()));
  std::printf("read %lld rows (%lld kept, %lld skipped), %.1f MB in %.2f s (%.0f MB/s); wrote %s (%.1f MB)\n",
              static_cast<long long>(rep.rows_read), static_cast<long long>(rep.rows_kept),
              static_cast<long long>(rep.rows_skipped), static_cast<double>(rep.bytes) / 1e6, sec,
              sec > 0 ? static_cast<double>(rep.bytes) / 1e6 / sec : 0.0, out.c_str(),
              static_cast<double>(written.file_bytes()) / 1e6);
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
