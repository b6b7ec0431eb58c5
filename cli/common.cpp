#include "cli/common.hpp"
#include "cli/train_flags.hpp"


#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "core/simd.hpp"
#include "ops/gemm_backend.hpp"

namespace funnel::cli {

const OptionTable<ReadOptions>& read_option_table() {
  using R = ReadOptions;
  static const OptionTable<R> t = [] {
    // --min-count: a vocabulary instead of hashing (no default: hashing is).
    auto min_count = int_option<R>("min-count", [](auto& o) -> auto& { return o.mapping.min_count; }, 1,
                                   std::numeric_limits<std::int64_t>::max(),
                                   "build a vocabulary instead of hashing: features seen fewer times share one row "
                                   "per field",
                                   "≥ 1; not with --buckets");
    const auto set_count = min_count.set;
    min_count.set = [set_count](const std::string& v, R& o) {
      o.mapping.kind = MapKind::Vocab;
      set_count(v, o);
    };
    min_count.text = [](const R& o) {
      return o.mapping.kind == MapKind::Vocab ? std::to_string(o.mapping.min_count) : std::string();
    };
    return OptionTable<R>{
        choice_option<R>("on-bad-row", [](auto& o) -> auto& { return o.on_bad_row; },
                         std::vector<std::pair<std::string, OnBadRow>>{{"error", OnBadRow::Error},
                                                                       {"skip", OnBadRow::Skip}},
                         "what a malformed input row does: stop with an error naming file, line and field, or be "
                         "skipped and counted"),
        int_option<R>("buckets", [](auto& o) -> auto& { return o.mapping.buckets; }, 1, std::int64_t{1} << 30,
                      "hash each field's features into this many embedding rows per field (the default mapping)",
                      "1..2^30; not with --min-count"),
        min_count,
        choice_option<R>("pool-weights", [](auto& o) -> auto& { return o.weights; },
                         std::vector<std::pair<std::string, PoolWeights>>{{"ones", PoolWeights::Ones},
                                                                          {"values", PoolWeights::Values}},
                         "weight of each id in a pooled multi-valued field: 1, or the feature's value (aliccp)"),
        int_option<R>("max-rows", [](auto& o) -> auto& { return o.max_rows; }, 0,
                      std::numeric_limits<std::int64_t>::max(), "read at most this many rows of each data set (0 = all)"),
        text_option<R>("user-column", [](auto& o) -> auto& { return o.user_column; }, "NAME",
                       "csv: the column naming each row's user, for the GAUC metrics (it stays a feature too)",
                       "a column of the csv header",
                       [](const std::string& v) { return v.empty() ? "expected a column name, got ''" : ""; }),
    };
  }();
  return t;
}

const std::set<std::string> kDataFlags = [] {
  std::set<std::string> names;
  for (const auto& r : read_option_table()) names.insert(r.name);
  return names;
}();

ReadOptions read_options(const Flags& f) {
  ReadOptions o;
  if (f.has("buckets") && f.has("min-count"))
    throw UsageError("--buckets (hashing) and --min-count (vocabulary) exclude each other");
  apply_options(read_option_table(), f, o);
  if (f.has("user-column") && f.str("data", "").rfind("csv:", 0) != 0 && f.str("eval-data", "").rfind("csv:", 0) != 0)
    throw UsageError("--user-column: applies to csv: data only (Ali-CCP data has its user key), got --data '" +
                     f.str("data", "") + "'");
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

namespace {
// The flag `name` read by its row of the training table alone (its check, its default): eval and predict.
RunOptions one_training_flag(const Flags& f, const std::string& name) {
  RunOptions r;
  for (const auto& row : run_option_table())
    if (row.name == name) apply_options(OptionTable<RunOptions>{row}, f, r);
  return r;
}
}  // namespace

GemmPrecision precision_flag(const Flags& f) {
  const GemmPrecision p = one_training_flag(f, "precision").trainer.precision;
  check_precision(p);
  return p;
}

int threads_flag(const Flags& f) { return one_training_flag(f, "threads").trainer.threads; }

void check_precision(GemmPrecision p) {
  if (p == GemmPrecision::bf16) {
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
}

void set_precision(const Flags& f) { set_gemm_precision(precision_flag(f)); }

int launcher_process_count() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* text = std::getenv(v);
    if (!text || !*text) continue;
    char* end = nullptr;
    const long n = std::strtol(text, &end, 10);
    if (*end == '\0' && n > 0 && n <= 1 << 24) return static_cast<int>(n);
  }
  return 1;
}

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
