#include "cli/common.hpp"


#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/simd.hpp"
#include "ops/gemm_backend.hpp"

namespace funnel::cli {

const std::set<std::string> kDataFlags{"on-bad-row", "buckets", "min-count", "pool-weights", "max-rows", "user-column"};

ReadOptions read_options(const Flags& f) {
  ReadOptions o;
  try {
    o.on_bad_row = parse_on_bad_row(f.str("on-bad-row", "error"));
  } catch (const Error&) {
    throw UsageError("--on-bad-row: expected error or skip, got '" + printable(f.str("on-bad-row", "")) + "'");
  }
  try {
    o.weights = parse_pool_weights(f.str("pool-weights", "ones"));
  } catch (const Error&) {
    throw UsageError("--pool-weights: expected ones or values, got '" + printable(f.str("pool-weights", "")) + "'");
  }
  o.max_rows = f.integer("max-rows", 0, 0);
  if (f.has("user-column")) {
    o.user_column = f.str("user-column", "");
    if (o.user_column.empty()) throw UsageError("--user-column: expected a column name, got ''");
    if (f.str("data", "").rfind("csv:", 0) != 0 && f.str("eval-data", "").rfind("csv:", 0) != 0)
      throw UsageError("--user-column: applies to csv: data only (Ali-CCP data has its user key), got --data '" +
                       f.str("data", "") + "'");
  }
  if (f.has("min-count")) {
    o.mapping.kind = MapKind::Vocab;
    o.mapping.min_count = f.integer("min-count", 1, 1);
  }
  if (f.has("buckets")) {
    if (f.has("min-count")) throw UsageError("--buckets (hashing) and --min-count (vocabulary) exclude each other");
    o.mapping.buckets = f.integer("buckets", 1 << 16, 1);
    if (o.mapping.buckets > (std::int64_t{1} << 30))
      throw UsageError("--buckets: at most 2^30 rows per field, got " + f.str("buckets", ""));
  }
  return o;
}

LoadedData read_data(const std::string& spec, const Flags& flags, const nlohmann::json* map_json) {
  LoadedData d = funnel::load_data(spec, read_options(flags), map_json);
  if (!d.skipped.empty()) std::fprintf(stderr, "%s\n", d.skipped.c_str());
  return d;
}


void check_distinct_outputs(const Flags& f, const std::vector<std::string>& flags) {
  std::vector<std::pair<std::string, std::string>> seen;  // flag, real path
  for (const auto& name : flags) {
    if (!f.has(name) || f.str(name, "").empty()) continue;
    const std::string path = f.str(name, "");
    std::string real = path;
    try {
      real = resolve_path(path);
    } catch (const Error&) {
    }
    for (const auto& [other, other_real] : seen)
      if (other_real == real || same_file(other_real, real))
        throw UsageError("--" + name + " and --" + other + " name the same file " + printable(path) +
                         ": one would overwrite the other; give each output its own file");
    seen.emplace_back(name, real);
  }
}

nlohmann::json model_options_flag(const Flags& f) {
  if (!f.has("model-options")) return nlohmann::json::object();
  try {
    return parse_model_options(f.str("model-options", ""));
  } catch (const std::exception& e) {
    throw UsageError(std::string("--model-options: ") + e.what());
  }
}

GemmPrecision precision_flag(const Flags& f) {
  const std::string s = f.str("precision", "fp32");
  const auto p = parse_gemm_precision(s);
  if (!p) throw UsageError("--precision: expected fp32 or bf16, got '" + s + "'");
  if (*p == GemmPrecision::bf16) {
    bool native = false;
    try {
      native = bf16_impl() == Bf16Impl::native && gemm_backend() == GemmBackend::onednn;
    } catch (const std::invalid_argument& e) {  // FUNNEL_BF16 or FUNNEL_GEMM
      throw UsageError(e.what());
    }
    static bool said = false;  // once per process
    if (!native && !said) {
      const std::string why = !bf16_native_available()                  ? bf16_native_unavailable_reason()
                              : gemm_backend() != GemmBackend::onednn ? "the gemm backend is openblas"
                                                                        : "FUNNEL_BF16=emulated";
      std::fprintf(stderr, "--precision bf16: emulated (bf16-rounded inputs, fp32 gemm): %s\n", why.c_str());
      said = true;
    }
  }
  return *p;
}

void set_precision(const Flags& f) { set_gemm_precision(precision_flag(f)); }

void set_threads(int n) {
  if (n < 1) throw UsageError("--threads must be at least 1");
  if (n > 256) throw UsageError("--threads: at most 256, got " + std::to_string(n));
  funnel::set_num_threads(n);
  try {
    (void)funnel::gemm_backend();  // reads FUNNEL_GEMM now, so a bad value stops the command before any work
    (void)funnel::simd_isa();      // and FUNNEL_ISA
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace funnel::cli
