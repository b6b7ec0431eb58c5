// funnel export: a checkpoint's inference graph as an ONNX file, and beside it the JSON a client needs to feed it
// (input layout, output columns, the feature map). Outputs follow funnel's rules (core/files.hpp): both targets are
// checked before the checkpoint is read, neither may be an input, and each is written atomically.
#include <cstdio>

#include "core/files.hpp"
#include "cli/common.hpp"
#include "exporter/onnx_export.hpp"
#include "train/trainer.hpp"

namespace funnel::cli {
namespace {

// "model.onnx" -> "model.features.json"; any other name gets ".features.json" appended.
std::string default_features_path(const std::string& out) {
  const std::string ext = ".onnx";
  if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0)
    return out.substr(0, out.size() - ext.size()) + ".features.json";
  return out + ".features.json";
}

int run_export(int argc, char** argv) {
  register_flag_help("export:format", {"what to write: onnx (the inference graph, opset 17)", "NAME", "", "onnx", ""});
  register_flag_help("export:out", {"the ONNX file to write", "FILE", "", "", ""});
  register_flag_help("export:features",
                     {"the JSON beside it: input layout, output columns and the feature map (docs/onnx.md)", "FILE",
                      "OUT with .onnx replaced by .features.json", "", ""});
  Flags f(argc, argv, {"checkpoint", "format", "out", "features"}, {});
  const std::string format = f.required("format");
  if (format != "onnx") throw UsageError("--format: expected onnx, got '" + format + "'");
  const std::string ck = f.required("checkpoint");
  const std::string out = f.required("out");
  const std::string features = f.str("features", default_features_path(out));
  std::vector<std::string> inputs{ck};
  if (!f.config_file().empty()) inputs.push_back(f.config_file());
  check_output_target(out, inputs, "--out");
  check_output_target(features, inputs, "--features");
  if (resolve_path(out) == resolve_path(features)) throw UsageError("--features: the same file as --out");

  LoadedModel m = load_model(ck);
  const std::string bytes = export_onnx(*m.model, "funnel " + m.model->config().kind + " from checkpoint step " +
                                                      std::to_string(m.info.step));
  const nlohmann::json side = onnx_inputs_json(*m.model, m.info.data, m.info.step);
  write_output_file(out, bytes, inputs, "--out");
  write_output_file(features, side.dump(1) + "\n", inputs, "--features");
  std::fprintf(stderr, "export: wrote %s (%zu bytes, opset %lld) and %s\n", out.c_str(), bytes.size(),
               static_cast<long long>(kOnnxOpset), features.c_str());
  return 0;
}

}  // namespace
}  // namespace funnel::cli

FUNNEL_COMMAND(export_onnx, "export", "write a checkpoint's inference graph as ONNX (with its feature map as JSON)",
               funnel::cli::run_export);
