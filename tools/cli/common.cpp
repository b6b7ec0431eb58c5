#include "tools/cli/common.hpp"


#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/parallel.hpp"
#include "ops/gemm_backend.hpp"
#include "data/synthetic.hpp"

namespace funnel::cli {

const std::set<std::string> kDataFlags{"on-bad-row", "buckets", "min-count", "pool-weights", "max-rows"};

ReadOptions read_options(const Flags& f) {
  ReadOptions o;
  o.on_bad_row = parse_on_bad_row(f.str("on-bad-row", "error"));
  o.weights = parse_pool_weights(f.str("pool-weights", "ones"));
  o.max_rows = f.integer("max-rows", 0, 0);
  if (f.has("min-count")) {
    o.mapping.kind = MapKind::Vocab;
    o.mapping.min_count = f.integer("min-count", 1, 1);
  }
  if (f.has("buckets")) {
    if (f.has("min-count")) throw UsageError("--buckets (hashing) and --min-count (vocabulary) exclude each other");
    o.mapping.buckets = f.integer("buckets", 1 << 16, 1);
  }
  return o;
}

LoadedData load_data(const std::string& spec, const Flags& flags, const nlohmann::json* map_json) {
  LoadedData out;
  if (is_synthetic_spec(spec)) {
    SyntheticConfig c = parse_synthetic_spec(spec);
    out.data = make_synthetic(c);
    out.json = {{"kind", "synthetic"}, {"fields", c.fields}, {"vocab_per_field", c.vocab_per_field},
                {"stages", c.stages}};
    if (map_json && map_json->value("kind", "") != "synthetic")
      throw Error("the checkpoint was trained on mapped real data; '" + spec + "' is synthetic");
    if (map_json && (map_json->value("fields", -1) != c.fields || map_json->value("vocab_per_field", -1) != c.vocab_per_field))
      throw Error("synthetic data '" + spec + "' has another shape (fields/vocab) than the checkpoint's training data");
  } else {
    ReadOptions o = read_options(flags);
    if (map_json) {
      if (map_json->value("kind", "") != "mapped")
        throw Error("the checkpoint was trained on synthetic data; '" + spec + "' needs a feature map");
      out.map = FeatureMap::from_json(map_json->at("map"));
    }
    ReadReport rep;
    out.data = read_dataset(spec, o, out.map, &rep);
    if (rep.rows_skipped > 0) {
      std::ostringstream s;
      s << "skipped " << rep.rows_skipped << " bad rows of " << rep.rows_read << ":";
      for (auto& [k, v] : rep.skipped_by_reason) s << " " << k << "=" << v;
      std::fprintf(stderr, "%s\n", s.str().c_str());
    }
    out.json = {{"kind", "mapped"}, {"map", out.map.to_json()}};
  }
  out.description = spec + ": " + describe(out.data);
  return out;
}

std::string describe(const Dataset& d) {
  std::int64_t clicks = 0, conv = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    clicks += d.label(r, 0);
    conv += d.label(r, 1);
  }
  std::ostringstream s;
  s << d.rows() << " rows, " << clicks << " clicks, " << conv << " conversions, " << d.num_fields << " fields, vocab "
    << d.vocab;
  if (d.num_dense) s << ", " << d.num_dense << " dense";
  if (d.num_stages > 2) s << ", " << d.num_stages << " stages";
  return s.str();
}

void write_file_atomic(const std::string& path, const std::string& text) { write_output_file(path, text); }

nlohmann::json model_options_flag(const Flags& f) {
  if (!f.has("model-options")) return nlohmann::json::object();
  try {
    return parse_model_options(f.str("model-options", ""));
  } catch (const std::exception& e) {
    throw UsageError(std::string("--model-options: ") + e.what());
  }
}

void set_threads(int n) {
  if (n < 1) throw UsageError("--threads must be at least 1");
  funnel::set_num_threads(n);
  try {
    (void)funnel::gemm_backend();  // reads FUNNEL_GEMM now, so a bad value stops the command before any work
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace funnel::cli
