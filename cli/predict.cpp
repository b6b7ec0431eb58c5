// funnel eval / funnel predict: load a checkpoint, map new data the way the training data was mapped, and
// report the metrics or write per-row predictions.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/signals.hpp"
#include "cli/common.hpp"
#include "cli/progress.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {
namespace {

// The first `limit` rows of a source read in order: --max-rows on a streamed cache. A batch that crosses the limit
// is bound whole and reported as only its first rows (the rows the caller reads), after which the epoch ends.
class FirstRows : public BatchSource {
 public:
  FirstRows(std::unique_ptr<BatchSource> inner, std::int64_t limit) : inner_(std::move(inner)), limit_(limit) {}
  void check(const ModelConfig& cfg, const std::string& what) const override { inner_->check(cfg, what); }
  std::int64_t rows() const override { return std::min(limit_, inner_->rows()); }
  void start_epoch(std::int64_t epoch) override {
    inner_->start_epoch(epoch);
    done_ = 0;
  }
  BatchRows next(Model& m) override {
    if (done_ >= limit_) return {};
    const BatchRows b = inner_->next(m);
    const std::int64_t n = std::min(b.local, limit_ - done_);
    done_ += n;
    return {n, n};
  }
  const float* conversion_entire() const override { return inner_->conversion_entire(); }
  const float* entire(std::int64_t stage) const override { return inner_->entire(stage); }
  const std::int64_t* users() const override { return inner_->users(); }

 private:
  std::unique_ptr<BatchSource> inner_;
  std::int64_t limit_, done_ = 0;
};

struct Loaded {
  std::unique_ptr<Model> model;
  LoadedData data;
  std::shared_ptr<const CacheFile> cache;  // a cache: spec is streamed from the file, not loaded
  std::int64_t max_rows = 0;               // of the cache (0: all); other data was read with --max-rows already
  // The data as a batch source, in order.
  std::unique_ptr<BatchSource> source(std::int64_t batch) const {
    if (!cache) return std::make_unique<DatasetSource>(data.data, batch);
    StreamOptions so;
    so.batch_size = batch;
    so.shuffle = false;
    auto all = std::make_unique<CacheSource>(CachePart{cache.get()}, so);
    if (max_rows <= 0 || max_rows >= all->rows()) return all;
    return std::make_unique<FirstRows>(std::move(all), max_rows);
  }
};

Loaded load(const Flags& f) {
  LoadedModel m = load_model(f.required("checkpoint"));
  Loaded l;
  l.model = std::move(m.model);
  const std::string spec = f.required("data");
  ReadOptions ro = read_options(f);
  if (f.has("no-header")) {
    // A headerless csv file read with the columns of the checkpoint's training data.
    if (spec.rfind("csv:", 0) != 0) throw UsageError("--no-header: applies to csv: data, got '" + spec + "'");
    const auto cols = m.info.data.find("columns");
    if (cols == m.info.data.end() || !cols->is_array())
      throw UsageError("--no-header: the checkpoint " + f.required("checkpoint") +
                       " records no csv columns (it was not trained on csv data, or by an older funnel)");
    ro.csv_columns = cols->get<std::vector<std::string>>();
  }
  if (is_cache_spec(spec)) {
    l.cache = open_cache(spec, &m.info.data);
    l.max_rows = ro.max_rows;
    l.data.description = spec + ": " + describe(*l.cache);
    if (l.max_rows > 0 && l.max_rows < l.cache->rows())
      l.data.description += "; the first " + std::to_string(l.max_rows) + " rows (--max-rows)";
    check_compatible(l.model->config(), *l.cache, "'" + spec + "'");
    return l;
  }
  l.data = funnel::load_data(spec, ro, &m.info.data);
  if (!l.data.skipped.empty()) std::fprintf(stderr, "%s\n", l.data.skipped.c_str());
  check_compatible(l.model->config(), l.data.data, "'" + spec + "'");
  return l;
}

// An output written as it is produced: a regular target goes to a temporary file beside it, renamed over it by
// commit() (removed if never committed); a device, FIFO or descriptor is written in place.
class StreamedOutput {
 public:
  StreamedOutput(const OutputPlan& plan) : plan_(plan) {
    if (plan.kind == OutputPlan::Kind::Descriptor) {
      fd_ = plan.fd;
      return;
    }
    path_ = plan.kind == OutputPlan::Kind::Replace ? plan.real_path + ".tmp." + std::to_string(::getpid()) : plan.path;
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC | (plan.kind == OutputPlan::Kind::Replace ? O_CREAT | O_EXCL : 0),
                 0644);
    if (fd_ < 0) throw Error("cannot open '" + path_ + "' for writing");
    if (plan.kind != OutputPlan::Kind::Replace) path_.clear();
  }
  ~StreamedOutput() {
    if (fd_ >= 0 && plan_.kind != OutputPlan::Kind::Descriptor) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void write(const std::string& s) { write_all(fd_, s, plan_.path); }
  void commit() {
    if (plan_.kind != OutputPlan::Kind::Replace) return;
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      throw Error("cannot write '" + plan_.path + "'");
    }
    fd_ = -1;
    if (::rename(path_.c_str(), plan_.real_path.c_str()) != 0) throw Error("cannot rename into '" + plan_.path + "'");
    path_.clear();
  }

 private:
  OutputPlan plan_;
  int fd_ = -1;
  std::string path_;  // the temporary file while not committed
};

// The command's inputs: the checkpoint directory and the data files; no output may be one of them.
std::vector<std::string> inputs_of(const Flags& f) {
  std::vector<std::string> in = dataset_spec_inputs(f.str("data", ""));
  in.push_back(f.str("checkpoint", ""));
  if (!f.config_file().empty()) in.push_back(f.config_file());
  return in;
}

// The data flags that apply to eval/predict: the feature map (hash buckets, vocabulary) comes from the
// checkpoint, so --buckets and --min-count are unknown flags here (exit 2) instead of being ignored.
std::set<std::string> flags_with(std::set<std::string> s) {
  for (const auto& k : kDataFlags)
    if (k != "buckets" && k != "min-count") s.insert(k);
  return s;
}
const std::set<std::string> kSwitches{"no-header"};

// predict's CSV: the header, and one line per input row — the 1-based row number, then the model's `ncols` values
// (`value(k)`), or empty cells for a row that has no prediction.
std::string prediction_header(const std::vector<std::string>& names) {
  std::string h = "row";
  for (const auto& n : names) h += "," + n;
  return h + "\n";
}
template <class Value>
void append_prediction_line(std::string& text, std::int64_t row, std::size_t ncols, bool empty, Value value) {
  char cell[32];
  std::snprintf(cell, sizeof cell, "%lld", static_cast<long long>(row));
  text += cell;
  for (std::size_t k = 0; k < ncols; ++k) {
    if (empty) {
      text += ',';
      continue;
    }
    std::snprintf(cell, sizeof cell, ",%.9g", static_cast<double>(value(k)));
    text += cell;
  }
  text += '\n';
}

// The command's effective configuration, in the metrics JSON.
nlohmann::json with_config(nlohmann::json j, const Flags& f) {
  j["config"] = f.effective();
  return j;
}

int run_eval(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "batch-size", "threads", "metrics-json", "precision"}),
          kSwitches);
  if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs_of(f), "--metrics-json");
  set_threads(static_cast<int>(std::min<std::int64_t>(f.integer("threads", 1, 1), 1 << 20)));
  set_precision(f);
  Loaded l = load(f);
  std::fprintf(stderr, "eval: %s\n", l.data.description.c_str());
  install_stop_signals();  // INT, TERM, HUP, PIPE: stop after the batch, write nothing, exit non-zero
  EvalProgressPrinter progress(::isatty(2) != 0);
  std::int64_t rows_done = 0, rows_total = 0;
  const EvalHooks hooks{&stop_requested(), [&](const EvalProgress& p) {
                          rows_done = p.rows_done;
                          rows_total = p.rows_total;
                          progress(p);
                        }};
  FunnelMetrics m;
  try {
    m = evaluate(*l.model, *l.source(f.integer("batch-size", 4096, 1)), {}, hooks);
  } catch (const EvalInterrupted&) {
    progress.finish_line();
    std::fprintf(stderr, "eval: interrupted by signal %d after %lld of %lld rows; no metrics written\n",
                 stop_signal(), static_cast<long long>(rows_done), static_cast<long long>(rows_total));
    return stop_exit_code();
  }
  nlohmann::json j = with_config(metrics_to_json(m), f);
  std::printf("%s\n", j.dump(2).c_str());
  if (f.has("metrics-json")) write_output_file(f.str("metrics-json", ""), j.dump(2) + "\n", inputs_of(f), "--metrics-json");
  return 0;
}

int run_predict(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "out", "batch-size", "threads", "precision"}), kSwitches);
  set_threads(static_cast<int>(std::min<std::int64_t>(f.integer("threads", 1, 1), 1 << 20)));
  set_precision(f);
  const std::string out = f.required("out");
  const OutputPlan plan = check_output_target(out, inputs_of(f), "--out");
  Loaded l = load(f);
  if (l.cache) {
    // Streamed: the predictions go to the output a batch at a time.
    StreamedOutput o(plan);
    // The cache holds the rows convert kept, numbered 1.. in cache order (convert reported any it skipped).
    std::vector<std::string> names;
    std::vector<NodeId> nodes;
    for (const auto& c : l.model->handle().columns) {
      names.push_back(c.name);
      nodes.push_back(c.node);
    }
    std::string text = prediction_header(names);
    std::int64_t rows = 0;
    forward_each_batch(*l.model, *l.source(f.integer("batch-size", 4096, 1)), nodes,
                       [&](const std::vector<const float*>& v, std::int64_t n) {
                         for (std::int64_t i = 0; i < n; ++i)
                           append_prediction_line(text, rows + i + 1, v.size(), false,
                                                  [&](std::size_t k) { return v[k][i]; });
                         rows += n;
                         o.write(text);
                         text.clear();
                       });
    o.write(text);
    o.commit();
    std::fprintf(stderr, "predict: wrote %lld rows to %s\n", static_cast<long long>(rows), out.c_str());
    return 0;
  }
  Predictions p = predict(*l.model, l.data.data, f.integer("batch-size", 4096, 1));
  // One line per input row, so the output joins back to the input: `row` (the 1-based data row, header not
  // counted), then one column per model output, named by the model (ESMM and its baselines: pctr,pcvr,pctcvr).
  // A row skipped as malformed (--on-bad-row skip) keeps its line with empty predictions.
  std::string text = prediction_header(p.names);
  const auto rows = static_cast<std::size_t>(p.rows());
  const std::int64_t lines = std::max<std::int64_t>(l.data.rows_read, p.rows());
  text.reserve(text.size() + static_cast<std::size_t>(lines) * (8 + 14 * p.names.size()));
  std::size_t i = 0, next_skip = 0;
  for (std::int64_t r = 1; r <= lines; ++r) {
    const bool skipped = next_skip < l.data.skipped_rows.size() && l.data.skipped_rows[next_skip] == r;
    if (skipped) {
      ++next_skip;
    } else if (i >= rows) {
      throw Error("predict: internal error: fewer predictions than kept rows");
    }
    append_prediction_line(text, r, p.columns.size(), skipped, [&](std::size_t k) { return p.columns[k][i]; });
    if (!skipped) ++i;
  }
  if (i != rows) throw Error("predict: internal error: " + std::to_string(rows - i) + " predictions without a row");
  write_output_file(out, text, inputs_of(f), "--out");
  if (next_skip > 0)
    std::fprintf(stderr, "predict: wrote %lld rows to %s (%zu skipped input rows have empty predictions)\n",
                 static_cast<long long>(lines), out.c_str(), next_skip);
  else
    std::fprintf(stderr, "predict: wrote %lld rows to %s\n", static_cast<long long>(lines), out.c_str());
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(eval, "eval", "evaluate a checkpoint on a data set (the paper's metrics)", funnel::cli::run_eval);
FUNNEL_COMMAND(predict, "predict", "write the model's predictions (ESMM: row,pctr,pcvr,pctcvr), one line per input row", funnel::cli::run_predict);
