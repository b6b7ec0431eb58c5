#include "train/data_spec.hpp"

#include <sstream>

#include "core/error.hpp"
#include "data/stream.hpp"
#include "data/synthetic.hpp"
#include "train/loop.hpp"

namespace funnel {

LoadedData load_data(const std::string& spec, const ReadOptions& options, const nlohmann::json* map_json) {
  LoadedData out;
  if (is_synthetic_spec(spec)) {
    SyntheticConfig c = parse_synthetic_spec(spec);
    out.data = make_synthetic(c);
    out.json = {{"kind", "synthetic"}, {"fields", c.fields}, {"vocab_per_field", c.vocab_per_field},
                {"stages", c.stages}};
    if (map_json && map_json->value("kind", "") != "synthetic")
      throw Error("'" + spec + "' is synthetic, but the model's training data is real data read through a feature map "
                  "(csv:, slots:, aliccp: or cache:): evaluate on data of that kind");
    if (map_json && (map_json->value("fields", -1) != c.fields || map_json->value("vocab_per_field", -1) != c.vocab_per_field))
      throw Error("synthetic data '" + spec + "' has another shape (fields/vocab) than the model's training data");
  } else {
    if (map_json) {
      if (map_json->value("kind", "") != "mapped")
        throw Error("'" + spec + "' is real data, but the model was trained on synthetic data (no feature map to read "
                    "it with): evaluate on synthetic data of the same shape");
      out.map = FeatureMap::from_json(map_json->at("map"));
    }
    ReadReport rep;
    out.data = read_dataset(spec, options, out.map, &rep);
    out.skipped = read_summary(rep);
    while (!out.skipped.empty() && out.skipped.back() == '\n') out.skipped.pop_back();
    out.json = {{"kind", "mapped"}, {"map", out.map.to_json()}};
    // csv: the columns, so that eval/predict can read a headerless file with them (--no-header).
    if (!rep.header.empty()) out.json["columns"] = rep.header;
    out.rows_read = rep.rows_read;
    out.skipped_rows = std::move(rep.skipped_rows);
  }
  if (out.rows_read < 0) out.rows_read = out.data.rows();  // synthetic (and every row kept)
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

std::string describe(const CacheFile& f) {
  std::ostringstream s;
  s << f.rows() << " rows, " << f.clicks() << " clicks, " << f.conversions() << " conversions, " << f.num_fields()
    << " fields, vocab " << f.vocab();
  if (f.num_dense()) s << ", " << f.num_dense() << " dense";
  if (f.num_stages() > 2) s << ", " << f.num_stages() << " stages";
  s << "; streamed, " << f.num_chunks() << " chunk(s) of " << f.chunk_rows() << " rows";
  return s.str();
}

bool is_cache_spec(const std::string& spec) { return spec.rfind("cache:", 0) == 0; }

std::shared_ptr<const CacheFile> open_cache(const std::string& spec, const nlohmann::json* map_json) {
  auto f = std::make_shared<const CacheFile>(spec.substr(6));
  if (map_json) {
    if (map_json->value("kind", "") != "mapped")
      throw Error("'" + spec + "' is real data, but the model was trained on synthetic data (no feature map to read "
                    "it with): evaluate on synthetic data of the same shape");
    if (!(FeatureMap::from_json(map_json->at("map")) == f->map()))
      throw Error("cache '" + f->path() + "': built with a different feature map than the training data's "
                  "(convert the data again with that map)");
  }
  return f;
}

namespace {

// The shape of the cache's data (no rows): what the model is built from.
Dataset shape_of(const CacheFile& f) {
  Dataset d;
  d.num_fields = f.num_fields();
  d.num_stages = f.num_stages();
  d.num_dense = f.num_dense();
  d.vocab = f.vocab();
  d.field_names = f.field_names();
  d.dense_names = f.dense_names();
  return d;
}

}  // namespace

std::shared_ptr<TrainData> load_train_data(const DataSources& src, const ReadOptions& options) {
  auto d = std::make_shared<TrainData>();
  if (src.stream_caches && is_cache_spec(src.train)) {
    auto f = open_cache(src.train, src.init_map.is_null() ? nullptr : &src.init_map);
    if (!src.eval.empty() || f->num_chunks() >= 2) {
      d->train_cache = f;
      d->train.map = f->map();
      d->train.json = {{"kind", "mapped"}, {"map", f->map().to_json()}};
      d->train.data = shape_of(*f);
      d->train.description = src.train + ": " + describe(*f);
      if (src.eval.empty()) {
        if (!(src.eval_fraction > 0 && src.eval_fraction < 1)) throw Error("the evaluation fraction must be in (0, 1)");
        const std::int64_t cut = tail_split_chunk(*f, src.eval_fraction);
        d->train_chunk_end = cut;
        d->eval_cache = f;
        d->eval_chunk_begin = cut;
        d->has_eval = true;
        d->train.description += " (training on the first " + std::to_string(rows_in_chunks(*f, 0, cut)) +
                                " rows, chunks 0-" + std::to_string(cut - 1) + ")";
        d->eval_description = "last " + std::to_string(rows_in_chunks(*f, cut, -1)) + " rows held out (chunks " +
                              std::to_string(cut) + "-" + std::to_string(f->num_chunks() - 1) + ")";
        return d;
      }
    } else {
      d->notes.push_back(src.train + ": a single chunk of rows, decoded into memory to hold out its last rows");
    }
  }
  if (d->streamed()) {
    // A separate evaluation set, mapped like the streamed training cache.
    if (src.stream_caches && is_cache_spec(src.eval)) {
      d->eval_cache = open_cache(src.eval, &d->train.json);
      d->eval_description = src.eval + ": " + describe(*d->eval_cache);
    } else {
      LoadedData ev = load_data(src.eval, options, &d->train.json);
      if (!ev.skipped.empty()) d->notes.push_back(ev.skipped);
      d->eval = std::move(ev.data);
      d->eval_description = ev.description;
    }
    d->has_eval = true;
    return d;
  }
  std::string spec = src.train;
  if (src.stages > 2 && spec.rfind("synthetic", 0) == 0 && spec.find("stages=") == std::string::npos)
    spec += (spec == "synthetic" ? ":" : ",") + std::string("stages=") + std::to_string(src.stages);
  // Resuming (--init): the new data goes through the checkpoint's own feature map, so every id keeps its row.
  LoadedData all = load_data(spec, options, src.init_map.is_null() ? nullptr : &src.init_map);
  if (!all.skipped.empty()) d->notes.push_back(all.skipped);
  if (src.eval.empty()) {
    if (!(src.eval_fraction > 0 && src.eval_fraction < 1)) throw Error("the evaluation fraction must be in (0, 1)");
    if (all.data.rows() < 2)
      throw Error(all.description + ": " + std::to_string(all.data.rows()) +
                  " row(s), too few to hold out an evaluation set (at least 2 rows, or give --eval-data)");
    d->train.map = std::move(all.map);
    d->train.json = all.json;
    split_tail(all.data, src.eval_fraction, d->train.data, d->eval);
    d->has_eval = true;
    d->train.description = all.description + " (training on the first " + std::to_string(d->train.data.rows()) + ")";
    d->eval_description = "last " + std::to_string(d->eval.rows()) + " rows held out: " + describe(d->eval);
  } else {
    d->train = std::move(all);
    if (src.stream_caches && is_cache_spec(src.eval)) {
      d->eval_cache = open_cache(src.eval, &d->train.json);
      d->eval_description = src.eval + ": " + describe(*d->eval_cache);
      d->has_eval = true;
      return d;
    }
    LoadedData ev = load_data(src.eval, options, &d->train.json);
    if (!ev.skipped.empty()) d->notes.push_back(ev.skipped);
    d->eval = std::move(ev.data);
    d->has_eval = true;
    d->eval_description = ev.description;
  }
  return d;
}

}  // namespace funnel
