// funnel dot: draw a registered model's graph as Graphviz DOT (stdout), or render it to SVG/PNG with Graphviz.
//   funnel dot [--model NAME] [--grad-flow] [--backward] [--out FILE.dot|FILE.svg|FILE.png]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "autodiff/gradflow.hpp"
#include "viz/dot.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "models/model.hpp"
#include "cli/command.hpp"
#include "cli/common.hpp"
#include "cli/train_flags.hpp"

namespace {

using funnel::cli::UsageError;

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) {
    if (c == '\'') o += "'\\''";
    else o += c;
  }
  return o + "'";
}

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  // Each ':'-separated entry of PATH (an empty one is the current directory).
  std::string_view rest = path;
  for (;;) {
    const std::size_t end = std::min(rest.find(':'), rest.size());
    std::string candidate(end == 0 ? std::string_view(".") : rest.substr(0, end));
    candidate.append("/").append(exe);
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    if (end == rest.size()) return false;
    rest.remove_prefix(end + 1);
  }
}

std::string extension(const std::string& path) {
  auto slash = path.rfind('/');
  auto dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  return path.substr(dot + 1);
}

// Writes `dot_text` to `out` (.dot as is, .svg/.png rendered by Graphviz into a private temporary file first) by
// the output rules every command follows (core/files.hpp): a regular file is replaced atomically, a device or FIFO
// is written in place, a symlink is written through, and an input (the --config file) is never overwritten.
void write_output(const std::string& out, const std::string& dot_text, const std::vector<std::string>& inputs) {
  const std::string ext = extension(out);
  if (ext != "dot" && ext != "gv" && ext != "svg" && ext != "png")
    throw UsageError("--out " + out + ": expected a .dot, .gv, .svg or .png file name, got extension '" + ext + "'");
  funnel::check_output_target(out, inputs, "--out");
  if (ext == "dot" || ext == "gv") {
    funnel::write_output_file(out, dot_text, inputs, "--out");
    return;
  }
  if (!on_path("dot"))
    throw funnel::Error("rendering " + out + " needs Graphviz's `dot` on PATH (Debian/Ubuntu: apt-get install "
                        "graphviz); without it, write DOT with --out FILE.dot or to stdout");
  char dir_tmpl[] = "/tmp/funnel-dot-XXXXXX";
  if (!::mkdtemp(dir_tmpl)) throw funnel::Error("cannot create a temporary directory in /tmp for Graphviz");
  const std::string dir = dir_tmpl, tmp_dot = dir + "/graph.dot", tmp_out = dir + "/graph." + ext;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  funnel::write_output_file(tmp_dot, dot_text);
  const std::string cmd = "dot -T" + ext + " " + shell_quote(tmp_dot) + " -o " + shell_quote(tmp_out);
  const int rc = std::system(cmd.c_str());
  if (rc != 0) throw funnel::Error("Graphviz failed (exit status " + std::to_string(rc) + ") running: " + cmd);
  funnel::write_output_file(out, funnel::read_regular_file(tmp_out, std::size_t{1} << 30), inputs, "--out");
}

std::string model_title(const funnel::ModelConfig& c, bool grad_flow, bool backward) {
  std::ostringstream t;
  t << funnel::get_model(c.kind).description;
  t << "\n" << c.num_fields << " fields, vocab " << c.vocab << ", dim " << c.dim << ", hidden ";
  for (std::size_t i = 0; i < c.hidden.size(); ++i) t << (i ? "," : "") << c.hidden[i];
  if (grad_flow) t << " — coloured by which loss's gradient reaches each parameter and edge";
  if (backward) t << " — with the backward graph";
  return t.str();
}

// The drawn model's flags: rows of ModelConfig's table (--model, --model-options, --hidden, --stages, with what
// they mean here) and its sizes the data would give a trained model (--fields, --vocab; --dim for its width).
funnel::cli::OptionTable<funnel::ModelConfig> dot_model_table() {
  using M = funnel::ModelConfig;
  using funnel::cli::int_option;
  constexpr std::int64_t kNoMax = std::numeric_limits<std::int64_t>::max();
  funnel::cli::OptionTable<M> t;
  for (auto r : funnel::cli::model_config_table()) {
    if (r.name == "model") r.meaning = "model to draw (see `funnel models`)";
    else if (r.name == "hidden") r.meaning = "hidden layer widths of the drawn model's towers";
    else if (r.name == "stages") r.meaning = "funnel stages of the drawn model";
    else if (r.name != "model-options") continue;
    t.push_back(std::move(r));
  }
  t.push_back(int_option<M>("fields", [](auto& c) -> auto& { return c.num_fields; }, 1, kNoMax,
                            "categorical fields of the drawn model"));
  t.push_back(int_option<M>("vocab", [](auto& c) -> auto& { return c.vocab; }, 1, kNoMax,
                            "embedding rows of the drawn model"));
  t.push_back(int_option<M>("dim", [](auto& c) -> auto& { return c.dim; }, 1, 4096,
                            "embedding width of the drawn model"));
  return t;
}

int run_dot(int argc, char** argv) {
  const auto table = dot_model_table();
  std::vector<funnel::cli::FlagSpec> specs;
  funnel::cli::append_specs(specs, table, funnel::ModelConfig{});
  for (const char* name : {"out", "rankdir", "seed"}) specs.push_back(funnel::cli::flag_spec("dot", name, false));
  for (const char* name : {"grad-flow", "backward", "no-numeric", "no-legend", "no-edge-shapes"})
    specs.push_back(funnel::cli::flag_spec("dot", name, true));
  funnel::cli::Flags f(argc, argv, specs);
  funnel::ModelConfig cfg;
  funnel::cli::apply_options(table, f, cfg);

  funnel::Graph g;
  funnel::build_model(g, cfg);

  funnel::DotOptions opt;
  opt.backward = f.has("backward");
  opt.legend = !f.has("no-legend");
  opt.edge_shapes = !f.has("no-edge-shapes");
  opt.rankdir = f.str("rankdir", "TB");
  if (opt.rankdir != "TB" && opt.rankdir != "LR") throw UsageError("--rankdir: expected TB or LR, got " + opt.rankdir);
  opt.title = model_title(cfg, f.has("grad-flow"), opt.backward);

  funnel::GradFlow gf;
  if (f.has("grad-flow")) {
    funnel::GradFlowOptions go;
    go.numeric = !f.has("no-numeric");
    go.seed = static_cast<std::uint64_t>(f.integer("seed", 1, 0));
    gf = funnel::analyze_grad_flow(g, go);
    opt.grad_flow = &gf;
    for (const auto& d : gf.disagreements()) std::fprintf(stderr, "funnel dot: grad flow: %s\n", d.c_str());
  }
  const std::string text = funnel::to_dot(g, opt);
  if (!f.has("out")) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  const std::string out = f.str("out", "");
  std::vector<std::string> inputs;
  if (!f.config_file().empty()) inputs.push_back(f.config_file());
  write_output(out, text, inputs);
  if (opt.grad_flow) std::printf("%s", funnel::to_text(gf, g).c_str());
  std::printf("wrote %s (%zu nodes)\n", out.c_str(), g.size());
  return 0;
}

}  // namespace

FUNNEL_COMMAND(dot, "dot", "draw a model graph (Graphviz DOT/SVG/PNG), optionally its gradient flow", run_dot);
