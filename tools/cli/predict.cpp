// funnel eval / funnel predict: load a checkpoint, map new data the way the training data was mapped, and
// report the metrics or write per-row predictions.
#include <cstdio>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "tools/cli/common.hpp"
#include "tools/cli/session.hpp"
#include "train/checkpoint.hpp"

namespace funnel::cli {
namespace {

struct Loaded {
  std::unique_ptr<Model> model;
  LoadedData data;
};

Loaded load(const Flags& f) {
  const std::string dir = f.required("checkpoint");
  CheckpointInfo info = read_checkpoint_info(dir);
  Loaded l;
  l.model = std::make_unique<Model>(model_config_from_json(info.model));
  load_checkpoint(dir, l.model->exec(), nullptr);
  l.data = load_data(f.required("data"), f, &info.data);
  check_compatible(l.model->config(), l.data.data, "'" + f.required("data") + "'");
  return l;
}

// The command's inputs: the checkpoint directory and the data files; no output may be one of them.
std::vector<std::string> inputs_of(const Flags& f) {
  std::vector<std::string> in = dataset_spec_inputs(f.str("data", ""));
  in.push_back(f.str("checkpoint", ""));
  return in;
}

std::set<std::string> flags_with(std::set<std::string> s) {
  s.insert(kDataFlags.begin(), kDataFlags.end());
  return s;
}

int run_eval(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "batch-size", "threads", "metrics-json"}), {});
  if (f.has("metrics-json")) check_output_target(f.str("metrics-json", ""), inputs_of(f), "--metrics-json");
  set_threads(static_cast<int>(f.integer("threads", 1, 1)));
  Loaded l = load(f);
  std::fprintf(stderr, "eval: %s\n", l.data.description.c_str());
  FunnelMetrics m = evaluate(*l.model, l.data.data, f.integer("batch-size", 4096, 1));
  nlohmann::json j = metrics_to_json(m);
  std::printf("%s\n", j.dump(2).c_str());
  if (f.has("metrics-json")) write_output_file(f.str("metrics-json", ""), j.dump(2) + "\n", inputs_of(f), "--metrics-json");
  return 0;
}

int run_predict(int argc, char** argv) {
  Flags f(argc, argv, flags_with({"checkpoint", "data", "out", "batch-size", "threads"}), {});
  set_threads(static_cast<int>(f.integer("threads", 1, 1)));
  const std::string out = f.required("out");
  check_output_target(out, inputs_of(f), "--out");
  Loaded l = load(f);
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
