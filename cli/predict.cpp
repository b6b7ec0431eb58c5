// funnel eval / funnel predict: load a checkpoint, map new data the way the training data was mapped, and
// report the metrics or write per-row predictions.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "cli/common.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {
namespace {

struct Loaded {
  std::unique_ptr<Model> model;
  LoadedData data;
  std::shared_ptr<const CacheFile> cache;  // a cache: spec is streamed from the file, not loaded
  // The data as a batch source, in order.
  std::unique_ptr<BatchSource> source(std::int64_t batch) const {
    if (!cache) return std::make_unique<DatasetSource>(data.data, batch);
    StreamOptions so;
    so.batch_size = batch;
    so.shuffle = false;
    return std::make_unique<CacheSource>(CachePart{cache.get()}, so);
  }
};

Loaded load(const Flags& f) {
  LoadedModel m = load_model(f.required("checkpoint"));
  Loaded l;
  l.model = std::move(m.model);
  const std::string spec = f.required("data");
  if (is_cache_spec(spec)) {
    l.cache = open_cache(spec, &m.info.data);
    l.data.description = spec + ": " + describe(*l.cache);
    check_compatible(l.model->config(), *l.cache, "'" + spec + "'");
    return l;
  }
  l.data = read_data(spec, f, &m.info.data);
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
  return in;
}

// The data flags that apply to eval/predict: the feature map (hash buckets, vocabulary) comes from the
// checkpoint, so --buckets and --min-count are unknown flags here (exit 2) instead of being ignored.
std::set<std::string> flags_with(std::set<std::string> s) {
  for (const auto& k : kDataFlags)
    if (k != "buckets" && k != "min-count") s.insert(k);
  return s;
}

int run_eval(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "batch-size", "threads", "metrics-json"}), {});
  if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs_of(f), "--metrics-json");
  set_threads(static_cast<int>(std::min<std::int64_t>(f.integer("threads", 1, 1), 1 << 20)));
  Loaded l = load(f);
  std::fprintf(stderr, "eval: %s\n", l.data.description.c_str());
  FunnelMetrics m = evaluate(*l.model, *l.source(f.integer("batch-size", 4096, 1)));
  nlohmann::json j = metrics_to_json(m);
  std::printf("%s\n", j.dump(2).c_str());
  if (f.has("metrics-json")) write_output_file(f.str("metrics-json", ""), j.dump(2) + "\n", inputs_of(f), "--metrics-json");
  return 0;
}

int run_predict(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "out", "batch-size", "threads"}), {});
  set_threads(static_cast<int>(std::min<std::int64_t>(f.integer("threads", 1, 1), 1 << 20)));
  const std::string out = f.required("out");
  const OutputPlan plan = check_output_target(out, inputs_of(f), "--out");
  Loaded l = load(f);
  if (l.cache) {
    // Streamed: the predictions go to the output a batch at a time.
    StreamedOutput o(plan);
    std::string text;
    std::vector<NodeId> nodes;
    for (const auto& c : l.model->handle().columns) {
      text += (nodes.empty() ? "" : ",") + c.name;
      nodes.push_back(c.node);
    }
    text += "\n";
    std::int64_t rows = 0;
    char cell[32];
    forward_each_batch(*l.model, *l.source(f.integer("batch-size", 4096, 1)), nodes,
                       [&](const std::vector<const float*>& v, std::int64_t n) {
                         for (std::int64_t i = 0; i < n; ++i)
                           for (std::size_t k = 0; k < v.size(); ++k) {
                             std::snprintf(cell, sizeof cell, k + 1 < v.size() ? "%.9g," : "%.9g\n", v[k][i]);
                             text += cell;
                           }
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
  // One column per model output, named by the model (ESMM and its baselines: pctr,pcvr,pctcvr).
  std::string text;
  for (std::size_t k = 0; k < p.names.size(); ++k) text += (k ? "," : "") + p.names[k];
  text += "\n";
  const auto rows = static_cast<std::size_t>(p.rows());
  text.reserve(text.size() + rows * 14 * p.names.size());
  char cell[32];
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t k = 0; k < p.columns.size(); ++k) {
      std::snprintf(cell, sizeof cell, k + 1 < p.columns.size() ? "%.9g," : "%.9g\n", p.columns[k][i]);
      text += cell;
    }
  }
  write_output_file(out, text, inputs_of(f), "--out");
  std::fprintf(stderr, "predict: wrote %zu rows to %s\n", rows, out.c_str());
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(eval, "eval", "evaluate a checkpoint on a data set (the paper's metrics)", funnel::cli::run_eval);
FUNNEL_COMMAND(predict, "predict", "write the model's predictions (ESMM: pctr,pcvr,pctcvr) for every row of a data set", funnel::cli::run_predict);
