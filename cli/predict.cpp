// funnel eval / funnel predict: load a checkpoint, map new data the way the training data was mapped, and
// report the metrics or write per-row predictions. predict scores through the serving Predictor
// (serving/predictor.hpp), the code `funnel serve`, the in-process Predictor and Python use, so all of them give
// the same numbers bit for bit; the rows are read, scored and written a batch at a time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/signals.hpp"
#include "cli/common.hpp"
#include "cli/progress.hpp"
#include "data/row_sink.hpp"
#include "data/synthetic.hpp"
#include "serving/predictor.hpp"
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

// An output written as it is produced, with write_output_file's rules (core/files.hpp): a regular target (or a new
// name) gets a temporary file beside it (".NAME.funnel-tmp-PID-N", the old file's permission bits kept), fsync'ed
// and renamed over it by commit() after the target is checked again (it must still be a regular file or absent);
// removed if never committed. A device, FIFO or descriptor is written in place and never renamed over.
class StreamedOutput {
 public:
  StreamedOutput(const OutputPlan& plan, std::vector<std::string> inputs, std::string what)
      : plan_(plan), inputs_(std::move(inputs)), what_(std::move(what)), shown_(printable(plan.path)) {
    if (plan.kind == OutputPlan::Kind::Descriptor) {
      fd_ = plan.fd;
      if (fd_ == 1) std::fflush(stdout);
      if (fd_ == 2) std::fflush(stderr);
      return;
    }
    if (plan.kind == OutputPlan::Kind::InPlace) {
      fd_ = ::open(plan.path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
      if (fd_ < 0) throw Error(shown_ + ": cannot open for writing: " + std::strerror(errno));
      return;
    }
    static std::atomic<unsigned> counter{0};
    const auto slash = plan.real_path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : plan.real_path.substr(0, slash);
    const std::string base = slash == std::string::npos ? plan.real_path : plan.real_path.substr(slash + 1);
    tmp_ = dir + "/." + base + ".funnel-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    struct stat old {};
    const bool had_old = ::stat(plan.real_path.c_str(), &old) == 0;
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int e = errno;
      tmp_.clear();
      throw Error(shown_ + ": cannot create the temporary file beside it: " + std::strerror(e));
    }
    if (had_old) (void)::fchmod(fd_, old.st_mode & 07777);
  }
  ~StreamedOutput() {
    if (fd_ >= 0 && plan_.kind != OutputPlan::Kind::Descriptor) ::close(fd_);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  StreamedOutput(const StreamedOutput&) = delete;
  StreamedOutput& operator=(const StreamedOutput&) = delete;
  void write(const std::string& s) { write_all(fd_, s, shown_); }
  void commit() {
    if (plan_.kind == OutputPlan::Kind::Descriptor) return;
    const int fd = fd_;
    fd_ = -1;
    if (plan_.kind == OutputPlan::Kind::InPlace) {
      if (::close(fd) != 0) throw Error(shown_ + ": close failed: " + std::strerror(errno));
      return;
    }
    if (::fsync(fd) != 0) {
      const int e = errno;
      ::close(fd);
      throw Error(shown_ + ": fsync failed: " + std::strerror(e));
    }
    if (::close(fd) != 0) throw Error(shown_ + ": close failed: " + std::strerror(errno));
    // The target may have changed while the rows were scored: rename only over what was checked at the start.
    const OutputPlan now = check_output_target(plan_.path, inputs_, what_);
    if (now.kind != OutputPlan::Kind::Replace || now.real_path != plan_.real_path)
      throw Error(shown_ + ": changed while the predictions were written (no longer a regular file or a new name); "
                           "left as it is");
    if (::rename(tmp_.c_str(), plan_.real_path.c_str()) != 0)
      throw Error(shown_ + ": cannot rename the temporary file over it: " + std::strerror(errno));
    tmp_.clear();
  }

 private:
  OutputPlan plan_;
  std::vector<std::string> inputs_;
  std::string what_, shown_;
  int fd_ = -1;
  std::string tmp_;  // the temporary file while not committed
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

// --batch-size of eval and predict: the rows of an evaluation batch (TrainOptions::eval_batch_size, its default),
// with what the command does with them.
OptionRow<TrainOptions> batch_size_row(std::string meaning) {
  return int_option<TrainOptions>("batch-size", [](auto& o) -> auto& { return o.eval_batch_size; }, 1,
                                  std::numeric_limits<std::int64_t>::max(), std::move(meaning));
}

// eval's and predict's flags: `names` (with the data flags that apply) by their help, then `rows`' specs.
std::vector<FlagSpec> command_specs(const char* command, std::set<std::string> names, std::vector<FlagSpec> rows) {
  for (const auto& n : flags_with(std::move(names))) rows.push_back(flag_spec(command, n, false));
  for (const auto& n : kSwitches) rows.push_back(flag_spec(command, n, true));
  return rows;
}

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
  const OptionTable<TrainOptions> batch{batch_size_row("rows per forward pass")};
  Flags f(argc, argv,
          command_specs("eval", {"checkpoint", "data", "threads", "metrics-json", "precision"},
                        {batch[0].spec(TrainOptions{})}));
  TrainOptions eo;
  apply_options(batch, f, eo);
  if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs_of(f), "--metrics-json");
  set_threads(threads_flag(f));
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
    m = evaluate(*l.model, *l.source(eo.eval_batch_size), {}, hooks);
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

// Stops a streamed read from inside the reader (a signal arrived): caught by run_predict.
struct Interrupted {};

// predict's output lines in input order: the kept rows' predictions as they are scored, and an empty line for
// each row the reader skipped (--on-bad-row skip), placed by its 1-based input row number.
class PredictionWriter {
 public:
  PredictionWriter(StreamedOutput& out, std::size_t ncols) : out_(out), ncols_(ncols) {}
  // `n` kept rows (values row-major, n × ncols); `skipped`: the skipped input rows so far, ascending.
  void rows(const float* values, std::int64_t n, const std::vector<std::int64_t>& skipped) {
    for (std::int64_t i = 0; i < n; ++i) {
      skip_lines(skipped, std::numeric_limits<std::int64_t>::max());
      const float* v = values + static_cast<std::size_t>(i) * ncols_;
      append_prediction_line(text_, line_++, ncols_, false, [&](std::size_t k) { return v[k]; });
      ++kept_;
    }
    out_.write(text_);
    text_.clear();
  }
  // After the last row: the skipped rows after it, up to `rows_read` input rows.
  void finish(const std::vector<std::int64_t>& skipped, std::int64_t rows_read) {
    skip_lines(skipped, rows_read);
    if (line_ <= rows_read || next_skip_ != skipped.size())
      throw Error("predict: internal error: the input rows read, kept and skipped do not add up");
    out_.write(text_);
    text_.clear();
  }
  std::int64_t lines() const { return line_ - 1; }
  std::int64_t kept() const { return kept_; }
  std::size_t skipped() const { return next_skip_; }

 private:
  // Empty lines for the skipped rows numbered line_, line_ + 1, ... (up to `last`).
  void skip_lines(const std::vector<std::int64_t>& skipped, std::int64_t last) {
    while (next_skip_ < skipped.size() && skipped[next_skip_] == line_ && line_ <= last) {
      append_prediction_line(text_, line_++, ncols_, true, [](std::size_t) { return 0.0f; });
      ++next_skip_;
    }
  }
  StreamedOutput& out_;
  std::size_t ncols_;
  std::string text_;
  std::int64_t line_ = 1, kept_ = 0;
  std::size_t next_skip_ = 0;
};

// The rows a reader streams (ReadOptions::sink), scored a chunk at a time and written. Shared blocks (Ali-CCP's
// common features) are kept here as they arrive: a chunk's rows refer to them.
class PredictSink : public RowSink {
 public:
  PredictSink(const ServingModel& m, std::int64_t chunk, PredictionWriter& w, const ReadReport& rep)
      : m_(m), chunk_(chunk), w_(w), rep_(rep) {
    out_.resize(static_cast<std::size_t>(chunk) * m.columns().size());
  }
  std::int64_t chunk_rows() const override { return chunk_; }
  void add_rows(const Dataset& part) override {
    if (stop_requested()) throw Interrupted{};
    const std::int64_t n = part.rows();
    if (out_.size() < static_cast<std::size_t>(n) * m_.columns().size())
      out_.resize(static_cast<std::size_t>(n) * m_.columns().size());
    if (part.row_block.empty()) {
      m_.predict(part, 0, n, out_);
    } else {
      // The chunk's rows with the blocks received so far (copied into reused arrays: no allocation once grown).
      batch_.num_fields = part.num_fields;
      batch_.num_stages = part.num_stages;
      batch_.num_dense = part.num_dense;
      batch_.vocab = part.vocab;
      batch_.offsets.assign(part.offsets.begin(), part.offsets.end());
      batch_.ids.assign(part.ids.begin(), part.ids.end());
      batch_.weights.assign(part.weights.begin(), part.weights.end());
      batch_.dense.assign(part.dense.begin(), part.dense.end());
      batch_.labels.assign(part.labels.begin(), part.labels.end());
      batch_.row_block.assign(part.row_block.begin(), part.row_block.end());
      m_.predict(batch_, 0, n, out_);
    }
    w_.rows(out_.data(), n, rep_.skipped_rows);
  }
  void add_block(const std::int64_t* cell_ends, const std::int64_t* ids, const float* weights) override {
    const auto F = static_cast<std::size_t>(m_.fields().size());
    if (batch_.block_offsets.empty()) batch_.block_offsets.push_back(0);
    const auto base = static_cast<std::int64_t>(batch_.block_ids.size());
    for (std::size_t f = 0; f < F; ++f) batch_.block_offsets.push_back(base + cell_ends[f]);
    const auto n = static_cast<std::size_t>(F ? cell_ends[F - 1] : 0);
    batch_.block_ids.insert(batch_.block_ids.end(), ids, ids + n);
    batch_.block_weights.insert(batch_.block_weights.end(), weights, weights + n);
  }
  void end_rows(FeatureMap&, std::span<const std::int64_t>) override {}  // the map is the checkpoint's (ready)

 private:
  const ServingModel& m_;
  std::int64_t chunk_;
  PredictionWriter& w_;
  const ReadReport& rep_;
  std::vector<float> out_;
  Dataset batch_;
};

int run_predict(int argc, char** argv) {
  const OptionTable<TrainOptions> batch{batch_size_row(
      "rows read, scored and written at a time (rounded up to a multiple of the forward pass; the numbers do not "
      "depend on it)")};
  // The Predictor's forward pass (PredictorOptions::max_batch, its default).
  const OptionTable<PredictorOptions> passes{int_option<PredictorOptions>(
      "max-batch", [](auto& o) -> auto& { return o.max_batch; }, 1, 65536,
      "rows per forward pass inside the predictor: the largest power of two not above it, as funnel serve's "
      "--max-batch")};
  Flags f(argc, argv,
          command_specs("predict", {"checkpoint", "data", "out", "threads", "precision"},
                        {batch[0].spec(TrainOptions{}), passes[0].spec(PredictorOptions{})}));
  TrainOptions eo;
  apply_options(batch, f, eo);
  PredictorOptions po;
  apply_options(passes, f, po);
  set_threads(threads_flag(f));
  set_precision(f);
  const std::string out = f.required("out");
  const std::string spec = f.required("data");
  const std::string dir = f.required("checkpoint");
  ReadOptions ro = read_options(f);
  const std::int64_t batch_rows = eo.eval_batch_size;
  const std::int64_t max_batch = po.max_batch;
  if (f.has("no-header") && spec.rfind("csv:", 0) != 0)
    throw UsageError("--no-header: applies to csv: data, got '" + spec + "'");
  const std::vector<std::string> inputs = inputs_of(f);
  const OutputPlan plan = check_output_target(out, inputs, "--out");

  if (f.has("pool-weights")) po.pool_weights = f.str("pool-weights", "");
  const Predictor pred(dir, po);
  const std::shared_ptr<const ServingModel> m = pred.current();
  if (f.has("no-header")) {
    if (m->csv_columns().empty())
      throw UsageError("--no-header: the checkpoint " + dir +
                       " records no csv columns (it was not trained on csv data, or by an older funnel)");
    ro.csv_columns = m->csv_columns();
  }
  // Rows are read and scored `chunk` at a time, a multiple of the forward pass (the largest power of two <=
  // --max-batch): every row is scored in the same pass as when all rows are given to the Predictor at once, so
  // the numbers do not depend on --batch-size or on how the data is stored.
  const auto pass = static_cast<std::int64_t>(
      std::bit_floor(static_cast<std::uint64_t>(std::min<std::int64_t>(max_batch, 1 << 20))));
  const std::int64_t chunk = (std::min<std::int64_t>(batch_rows, std::int64_t{1} << 24) + pass - 1) / pass * pass;
  const std::size_t ncols = m->columns().size();

  install_stop_signals();  // INT, TERM, HUP, PIPE: stop after the batch, leave the target as it was, exit non-zero
  StreamedOutput o(plan, inputs, "--out");
  PredictionWriter w(o, ncols);
  o.write(prediction_header(m->columns()));
  std::vector<float> values;
  // In memory (synthetic data, or a checkpoint of it: its errors are load_data's) or a cache: rows [0, n) in chunks.
  auto score = [&](std::int64_t n, auto&& predict_rows) {
    values.resize(static_cast<std::size_t>(std::min(chunk, n)) * ncols);
    for (std::int64_t first = 0; first < n; first += chunk) {
      if (stop_requested()) throw Interrupted{};
      const std::int64_t b = std::min(chunk, n - first);
      predict_rows(first, b, std::span<float>(values.data(), static_cast<std::size_t>(b) * ncols));
      w.rows(values.data(), b, {});
    }
  };
  std::string skipped_note;
  try {
    if (is_synthetic_spec(spec) || !m->has_feature_map()) {
      LoadedData d = funnel::load_data(spec, ro, &m->manifest_data());
      score(d.data.rows(), [&](std::int64_t first, std::int64_t b, std::span<float> v) { m->predict(d.data, first, b, v); });
      w.finish({}, d.data.rows());
    } else if (is_cache_spec(spec)) {
      // The cache holds the rows convert kept, numbered 1.. in cache order (convert reported any it skipped).
      const auto cache = open_cache(spec, &m->manifest_data());
      const std::int64_t n = ro.max_rows > 0 ? std::min(ro.max_rows, cache->rows()) : cache->rows();
      score(n, [&](std::int64_t first, std::int64_t b, std::span<float> v) { m->predict(*cache, first, b, v); });
      w.finish({}, n);
    } else {
      ReadReport rep;
      PredictSink sink(*m, chunk, w, rep);
      ro.sink = &sink;
      m->read_data(spec, ro, &rep);
      w.finish(rep.skipped_rows, rep.rows_read);
      skipped_note = read_summary(rep);
    }
    o.commit();
  } catch (const Interrupted&) {
    std::fprintf(stderr, "predict: interrupted by signal %d after %lld rows; %s\n", stop_signal(),
                 static_cast<long long>(w.lines()),
                 plan.kind == OutputPlan::Kind::Replace ? (out + " left as it was").c_str()
                                                        : ("the rows so far were written to " + out).c_str());
    return stop_exit_code();
  }
  while (!skipped_note.empty() && skipped_note.back() == '\n') skipped_note.pop_back();
  if (!skipped_note.empty()) std::fprintf(stderr, "%s\n", skipped_note.c_str());
  if (w.skipped() > 0)
    std::fprintf(stderr, "predict: wrote %lld rows to %s (%zu skipped input rows have empty predictions)\n",
                 static_cast<long long>(w.lines()), out.c_str(), w.skipped());
  else
    std::fprintf(stderr, "predict: wrote %lld rows to %s\n", static_cast<long long>(w.lines()), out.c_str());
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(eval, "eval", "evaluate a checkpoint on a data set (the paper's metrics)", funnel::cli::run_eval);
FUNNEL_COMMAND(predict, "predict", "write the model's predictions (ESMM: row,pctr,pcvr,pctcvr), one line per input row", funnel::cli::run_predict);
