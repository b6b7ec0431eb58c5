#include "serving/predictor.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "autodiff/executor.hpp"
#include "ops/embedding_kernels.hpp"
#include "serving/mapped_table.hpp"
#include "data/stream_cache.hpp"
#include "train/batch_source.hpp"
#include "train/checkpoint.hpp"
#include "train/model.hpp"

namespace funnel {

// The model's graph as served: every embedding node over a table held in a mapping is an input (B×F×D) that
// run() fills with the pooled rows; the rest is copied node for node (same names, ops and attributes) and runs on
// the parameters moved over from the loaded model.
struct ServingModel::Served {
  struct Pooled {
    NodeId node;        // the input standing for the embedding node
    std::size_t table;  // index into tables
    bool mean;          // pool=mean (else sum)
  };
  Graph g;
  std::unique_ptr<ParamStore<float>> store;
  NodeId ids = kUnsetNode;
  NodeId dense = kUnsetNode;
  std::vector<Pooled> pooled;
  std::vector<const MappedTable*> tables;  // the mappings of the loaded model's table storages
};

// Field and dense names -> code: field index f >= 0, dense feature j as -2 - j; -1 for a name the model does not
// know. Open addressing over the names' hashes (the feature hash with its own seed), built once per version.
class ServingModel::NameIndex {
 public:
  explicit NameIndex(const FeatureMap& map) {
    for (std::size_t f = 0; f < map.fields().size(); ++f) names_.emplace_back(map.fields()[f], static_cast<std::int32_t>(f));
    for (std::size_t j = 0; j < map.dense_names().size(); ++j)
      names_.emplace_back(map.dense_names()[j], -2 - static_cast<std::int32_t>(j));
    std::size_t cap = 16;
    while (cap < 2 * names_.size()) cap *= 2;
    slots_.assign(cap, Slot{});
    for (std::size_t k = 0; k < names_.size(); ++k) {
      const std::uint64_t h = feature_hash(names_[k].first, kSeed);
      std::size_t i = h & (cap - 1);
      while (slots_[i].name >= 0) i = (i + 1) & (cap - 1);
      slots_[i] = Slot{h, static_cast<std::int32_t>(k)};
    }
  }
  std::int32_t find(std::string_view s) const {
    const std::uint64_t h = feature_hash(s, kSeed);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& sl = slots_[i];
      if (sl.name < 0) return -1;
      if (sl.hash == h && names_[static_cast<std::size_t>(sl.name)].first == s)
        return names_[static_cast<std::size_t>(sl.name)].second;
    }
  }

 private:
  static constexpr std::uint64_t kSeed = 0x6e616d6573ULL;
  struct Slot {
    std::uint64_t hash = 0;
    std::int32_t name = -1;  // index into names_, -1 = empty
  };
  std::vector<std::pair<std::string, std::int32_t>> names_;
  std::vector<Slot> slots_;
};

// A thread's buffers for one call: executors of batch 1, 2, 4, ... max_batch (made when first needed), borrowing
// the served graph and parameters; scratch for dataset rows and for the codes of structured rows' names.
struct ServingModel::Workspace {
  std::vector<std::unique_ptr<Executor<float>>> ex;
  std::vector<std::int64_t> rows;
  std::vector<float> labels;
  // Structured rows: per row, its features' codes then its dense values' codes (NameIndex), from row_start[r].
  std::vector<std::int32_t> codes;
  std::vector<std::int64_t> row_start;
  // The previous row's names and codes by position (resolve()'s shortcut; valid within one call).
  std::vector<std::string_view> hint_name;
  std::vector<std::int32_t> hint_code;
  std::vector<std::int32_t> seen;   // per dense feature: times given in the row
  std::vector<char> bad;            // per dense feature: given a non-finite value
  std::vector<std::int64_t> cell;   // per field + 1: counting sort of a row's features into cells
  std::vector<std::int32_t> order;  // the row's features in cell order
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

// The embedding op's forward (ops/embedding.cpp) on a mapped table, written into y (cells × D): the op's own pooling
// kernels (ops/embedding_kernels.hpp, the CPU's variant), so the predictions are the training-side forward's bits.
// An id outside the table is an Error naming row and field, as the op's.
void pool_rows(const MappedTable& t, const IdBatch& b, bool mean, float* y, const std::string& node) {
  const std::int64_t V = t.rows();
  const std::int64_t* off = b.offsets.data();
  const std::int64_t* ids = b.ids.data();
  const std::size_t nids = b.ids.size(), cells = static_cast<std::size_t>(b.batch * b.fields);
  for (std::size_t k = 0; k < nids; ++k)
    if (static_cast<std::uint64_t>(ids[k]) >= static_cast<std::uint64_t>(V)) {
      std::size_t cell = 0;
      while (off[cell + 1] <= static_cast<std::int64_t>(k)) ++cell;
      throw Error("node '" + node + "' (op embedding): row " + std::to_string(cell / static_cast<std::size_t>(b.fields)) +
                  ", field " + std::to_string(cell % static_cast<std::size_t>(b.fields)) + ": id " +
                  std::to_string(ids[k]) + " is out of range for a table of " + std::to_string(V) + " rows");
    }
  const EmbeddingPoolArgs args{y, t.data(), static_cast<std::size_t>(t.dim()), off, ids, b.weights.data(), nids, mean};
  embedding_kernels().pool(args, 0, cells);
}

}  // namespace

ServingModel::ServingModel(const std::string& dir, const PredictorOptions& o) : dir_(dir), opt_(o) {
  if (o.max_batch < 1) throw Error("predictor: max_batch must be at least 1, got " + std::to_string(o.max_batch));
  max_batch_ = static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(std::min<std::int64_t>(o.max_batch, 1 << 20))));
  const CheckpointInfo info = read_checkpoint_info(dir);
  // Values only, every embedding table's storage a mapping of its checkpoint file (MappedTableStorage):
  // load_checkpoint reads the dense parameters and only checks the tables' manifest entries.
  ParamStoreOptions so;
  so.values_only = true;
  so.tables = [&](const Graph& g, NodeId p) -> std::unique_ptr<TableStorage<float>> {
    const std::string& name = g.node(p).name;
    const auto it = std::find_if(info.params.begin(), info.params.end(),
                                 [&](const CheckpointParam& e) { return e.name == name; });
    if (it == info.params.end()) throw Error(dir + ": the checkpoint has no parameter '" + name + "'");
    return std::make_unique<MappedTableStorage>(dir, *it);
  };
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
    names_ = std::make_unique<NameIndex>(*map_);
  }
  // The served graph (see Served).
  const Graph& g = model_->graph();
  ParamStore<float>& ps = model_->params();
  const ModelHandle& h = model_->handle();
  served_ = std::make_unique<Served>();
  Served& sv = *served_;
  std::vector<NodeId> to(g.size(), kUnsetNode);
  std::vector<std::size_t> table_of(g.size(), ~std::size_t{0});
  for (NodeId id = 0; id < g.size(); ++id) {
    const Node& n = g.node(id);
    switch (n.kind) {
      case NodeKind::Input: to[id] = sv.g.add_input(n.name, n.shape); break;
      case NodeKind::Ids: to[id] = sv.g.add_ids(n.name, n.num_fields); break;
      case NodeKind::Param:
        if (ps.is_table(id)) {
          table_of[id] = sv.tables.size();
          sv.tables.push_back(&dynamic_cast<const MappedTableStorage&>(ps.table(id)).table());
        } else {
          to[id] = sv.g.add_param(n.name, n.shape, n.init);
        }
        break;
      case NodeKind::Op: {
        const bool reads_table = !n.inputs.empty() && table_of[n.inputs[0]] != ~std::size_t{0};
        for (std::size_t s = reads_table ? 1 : 0; s < n.inputs.size(); ++s)
          if (table_of[n.inputs[s]] != ~std::size_t{0} || to[n.inputs[s]] == kUnsetNode)
            throw Error("checkpoint '" + dir + "': node '" + n.name + "' (op " + n.op +
                        ") reads an embedding table otherwise than as an embedding lookup, which the Predictor "
                        "cannot serve from a mapped table");
        if (reads_table) {
          if (n.op != "embedding" || n.inputs.size() != 2 || n.inputs[1] != h.ids)
            throw Error("checkpoint '" + dir + "': node '" + n.name + "' (op " + n.op +
                        ") reads an embedding table otherwise than as an embedding lookup of the model's ids, which "
                        "the Predictor cannot serve from a mapped table");
          to[id] = sv.g.add_input(n.name, n.shape);
          sv.pooled.push_back({to[id], table_of[n.inputs[0]], n.attrs.get_str("pool", "sum") == "mean"});
        } else {
          std::vector<NodeId> ins;
          for (NodeId u : n.inputs) ins.push_back(to[u]);
          to[id] = sv.g.add_op(n.op, std::move(ins), n.attrs, n.name);
        }
        break;
      }
    }
    if (n.is_output) sv.g.mark_output(to[id]);
    if (n.is_loss) sv.g.mark_loss(to[id]);
  }
  ParamStoreOptions vo;
  vo.values_only = true;
  sv.store = std::make_unique<ParamStore<float>>(sv.g, vo);
  for (NodeId id : sv.store->ids()) sv.store->value(id) = std::move(ps.value(g.at(sv.g.node(id).name)));
  if (h.ids != kUnsetNode) sv.ids = to[h.ids];
  if (!h.dense.empty()) sv.dense = to[h.dense[0]];
  for (const auto& c : h.columns) {
    column_names_.push_back(c.name);
    column_nodes_.push_back(to[c.node]);
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

std::size_t ServingModel::mapped_tables() const { return served_->tables.size(); }
const MappedTable& ServingModel::mapped_table(std::size_t k) const { return *served_->tables.at(k); }

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
  const auto F = static_cast<std::size_t>(model_->config().num_fields);
  const auto D = static_cast<std::size_t>(std::max<std::int64_t>(0, model_->config().num_dense));
  w->seen.resize(D);
  w->bad.resize(D);
  w->cell.resize(F + 1);
  w->order.reserve(64);
  w->codes.reserve(64);
  w->hint_name.reserve(64);
  w->hint_code.reserve(64);
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

// Passes of b = the largest power of two <= min(rest, max_batch) rows; fill(ex, w, first, b) fills ex's inputs
// (already sized for b) with rows [first, first + b); the pooled embedding inputs are then filled from the ids.
template <class Fill>
void ServingModel::run(Workspace& w, std::int64_t rows, std::span<float> out, Fill&& fill) const {
  const Served& sv = *served_;
  const std::size_t ncols = column_names_.size();
  std::int64_t first = 0;
  while (first < rows) {
    const auto b = static_cast<std::int64_t>(
        std::bit_floor(static_cast<std::uint64_t>(std::min(rows - first, max_batch_))));
    const auto k = static_cast<std::size_t>(std::countr_zero(static_cast<std::uint64_t>(b)));
    auto& ex = w.ex[k];
    if (!ex) {
      ex = std::make_unique<Executor<float>>(sv.g, *sv.store);
      ex->set_batch(b);
    }
    fill(*ex, w, first, b);
    for (const Served::Pooled& p : sv.pooled)
      pool_rows(*sv.tables[p.table], ex->ids(sv.ids), p.mean, ex->input(p.node).data(), sv.g.node(p.node).name);
    ex->forward(column_nodes_);
    for (std::size_t c = 0; c < ncols; ++c) {
      const float* v = ex->value(column_nodes_[c]).data();
      float* o = out.data() + static_cast<std::size_t>(first) * ncols + c;
      for (std::int64_t r = 0; r < b; ++r) o[static_cast<std::size_t>(r) * ncols] = v[r];
    }
    first += b;
  }
}

// Checks every row before any is scored (an error names the first bad row and leaves `out` alone) and writes the
// codes of each row's names into w.codes (features, then dense values) from w.row_start[r].
void ServingModel::resolve(std::span<const PredictRow> rows, Workspace& w) const {
  const FeatureMap& map = *map_;
  const auto F = map.num_fields();
  const auto& dense_names = map.dense_names();
  const auto D = dense_names.size();
  const bool ignore_unknown = opt_.unknown_fields == UnknownFields::Ignore;
  constexpr std::int32_t kNoHint = -3;
  std::fill(w.hint_code.begin(), w.hint_code.end(), kNoHint);
  w.codes.clear();
  w.row_start.clear();
  // A name's code: the previous row's at this position when it is the same name, else the index's.
  auto code_of = [&](std::size_t pos, std::string_view s) {
    if (pos < w.hint_code.size()) {
      if (w.hint_code[pos] != kNoHint && w.hint_name[pos].size() == s.size() &&
          (w.hint_name[pos].data() == s.data() || std::memcmp(w.hint_name[pos].data(), s.data(), s.size()) == 0))
        return w.hint_code[pos];
    } else {
      w.hint_name.resize(pos + 1);
      w.hint_code.resize(pos + 1, kNoHint);
    }
    const std::int32_t c = names_->find(s);
    w.hint_name[pos] = s;
    w.hint_code[pos] = c;
    return c;
  };
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto row = static_cast<std::int64_t>(r);
    w.row_start.push_back(static_cast<std::int64_t>(w.codes.size()));
    std::size_t pos = 0;
    for (const FeatureValue& fv : rows[r].features) {
      const std::int32_t c = code_of(pos++, fv.field);
      if (c < 0) {
        if (c <= -2)
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
      w.codes.push_back(c);
    }
    std::fill(w.seen.begin(), w.seen.end(), 0);
    std::fill(w.bad.begin(), w.bad.end(), 0);
    for (const DenseValue& dv : rows[r].dense) {
      const std::int32_t c = code_of(pos++, dv.name);
      if (c >= 0)
        throw PredictError(row, std::string(dv.name), "row " + std::to_string(row) + ": field '" +
                                                          std::string(dv.name) +
                                                          "' is categorical: expected a string value, not a number");
      if (c == -1 && !ignore_unknown)
        throw PredictError(row, std::string(dv.name), "row " + std::to_string(row) + ": dense feature '" +
                                                          std::string(dv.name) + "': unknown");
      if (c <= -2) {
        const auto j = static_cast<std::size_t>(-2 - c);
        ++w.seen[j];
        if (!std::isfinite(dv.value)) w.bad[j] = 1;
      }
      w.codes.push_back(c);
    }
    for (std::size_t j = 0; j < D; ++j) {
      if (w.bad[j])
        throw PredictError(row, dense_names[j], "row " + std::to_string(row) + ": dense feature '" + dense_names[j] +
                                                    "': expected a finite number");
      if (w.seen[j] != 1)
        throw PredictError(row, dense_names[j], "row " + std::to_string(row) + ": dense feature '" + dense_names[j] +
                                                    (w.seen[j] ? "': given more than once" : "': missing (expected a number)"));
    }
  }
  w.row_start.push_back(static_cast<std::int64_t>(w.codes.size()));
}

void ServingModel::predict(std::span<const PredictRow> rows, std::span<float> out) const {
  if (!map_)
    throw PredictError(-1, "", "the checkpoint '" + dir_ +
                                   "' was trained on synthetic data: it has no feature map to map raw values with");
  check_out(static_cast<std::int64_t>(rows.size()), out);
  if (rows.empty()) return;
  Workspace* wp = acquire();
  const Lease lease{this, wp};
  resolve(rows, *wp);
  const FeatureMap& map = *map_;
  const auto F = static_cast<std::size_t>(map.num_fields());
  const auto D = static_cast<std::size_t>(map.dense_names().size());
  const Served& sv = *served_;
  run(*wp, static_cast<std::int64_t>(rows.size()), out,
      [&](Executor<float>& ex, Workspace& w, std::int64_t first, std::int64_t b) {
        IdBatch& ib = ex.ids(sv.ids);
        ib.reset(b, static_cast<std::int64_t>(F));
        float* dense = sv.dense == kUnsetNode ? nullptr : ex.input(sv.dense).data();
        std::int64_t* cell = w.cell.data();
        for (std::int64_t i = 0; i < b; ++i) {
          const auto r = static_cast<std::size_t>(first + i);
          const PredictRow& row = rows[r];
          const std::int32_t* code = w.codes.data() + w.row_start[r];
          const std::size_t K = row.features.size();
          // Cells in field order, a field's values in the order given (a reader's stable sort into cells): a
          // counting sort of the row's features by field.
          std::fill(cell, cell + F + 1, 0);
          for (std::size_t k = 0; k < K; ++k)
            if (code[k] >= 0) ++cell[code[k] + 1];
          for (std::size_t f = 0; f < F; ++f) cell[f + 1] += cell[f];
          if (w.order.size() < K) w.order.resize(K);
          for (std::size_t k = 0; k < K; ++k)
            if (code[k] >= 0) w.order[static_cast<std::size_t>(cell[code[k]]++)] = static_cast<std::int32_t>(k);
          // cell[f] is now the end of field f's values in order (and the start of field f + 1's).
          std::size_t at = 0;
          for (std::size_t f = 0; f < F; ++f) {
            for (; at < static_cast<std::size_t>(cell[f]); ++at) {
              const FeatureValue& fv = row.features[static_cast<std::size_t>(w.order[at])];
              ib.push(map.lookup(static_cast<std::int64_t>(f), fv.value), fv.weight);
            }
            ib.end_cell();
          }
          if (dense) {
            const std::int32_t* dc = code + K;
            float* drow = dense + static_cast<std::size_t>(i) * D;
            for (std::size_t m = 0; m < row.dense.size(); ++m)
              if (dc[m] <= -2) drow[-2 - dc[m]] = row.dense[m].value;
          }
        }
      });
}

template <class Gather>
void ServingModel::predict_stored(std::int64_t first, std::int64_t n, std::span<float> out, Gather&& gather) const {
  check_out(n, out);
  if (n == 0) return;
  Workspace* wp = acquire();
  const Lease lease{this, wp};
  const Served& sv = *served_;
  run(*wp, n, out, [&](Executor<float>& ex, Workspace& w, std::int64_t at, std::int64_t b) {
    for (std::int64_t i = 0; i < b; ++i) w.rows[static_cast<std::size_t>(i)] = first + at + i;
    float* dense = sv.dense == kUnsetNode ? nullptr : ex.input(sv.dense).data();
    gather({w.rows.data(), static_cast<std::size_t>(b)}, ex.ids(sv.ids), w.labels.data(), dense);
  });
}

void ServingModel::predict(const Dataset& d, std::int64_t first, std::int64_t n, std::span<float> out) const {
  if (first < 0 || n < 0 || first + n > d.rows())
    throw Error("predictor: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                ") are not in the data set (" + std::to_string(d.rows()) + " rows)");
  const ModelConfig& c = model_->config();
  if (d.num_fields != c.num_fields || d.vocab > c.vocab || d.num_dense != c.num_dense || d.num_stages != c.num_stages)
    check_compatible(c, d, "the data");
  predict_stored(first, n, out, [&](std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) {
    gather_batch(d, rows, ids, labels, dense);
  });
}

void ServingModel::predict(const CacheFile& f, std::int64_t first, std::int64_t n, std::span<float> out) const {
  if (first < 0 || n < 0 || first + n > f.rows())
    throw Error("predictor: rows [" + std::to_string(first) + ", " + std::to_string(first + n) +
                ") are not in the cache '" + f.path() + "' (" + std::to_string(f.rows()) + " rows)");
  const ModelConfig& c = model_->config();
  if (f.num_fields() != c.num_fields || f.vocab() > c.vocab || f.num_dense() != c.num_dense ||
      f.num_stages() != c.num_stages)
    check_compatible(c, f, "the cache '" + f.path() + "'");
  predict_stored(first, n, out, [&](std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) {
    f.gather(rows, ids, labels, dense);
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
