#include "serving/predictor.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "autodiff/executor.hpp"
#include "data/stream_cache.hpp"
#include "train/batch_source.hpp"
#include "train/checkpoint.hpp"
#include "train/model.hpp"

namespace funnel {

// A thread's buffers for one call: executors of batch 1, 2, 4, ... max_batch (made when first needed), borrowing
// the model's graph and parameters; scratch for dataset rows and structured-row field indices.
struct ServingModel::Workspace {
  std::vector<std::unique_ptr<Executor<float>>> ex;
  std::vector<std::int64_t> rows;
  std::vector<float> labels;
  std::vector<std::int32_t> field_of;  // per feature of the row being mapped: field index, or -1 to skip
};

namespace {

PoolWeights weights_setting(const PredictorOptions& o, const nlohmann::json& config) {
  if (!o.pool_weights.empty()) return parse_pool_weights(o.pool_weights);
  if (config.is_object()) {
    const auto it = config.find("pool-weights");
    if (it != config.end() && it->is_string()) return parse_pool_weights(it->get<std::string>());
  }
  return PoolWeights::Ones;
}

}  // namespace

ServingModel::ServingModel(const std::string& dir, const PredictorOptions& o) : dir_(dir), opt_(o) {
  if (o.max_batch < 1) throw Error("predictor: max_batch must be at least 1, got " + std::to_string(o.max_batch));
  max_batch_ = static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(std::min<std::int64_t>(o.max_batch, 1 << 20))));
  const CheckpointInfo info = read_checkpoint_info(dir);
  ParamStoreOptions so;
  so.values_only = true;
  model_ = std::make_unique<Model>(model_config_from_json(info.model), so);
  const CheckpointInfo loaded = load_checkpoint(dir, model_->params(), nullptr);
  step_ = loaded.step;
  model_json_ = loaded.model;
  data_json_ = loaded.data;
  config_json_ = loaded.config;
  weights_ = weights_setting(o, config_json_);
  if (data_json_.is_object() && data_json_.value("kind", "") == "mapped") {
    map_ = std::make_unique<FeatureMap>(FeatureMap::from_json(data_json_.at("map")));
    if (!map_->ready()) throw Error("checkpoint '" + dir + "': its feature map is not ready");
    const ModelConfig& c = model_->config();
    if (map_->num_fields() != c.num_fields || map_->vocab() > c.vocab ||
        static_cast<std::int64_t>(map_->dense_names().size()) != c.num_dense)
      throw Error("checkpoint '" + dir + "': its feature map does not fit its model (fields, vocab or dense columns)");
    const auto cols = data_json_.find("columns");
    if (cols != data_json_.end() && cols->is_array()) csv_columns_ = cols->get<std::vector<std::string>>();
  }
  for (const auto& c : model_->handle().columns) {
    column_names_.push_back(c.name);
    column_nodes_.push_back(c.node);
  }
}

ServingModel::~ServingModel() = default;

const std::string& ServingModel::kind() const { return model_->config().kind; }

const std::vector<std::string>& ServingModel::fields() const {
  static const std::vector<std::string> none;
  return map_ ? map_->fields() : none;
}
const std::vector<std::string>& ServingModel::dense_names() const {
  static const std::vector<std::string> none;
  return map_ ? map_->dense_names() : none;
}

std::size_t ServingModel::workspaces() const {
  std::lock_guard<std::mutex> l(pool_mu_);
  return all_.size();
}

ServingModel::Workspace* ServingModel::acquire() const {
  {
    std::lock_guard<std::mutex> l(pool_mu_);
    if (!free_.empty()) {
      Workspace* w = free_.back();
      free_.pop_back();
      return w;
    }
  }
  auto w = std::make_unique<Workspace>();
  int sizes = 0;
  for (std::int64_t b = 1; b <= max_batch_; b *= 2) ++sizes;
  w->ex.resize(static_cast<std::size_t>(sizes));
  w->rows.resize(static_cast<std::size_t>(max_batch_));
  w->labels.resize(static_cast<std::size_t>(max_batch_ * std::max<std::int64_t>(1, model_->config().num_stages)));
  w->field_of.reserve(64);
  std::lock_guard<std::mutex> l(pool_mu_);
  all_.push_back(std::move(w));
  free_.reserve(all_.size());  // release() never allocates
  return all_.back().get();
}

void ServingModel::release(Workspace* w) const {
  std::lock_guard<std::mutex> l(pool_mu_);
  free_.push_back(w);
}

void ServingModel::check_out(std::int64_t rows, std::span<float> out) const {
  const auto need = static_cast<std::size_t>(rows) * column_names_.size();
  if (out.size() < need)
    throw Error("predictor: the output holds " + std::to_string(out.size()) + " values, " + std::to_string(rows) +
                " rows need " + std::to_string(need));
}

// Passes of b = the largest power of two <= min(rest, max_batch) rows; fill(ex, first, b) fills ex's inputs
// (already sized for b) with rows [first, first + b).
template <class Fill>
void ServingModel::run(std::int64_t rows, std::span<float> out, Fill&& fill) const {
  check_out(rows, out);
  if (rows == 0) return;
  Workspace* w = acquire();
  struct Give {
    const ServingModel* m;
    Workspace* w;
    ~Give() { m->release(w); }
  } give{this, w};
  const std::size_t ncols = column_names_.size();
  std::int64_t first = 0;
  while (first < rows) {
    const auto b = static_cast<std::int64_t>(
        std::bit_floor(static_cast<std::uint64_t>(std::min(rows - first, max_batch_))));
    const auto k = static_cast<std::size_t>(std::countr_zero(static_cast<std::uint64_t>(b)));
    auto& ex = w->ex[k];
    if (!ex) {
      ex = std::make_unique<Executor<float>>(model_->graph(), model_->params());
      ex->set_batch(b);
    }
    fill(*ex, *w, first, b);
    ex->forward(column_nodes_);
    for (std::size_t c = 0; c < ncols; ++c) {
      const float* v = ex->value(column_nodes_[c]).data();
      float* o = out.data() + static_cast<std::size_t>(first) * ncols + c;
      for (std::int64_t r = 0; r < b; ++r) o[static_cast<std::size_t>(r) * ncols] = v[r];
    }
    first += b;
  }
}

void ServingModel::predict(std::span<const PredictRow> rows, std::span<float> out) const {
  if (!map_)
    throw PredictError(-1, "", "the checkpoint '" + dir_ +
                                   "' was trained on synthetic data: it has no feature map to map raw values with");
  const FeatureMap& map = *map_;
  const auto F = map.num_fields();
  const auto& dense_names = map.dense_names();
  const auto D = static_cast<std::int64_t>(dense_names.size());
  const ModelHandle& h = model_->handle();
  const bool ignore_unknown = opt_.unknown_fields == UnknownFields::Ignore;
  // Check every row before scoring any (an error names the first bad row and leaves out alone).
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto row = static_cast<std::int64_t>(r);
    for (const FeatureValue& fv : rows[r].features) {
      if (map.field_index(fv.field) < 0) {
        if (map.dense_names().end() != std::find(dense_names.begin(), dense_names.end(), fv.field))
          throw PredictError(row, std::string(fv.field), "row " + std::to_string(row) + ": field '" +
                                                              std::string(fv.field) +
                                                              "' is a dense feature: expected a number");
        if (!ignore_unknown)
          throw PredictError(row, std::string(fv.field),
                             "row " + std::to_string(row) + ": field '" + std::string(fv.field) +
                                 "': unknown (not one of the model's " + std::to_string(F) + " fields)");
      }
      if (!std::isfinite(fv.weight))
        throw PredictError(row, std::string(fv.field), "row " + std::to_string(row) + ": field '" +
                                                           std::string(fv.field) + "': expected a finite weight");
    }
    for (const DenseValue& dv : rows[r].dense)
      if (std::find(dense_names.begin(), dense_names.end(), dv.name) == dense_names.end()) {
        if (map.field_index(dv.name) >= 0)
          throw PredictError(row, std::string(dv.name), "row " + std::to_string(row) + ": field '" +
                                                            std::string(dv.name) +
                                                            "' is categorical: expected a string value, not a number");
        if (!ignore_unknown)
          throw PredictError(row, std::string(dv.name), "row " + std::to_string(row) + ": dense feature '" +
                                                            std::string(dv.name) + "': unknown");
      }
    for (std::int64_t j = 0; j < D; ++j) {
      int seen = 0;
      for (const DenseValue& dv : rows[r].dense)
        if (dv.name == dense_names[static_cast<std::size_t>(j)]) {
          ++seen;
          if (!std::isfinite(dv.value))
            throw PredictError(row, std::string(dv.name), "row " + std::to_string(row) + ": dense feature '" +
                                                              std::string(dv.name) + "': expected a finite number");
        }
      if (seen != 1)
        throw PredictError(row, dense_names[static_cast<std::size_t>(j)],
                           "row " + std::to_string(row) + ": dense feature '" + dense_names[static_cast<std::size_t>(j)] +
                               (seen ? "': given more than once" : "': missing (expected a number)"));
    }
  }
  run(static_cast<std::int64_t>(rows.size()), out,
      [&](Executor<float>& ex, Workspace& w, std::int64_t first, std::int64_t b) {
        IdBatch& ib = ex.ids(h.ids);
        ib.reset(b, F);
        float* dense = h.dense.empty() ? nullptr : ex.input(h.dense[0]).data();
        for (std::int64_t i = 0; i < b; ++i) {
          const PredictRow& row = rows[static_cast<std::size_t>(first + i)];
          w.field_of.clear();
          for (const FeatureValue& fv : row.features)
            w.field_of.push_back(static_cast<std::int32_t>(map.field_index(fv.field)));
          // Cells in field order; a field's ids in the order given (a reader's stable sort into cells).
          for (std::int64_t f = 0; f < F; ++f) {
            for (std::size_t k = 0; k < row.features.size(); ++k)
              if (w.field_of[k] == f) ib.push(map.lookup(f, row.features[k].value), row.features[k].weight);
            ib.end_cell();
          }
          for (std::int64_t j = 0; j < D; ++j)
            for (const DenseValue& dv : row.dense)
              if (dv.name == dense_names[static_cast<std::size_t>(j)]) dense[i * D + j] = dv.value;
        }
      });
}

void ServingModel::predict(const Dataset& d, std::int64_t first, std::int64_t n, std::span<float> out) const {
  if (first < 0 || n < 0 || first + n > d.rows())
    throw Error("predictor: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                ") are not in the data set (" + std::to_string(d.rows()) + " rows)");
  const ModelHandle& h = model_->handle();
  const ModelConfig& c = model_->config();
  if (d.num_fields != c.num_fields || d.vocab > c.vocab || d.num_dense != c.num_dense || d.num_stages != c.num_stages)
    check_compatible(c, d, "the data");
  run(n, out, [&](Executor<float>& ex, Workspace& w, std::int64_t at, std::int64_t b) {
    for (std::int64_t i = 0; i < b; ++i) w.rows[static_cast<std::size_t>(i)] = first + at + i;
    float* dense = h.dense.empty() ? nullptr : ex.input(h.dense[0]).data();
    gather_batch(d, {w.rows.data(), static_cast<std::size_t>(b)}, ex.ids(h.ids), w.labels.data(), dense);
  });
}

void ServingModel::predict(const CacheFile& f, std::int64_t first, std::int64_t n, std::span<float> out) const {
  if (first < 0 || n < 0 || first + n > f.rows())
    throw Error("predictor: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                ") are not in the cache '" + f.path() + "' (" + std::to_string(f.rows()) + " rows)");
  const ModelHandle& h = model_->handle();
  const ModelConfig& c = model_->config();
  if (f.num_fields() != c.num_fields || f.vocab() > c.vocab || f.num_dense() != c.num_dense ||
      f.num_stages() != c.num_stages)
    check_compatible(c, f, "the cache '" + f.path() + "'");
  run(n, out, [&](Executor<float>& ex, Workspace& w, std::int64_t at, std::int64_t b) {
    for (std::int64_t i = 0; i < b; ++i) w.rows[static_cast<std::size_t>(i)] = first + at + i;
    float* dense = h.dense.empty() ? nullptr : ex.input(h.dense[0]).data();
    f.gather({w.rows.data(), static_cast<std::size_t>(b)}, ex.ids(h.ids), w.labels.data(), dense);
  });
}

Dataset ServingModel::read_data(const std::string& spec, ReadOptions options, ReadReport* report) const {
  if (!map_)
    throw Error("the checkpoint '" + dir_ + "' was trained on synthetic data: it has no feature map to read '" + spec +
                "' with (predict on synthetic data of the same shape)");
  options.weights = weights_;
  // The readers leave a ready map unchanged (data/readers.hpp): sharing it between threads is safe.
  return read_dataset(spec, options, const_cast<FeatureMap&>(*map_), report);
}

Dataset ServingModel::read_lines(std::string_view format, std::span<const std::string_view> lines,
                                 std::span<const std::string_view> common) const {
  if (!map_)
    throw PredictError(-1, "", "the checkpoint '" + dir_ + "' was trained on synthetic data: it reads no lines");
  if (lines.empty()) return Dataset{};
  auto join = [](std::span<const std::string_view> ls, const char* what) {
    std::size_t n = 0;
    for (auto l : ls) n += l.size() + 1;
    std::string text;
    text.reserve(n);
    for (std::size_t i = 0; i < ls.size(); ++i) {
      if (ls[i].find_first_of("\r\n") != std::string_view::npos)
        throw PredictError(static_cast<std::int64_t>(i), "",
                           std::string(what) + " " + std::to_string(i) + ": holds a line end (one line per row)");
      text.append(ls[i]);
      text.push_back('\n');
    }
    return text;
  };
  ReadOptions ro;
  ro.on_bad_row = OnBadRow::Error;
  ro.weights = weights_;
  ReadReport rep;
  // The readers leave a ready map unchanged (data/readers.hpp): sharing it between threads is safe.
  FeatureMap& map = const_cast<FeatureMap&>(*map_);
  const std::string text = join(lines, "line");
  Dataset d;
  try {
    if (format == "csv") {
      if (csv_columns_.empty())
        throw PredictError(-1, "", "the checkpoint '" + dir_ + "' was not trained on csv data: it reads no csv lines");
      ro.csv_columns = csv_columns_;
      d = read_csv_buffer(text, "line", ro, map, &rep);
    } else if (format == "slots") {
      d = read_slots_buffer(text, "line", ro, map, &rep);
    } else if (format == "aliccp") {
      const std::string ctext = join(common, "common line");
      d = read_aliccp_buffers(text, "line", ctext, "common line", ro, map, &rep);
    } else {
      throw Error("predictor: unknown line format '" + std::string(format) + "' (csv, slots, aliccp)");
    }
  } catch (const PredictError&) {
    throw;
  } catch (const Error& e) {
    // The reader's message is "line:N: field 'NAME': ..." (N 1-based); the row is N - 1.
    const std::string msg = e.what();
    std::int64_t row = -1;
    std::string field;
    if (msg.rfind("line:", 0) == 0) {
      std::int64_t n = 0;
      std::size_t i = 5;
      while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9') n = n * 10 + (msg[i++] - '0');
      if (i > 5) row = n - 1;
    }
    const auto q = msg.find("field '");
    if (q != std::string::npos) {
      const auto e2 = msg.find('\'', q + 7);
      if (e2 != std::string::npos) field = msg.substr(q + 7, e2 - q - 7);
    }
    throw PredictError(row, field, msg);
  }
  if (d.rows() != static_cast<std::int64_t>(lines.size()))
    throw PredictError(-1, "", "the " + std::to_string(lines.size()) + " lines hold " + std::to_string(d.rows()) +
                                   " rows (a quoted cell spanning lines?): one line per row");
  return d;
}

void ServingModel::predict_csv(std::span<const std::string_view> lines, std::span<float> out) const {
  check_out(static_cast<std::int64_t>(lines.size()), out);
  const Dataset d = read_lines("csv", lines);
  predict(d, 0, d.rows(), out);
}
void ServingModel::predict_slots(std::span<const std::string_view> lines, std::span<float> out) const {
  check_out(static_cast<std::int64_t>(lines.size()), out);
  const Dataset d = read_lines("slots", lines);
  predict(d, 0, d.rows(), out);
}
void ServingModel::predict_aliccp(std::span<const std::string_view> skeleton, std::span<const std::string_view> common,
                                  std::span<float> out) const {
  check_out(static_cast<std::int64_t>(skeleton.size()), out);
  const Dataset d = read_lines("aliccp", skeleton, common);
  predict(d, 0, d.rows(), out);
}

Predictor::Predictor(std::string dir, PredictorOptions o)
    : dir_(std::move(dir)), opt_(std::move(o)), cur_(std::make_shared<const ServingModel>(dir_, opt_)) {}

Predictor::~Predictor() = default;

std::shared_ptr<const ServingModel> Predictor::current() const {
  std::lock_guard<std::mutex> l(mu_);
  return cur_;
}

std::shared_ptr<const ServingModel> Predictor::reload() {
  std::lock_guard<std::mutex> one(reload_mu_);
  auto next = std::make_shared<const ServingModel>(dir_, opt_);
  {
    std::lock_guard<std::mutex> l(mu_);
    cur_.swap(next);  // `next` now holds the old version: freed below, or by the last call still using it
    ++reloads_;
  }
  std::lock_guard<std::mutex> l(mu_);
  return cur_;
}

std::int64_t Predictor::reloads() const {
  std::lock_guard<std::mutex> l(mu_);
  return reloads_;
}

}  // namespace funnel
