// The dataset cache behind write_cache() / read_cache() and `--data cache:FILE`: format v3, written and read by
// data/stream_cache.{hpp,cpp} (chunked, memory-mapped, read in place). read_cache() is the in-memory path: it
// decodes the whole cache into a Dataset (small data, tests); streaming training reads a CacheFile directly.
#include "core/error.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"

#include <memory>

namespace funnel {

void write_cache(const Dataset& d, const FeatureMap& map, const std::string& file) {
  if (!map.ready()) throw Error("write_cache: the feature map is not ready (read the dataset with it first)");
  if (map.fields() != d.field_names || map.vocab() != d.vocab)
    throw Error("write_cache: the feature map does not belong to the dataset (fields or vocab differ)");
  if (const std::string p = dataset_problem(d); !p.empty()) throw Error("write_cache: inconsistent dataset: " + p);
  CacheWriter w(file, d.field_names, d.dense_names, d.num_stages);
  const std::int64_t F = d.num_fields;
  std::vector<std::int64_t> ends(static_cast<std::size_t>(F));
  for (std::int64_t b = 0; b < d.num_blocks(); ++b) {
    const auto base = d.block_offsets[static_cast<std::size_t>(b * F)];
    for (std::int64_t f = 0; f < F; ++f) ends[static_cast<std::size_t>(f)] = d.block_offsets[static_cast<std::size_t>(b * F + f + 1)] - base;
    w.add_block(ends.data(), d.block_ids.data() + base, d.block_weights.data() + base);
  }
  w.add_rows(d);
  w.commit(map);
}

Dataset read_cache(const std::string& file, FeatureMap& map, ReadReport* report) {
  const CacheFile cf(file);
  if (!map.empty() && !(map == cf.map()))
    throw Error("cache '" + file + "': built with a different feature map than the one passed in");
  Dataset d = cf.to_dataset();
  if (map.empty()) map = cf.map();
  if (report) {
    report->bytes += cf.file_bytes();
    report->rows_read += cf.rows();
    report->rows_kept += cf.rows();
  }
  return d;
}

std::int64_t convert_to_cache(const std::string& spec, const ReadOptions& options, FeatureMap& map,
                              const std::string& out, ReadReport* report, std::int64_t chunk_rows) {
  if (spec.rfind("cache:", 0) == 0) {
    const Dataset d = read_dataset(spec, options, map, report);
    write_cache(d, map, out);
    return d.rows();
  }
  if (options.sink) throw Error("convert_to_cache: the options already carry a sink");
  // The feature map's fields are known only once the reader has started it; the writer is created lazily by a
  // sink that forwards to it.
  struct Forward : RowSink {
    const std::string& out;
    std::int64_t rows;
    FeatureMap& map;
    std::unique_ptr<CacheWriter> w;
    Forward(const std::string& o, std::int64_t r, FeatureMap& m) : out(o), rows(r), map(m) {}
    CacheWriter& writer(std::int64_t num_stages) {
      if (!w) w = std::make_unique<CacheWriter>(out, map.fields(), map.dense_names(), num_stages, rows);
      return *w;
    }
    std::int64_t chunk_rows() const override { return rows; }
    void add_rows(const Dataset& part) override { writer(part.num_stages).add_rows(part); }
    void add_block(const std::int64_t* e, const std::int64_t* ids, const float* w8) override {
      writer(2).add_block(e, ids, w8);
    }
    void end_rows(FeatureMap& m, std::span<const std::int64_t> uses) override {
      if (w) w->end_rows(m, uses);
    }
  } sink(out, chunk_rows, map);
  ReadOptions o = options;
  o.sink = &sink;
  const Dataset rest = read_dataset(spec, o, map, report);
  if (rest.rows() != 0 || !sink.w) throw Error("convert_to_cache: internal error: rows were not handed over");
  sink.w->commit(map);
  return sink.w->rows();
}

}  // namespace funnel
