#pragma once
/// @file
/// Predictor: a trained model answering prediction requests inside a process (the `funnel serve` server uses it;
/// so can a program of one's own: examples/serve_in_process).
///
///   funnel::Predictor p("runs/esmm");                      // a checkpoint directory written by `funnel train --save`
///   std::vector<funnel::FeatureValue> f{{"205", "1234"}, {"216", "a"}, {"216", "b", 0.5f}};
///   std::vector<funnel::DenseValue> d{{"D109_14", 0.3f}};
///   funnel::PredictRow row{f, d};
///   auto m = p.current();                                  // the loaded version: columns, step, fields, ...
///   std::vector<float> out(m->columns().size());
///   m->predict({&row, 1}, out);                            // out = pctr, pcvr, pctcvr for ESMM
///
/// Loading: the checkpoint's manifest names the model and the feature map the training data was mapped with; the
/// model is rebuilt, its parameters are read (checksums checked; no optimizer state is read and no gradient array
/// is allocated: autodiff/param_store.hpp values_only) and the feature map is taken from the checkpoint as is.
/// Embedding tables are not read: each is memory-mapped read-only from its .npy file (serving/mapped_table.hpp,
/// header, shape and checksum checked), and a request reads its rows straight from the mapping. For that the
/// model's graph is served in a form where every embedding node over such a table is an input that the Predictor
/// fills with the pooled rows (the embedding op's sum or mean, the same arithmetic in the same order, so the
/// predictions are the training-side forward's bits); every other node runs as in training.
///
/// Mapping raw values: field and dense names are resolved once per call through a hash index of the checkpoint's
/// names (a row with the previous row's keys in the same places costs one comparison per key); values go through
/// FeatureMap::lookup, the ready-map lookup every reader uses when
/// it maps data with a checkpoint's map (data/feature_map.hpp): hash maps hash an unseen value to its bucket exactly
/// as in training; vocabulary maps send it to the field's out-of-vocabulary row. Lines in the training formats are
/// parsed by the training readers themselves (data/readers.hpp) with the checkpoint's map, so a line scores exactly
/// as the same line in a file given to `funnel predict`.
///
/// Structured rows (PredictRow):
///   - features: (field, value, weight) triples in any order; a field may repeat (a multi-valued field: its ids are
///     pooled in the order given, as a reader pools a cell); a field given no value is an empty cell (an absent
///     value, as an empty csv cell); the weight scales the value's embedding (1 by default, as in training unless
///     the training data was read with --pool-weights values).
///   - dense: every dense feature the model was trained with, by name, a finite number. A missing, repeated or
///     non-finite dense value is an error.
///   - a field or dense name the checkpoint does not know: an error (PredictorOptions::unknown_fields = Error, the
///     default) or ignored (Ignore: what the readers do with csv columns and slots features of unknown fields).
///   Errors are PredictError: the 0-based row, the field and what was expected.
/// Training-format lines: predict_csv (lines under the training csv header, label cells included: they are read as
/// in training, 0 or 1, and ignored), predict_slots (`sample_id,click,conversion,field:feature,...`) and
/// predict_aliccp (raw Ali-CCP skeleton lines and the common-features lines they refer to). A bad line is a
/// PredictError naming the line (0-based row) and the reader's message (the field, what was expected, what came).
///
/// Threads: any number of threads may call predict on one Predictor (and one ServingModel) at once. Each call
/// borrows a workspace (executors and buffers) from the model's pool and gives it back; a pool grows to the number
/// of concurrent calls and is reused. Rows are scored in passes of powers of two rows (at most max_batch), each
/// size with its own executor, so in steady state — the pool warmed up to the concurrency, every size seen once —
/// predict on structured rows or on a Dataset allocates nothing. Line formats allocate (the readers build a
/// Dataset).
///
/// Hot swap: reload() loads the checkpoint directory again (its current version: saves replace it atomically)
/// into a new ServingModel beside the current one and then swaps the pointer. Calls in flight keep the version
/// they started with (they hold a shared_ptr) and finish on it; the old version is freed when the last of them
/// returns. On a load error the current version stays and the error is thrown.
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/graph.hpp"
#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/readers.hpp"

namespace funnel {

/// One categorical value of a structured row: its field, the raw value text and its pooling weight. Views: the
/// text must outlive the predict call.
struct FeatureValue {
  std::string_view field;  ///< the field's name (as in the checkpoint's feature map)
  std::string_view value;  ///< the raw value, as it appeared in the training data
  float weight = 1.0f;  ///< scales the value's embedding row when pooled
};
/// One dense feature of a structured row, by name.
struct DenseValue {
  std::string_view name;  ///< the dense feature's name (as in training)
  float value = 0.0f;  ///< its value; must be finite
};
/// One row to score: its categorical values and dense features (views, see above).
struct PredictRow {
  std::span<const FeatureValue> features;  ///< the categorical values, any order; a field may repeat
  std::span<const DenseValue> dense;  ///< every dense feature of the model, once each
};

/// What predict does with a field or dense name the checkpoint does not know: a PredictError, or nothing.
enum class UnknownFields { Error, Ignore };

/// How a checkpoint is loaded and scored.
struct PredictorOptions {
  UnknownFields unknown_fields = UnknownFields::Error;  ///< reject or ignore names the checkpoint does not know
  std::int64_t max_batch = 256;  ///< rows per forward pass (rounded down to a power of two)
  /// Weights of aliccp features (the `\x03value` part): as the training data was read. Empty: the checkpoint's
  /// recorded `pool-weights` setting, else "ones".
  std::string pool_weights;
};

/// A request the model cannot score: `row` (0-based, -1 when not about one row) and `field` ("" when not about one).
class PredictError : public Error {
 public:
  /// An error about row `row` and field `field` with the complete message `what`.
  PredictError(std::int64_t row, std::string field, const std::string& what)
      : Error(what), row_(row), field_(std::move(field)) {}
  std::int64_t row() const { return row_; }  ///< 0-based row, -1 when not about one row
  const std::string& field() const { return field_; }  ///< the field it is about, "" when none

 private:
  std::int64_t row_;
  std::string field_;
};

class Model;
class MappedTable;
class CacheFile;

/// One loaded checkpoint version (immutable once loaded; thread-safe).
class ServingModel {
 public:
  /// Loads the checkpoint in `checkpoint_dir` (see the file's description). Throws funnel::Error naming the file
  /// when the manifest, a parameter array or a checksum is wrong.
  ServingModel(const std::string& checkpoint_dir, const PredictorOptions& o);
  ~ServingModel();
  ServingModel(const ServingModel&) = delete;
  ServingModel& operator=(const ServingModel&) = delete;

  const std::string& kind() const;                      ///< the model's registered name
  std::int64_t step() const { return step_; }           ///< the training step the checkpoint was saved at
  const std::vector<std::string>& columns() const { return column_names_; }  ///< what predict writes, in order
  /// The categorical fields and dense features a row may have (empty fields: a checkpoint of synthetic data,
  /// which has no feature map; only predict(Dataset) applies).
  const std::vector<std::string>& fields() const;
  const std::vector<std::string>& dense_names() const;  ///< the dense features a row must give
  bool has_feature_map() const { return map_ != nullptr; }  ///< the checkpoint has a feature map (not synthetic data)
  const FeatureMap* feature_map() const { return map_.get(); }  ///< the checkpoint's feature map, or null
  const nlohmann::json& manifest_model() const { return model_json_; }   ///< the manifest's "model"
  const nlohmann::json& manifest_data() const { return data_json_; }     ///< the manifest's "data"
  const nlohmann::json& manifest_config() const { return config_json_; } ///< the training run's configuration
  const std::vector<std::string>& csv_columns() const { return csv_columns_; }  ///< the training csv header, if any
  const std::string& directory() const { return dir_; }  ///< the checkpoint directory it was loaded from

  /// Scores rows into out (rows × columns().size(), row-major). Throws PredictError (out may then be partly
  /// written) or an Error from the forward pass (a NaN/Inf, naming the node).
  void predict(std::span<const PredictRow> rows, std::span<float> out) const;
  /// Rows [first, first + n) of a dataset mapped with this checkpoint's map (or synthetic data of its shape).
  void predict(const Dataset& d, std::int64_t first, std::int64_t n, std::span<float> out) const;
  /// Rows [first, first + n) of a cache (data/stream_cache.hpp) built with this checkpoint's map, decoded straight
  /// from the file (CacheFile::gather): the numbers of predict(Dataset) on the same rows.
  void predict(const CacheFile& f, std::int64_t first, std::int64_t n, std::span<float> out) const;
  /// A data spec (csv:, slots:, aliccp:, columns:) read by the training readers with this checkpoint's feature map,
  /// as `funnel predict` reads it; aliccp weights pooled as this model pools them (PredictorOptions::pool_weights,
  /// else the checkpoint's setting), whatever options.weights says. With options.sink the rows stream into the sink
  /// (data/row_sink.hpp) and the Dataset returned holds none. Throws Error (DataError for a bad row).
  Dataset read_data(const std::string& spec, ReadOptions options, ReadReport* report = nullptr) const;
  /// Lines in the training formats (see the header comment); each line one row.
  /// @{
  void predict_csv(std::span<const std::string_view> lines, std::span<float> out) const;
  void predict_slots(std::span<const std::string_view> lines, std::span<float> out) const;
  void predict_aliccp(std::span<const std::string_view> skeleton_lines,
                      std::span<const std::string_view> common_lines, std::span<float> out) const;
  /// @}
  /// The training readers on these lines (the dataset the predict_* above score), e.g. to inspect the mapping.
  Dataset read_lines(std::string_view format, std::span<const std::string_view> lines,
                     std::span<const std::string_view> common_lines = {}) const;

  /// Workspaces made so far (grows with concurrency; for tests and metrics).
  std::size_t workspaces() const;
  /// The embedding tables scored from memory-mapped checkpoint files (0 for a model whose tables are read by
  /// something else than embedding lookups: those are read into memory).
  std::size_t mapped_tables() const;
  /// The k-th of those tables, 0 <= k < mapped_tables(), valid as long as this ServingModel; throws
  /// std::out_of_range for a larger k.
  const MappedTable& mapped_table(std::size_t k) const;

 private:
  struct Workspace;
  struct Served;
  class NameIndex;
  Workspace* acquire() const;
  void release(Workspace* w) const;
  /// A workspace borrowed for one call, given back when the call ends, however it ends.
  struct Lease {
    const ServingModel* m;
    Workspace* w;
    ~Lease() { m->release(w); }
  };
  void check_out(std::int64_t rows, std::span<float> out) const;
  /// Checks structured rows and resolves their names into w's codes (see predictor.cpp).
  void resolve(std::span<const PredictRow> rows, Workspace& w) const;
  /// Fills the executor inputs of `w` for rows [first, first + b) and runs the forward pass into out.
  template <class Fill>
  void run(Workspace& w, std::int64_t rows, std::span<float> out, Fill&& fill) const;
  /// Scores rows [first, first + n) of stored data: gather(rows, ids, labels, dense) decodes a pass's rows.
  template <class Gather>
  void predict_stored(std::int64_t first, std::int64_t n, std::span<float> out, Gather&& gather) const;

  std::string dir_;
  PredictorOptions opt_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<FeatureMap> map_;
  std::unique_ptr<Served> served_;   // the graph as served, its parameters and the mapped tables
  std::unique_ptr<NameIndex> names_;
  std::vector<std::string> column_names_;
  std::vector<NodeId> column_nodes_;
  std::int64_t step_ = 0;
  std::int64_t max_batch_ = 256;
  PoolWeights weights_ = PoolWeights::Ones;
  nlohmann::json model_json_, data_json_, config_json_;
  std::vector<std::string> csv_columns_;
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<Workspace>> all_;
  mutable std::vector<Workspace*> free_;
};

/// The current ServingModel of a checkpoint directory, with hot reload (see the file's description). Every member
/// may be called from any thread.
class Predictor {
 public:
  /// Loads the directory's current version (as ServingModel's constructor; its errors are thrown).
  explicit Predictor(std::string checkpoint_dir, PredictorOptions o = {});
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  /// The current version; hold it for a consistent (columns, predict) pair.
  std::shared_ptr<const ServingModel> current() const;
  /// current()->predict(...)
  void predict(std::span<const PredictRow> rows, std::span<float> out) const { current()->predict(rows, out); }
  /// Loads the directory's current version aside and swaps it in (see the header comment); returns it.
  std::shared_ptr<const ServingModel> reload();
  const std::string& directory() const { return dir_; }  ///< the checkpoint directory it loads
  std::int64_t reloads() const;  ///< successful reloads so far

 private:
  std::string dir_;
  PredictorOptions opt_;
  mutable std::mutex mu_;       ///< guards cur_ (held only to copy or swap the pointer)
  std::mutex reload_mu_;        ///< one reload at a time
  std::shared_ptr<const ServingModel> cur_;
  std::int64_t reloads_ = 0;
};

}  // namespace funnel
