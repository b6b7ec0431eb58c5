#include "train/data_spec.hpp"

#include <sstream>

#include "core/error.hpp"
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
      throw Error("the checkpoint was trained on mapped real data; '" + spec + "' is synthetic");
    if (map_json && (map_json->value("fields", -1) != c.fields || map_json->value("vocab_per_field", -1) != c.vocab_per_field))
      throw Error("synthetic data '" + spec + "' has another shape (fields/vocab) than the checkpoint's training data");
  } else {
    if (map_json) {
      if (map_json->value("kind", "") != "mapped")
        throw Error("the checkpoint was trained on synthetic data; '" + spec + "' needs a feature map");
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

std::shared_ptr<TrainData> load_train_data(const DataSources& src, const ReadOptions& options) {
  auto d = std::make_shared<TrainData>();
  std::string spec = src.train;
  if (src.stages > 2 && spec.rfind("synthetic", 0) == 0 && spec.find("stages=") == std::string::npos)
    spec += (spec == "synthetic" ? ":" : ",") + std::string("stages=") + std::to_string(src.stages);
  // Resuming (--init): the new data goes through the checkpoint's own feature map, so every id keeps its row.
  LoadedData all = load_data(spec, options, src.init_map.is_null() ? nullptr : &src.init_map);
  if (!all.skipped.empty()) d->notes.push_back(all.skipped);
  if (src.eval.empty()) {
    if (!(src.eval_fraction > 0 && src.eval_fraction < 1)) throw Error("the evaluation fraction must be in (0, 1)");
    d->train.map = std::move(all.map);
    d->train.json = all.json;
    split_tail(all.data, src.eval_fraction, d->train.data, d->eval);
    d->has_eval = true;
    d->train.description = all.description + " (training on the first " + std::to_string(d->train.data.rows()) + ")";
    d->eval_description = "last " + std::to_string(d->eval.rows()) + " rows held out: " + describe(d->eval);
  } else {
    d->train = std::move(all);
    LoadedData ev = load_data(src.eval, options, &d->train.json);
    if (!ev.skipped.empty()) d->notes.push_back(ev.skipped);
    d->eval = std::move(ev.data);
    d->has_eval = true;
    d->eval_description = ev.description;
  }
  return d;
}

}  // namespace funnel
