// `funnel dot` and `funnel gradcheck`, run as a user would.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/skip.hpp"
#include "tools/cli_util.hpp"

namespace fs = std::filesystem;

namespace {

const std::string& kBin = funnel::test::kFunnel;

using funnel::test::Run;
using funnel::test::slurp;
// Runs `funnel <args>`; stdout only unless `merge_stderr`.
Run run(const std::string& args, bool merge_stderr = false) { return funnel::test::run_funnel(args, merge_stderr); }
fs::path temp_dir(const std::string& name) { return funnel::test::fresh_temp_dir("cli_dot_" + name); }

bool have_graphviz() { return std::system("command -v dot >/dev/null 2>&1") == 0; }

// The statement declaring the node whose tooltip starts with `name + " ("`.
std::string node_with_name(const std::string& dot, const std::string& name) {
  auto p = dot.find("tooltip=\"" + name + " (");
  if (p == std::string::npos) return "";
  auto b = dot.rfind('\n', p);
  auto e = dot.find('\n', p);
  return dot.substr(b + 1, e - b - 1);
}

}  // namespace

TEST_CASE("funnel dot: ESMM graph with scope clusters, deterministic, valid for Graphviz", "[cli][dot]") {
  Run a = run("dot");
  INFO(a.out.substr(0, 400));
  REQUIRE(a.code == 0);
  CHECK(a.out.rfind("digraph funnel {", 0) == 0);
  for (const char* scope : {"embedding", "ctr_tower", "cvr_tower", "dense_0", "product", "loss", "legend"})
    CHECK(a.out.find(std::string("label=\"") + scope + "\"") != std::string::npos);
  CHECK(a.out.find("subgraph cluster_") != std::string::npos);
  CHECK(a.out.find("B×360") != std::string::npos);  // 20 fields × dim 18 flattened
  Run b = run("dot");
  CHECK(a.out == b.out);
  if (!have_graphviz()) FUNNEL_SKIP("graphviz `dot` not on PATH: the Graphviz parse check did not run");
  fs::path d = temp_dir("parse");
  {
    std::ofstream f(d / "g.dot", std::ios::binary);
    f << a.out;
  }
  CHECK(std::system(("dot -Tsvg '" + (d / "g.dot").string() + "' -o /dev/null").c_str()) == 0);
  fs::remove_all(d);
}

TEST_CASE("funnel dot --grad-flow colours the CVR tower by the CTCVR loss only", "[cli][dot]") {
  Run r = run("dot --grad-flow --vocab 500");
  REQUIRE(r.code == 0);
  // CTCVR is loss 1 (red); the shared embedding and the CTR tower get both losses (purple).
  CHECK(node_with_name(r.out, "cvr_tower/dense_0/w").find("color=\"#d62728\"") != std::string::npos);
  CHECK(node_with_name(r.out, "cvr_tower/dense_0/w").find("∇ ctcvr") != std::string::npos);
  CHECK(node_with_name(r.out, "embedding/table").find("color=\"#7b3fa0\"") != std::string::npos);
  CHECK(node_with_name(r.out, "ctr_tower/logit/w").find("∇ ctr + ctcvr") != std::string::npos);
  CHECK(r.out.find("gradient from loss/ctcvr only") != std::string::npos);
  CHECK(r.out.find("numeric ≠ structural") == std::string::npos);
  CHECK(r.out == run("dot --grad-flow --vocab 500").out);
  Run bw = run("dot --grad-flow --backward --vocab 500");
  REQUIRE(bw.code == 0);
  CHECK(bw.out.find("∂L/∂table") != std::string::npos);
  CHECK(bw.out.find("dir=back, style=dashed") != std::string::npos);
}

TEST_CASE("funnel dot --out writes .dot files atomically, renders .svg with Graphviz", "[cli][dot]") {
  fs::path d = temp_dir("out");
  Run r = run("dot --model base --out " + (d / "base.dot").string());
  REQUIRE(r.code == 0);
  CHECK(slurp(d / "base.dot") == run("dot --model base").out);
  if (have_graphviz()) {
    Run s = run("dot --model esmm --grad-flow --vocab 500 --out " + (d / "esmm.svg").string());
    INFO(s.out);
    REQUIRE(s.code == 0);
    CHECK(slurp(d / "esmm.svg").find("<svg") != std::string::npos);
  } else {
    WARN("graphviz `dot` not on PATH: skipping the SVG render check");
  }
  // Only the outputs remain: no temp files left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(d)) {
    (void)e;
    ++files;
  }
  CHECK(files == (have_graphviz() ? 2 : 1));
  Run bad = run("dot --out " + (d / "x.pdf").string(), true);
  CHECK(bad.code == 2);
  CHECK(bad.out.find(".svg") != std::string::npos);
  fs::remove_all(d);
}

TEST_CASE("funnel dot usage errors exit 2", "[cli][dot]") {
  Run r = run("dot --model nope", true);
  CHECK(r.code == 2);
  CHECK(r.out.find("esmm") != std::string::npos);
  CHECK(run("dot --frobnicate").code == 2);
}

TEST_CASE("funnel gradcheck --op matmul passes", "[cli][gradcheck]") {
  Run r = run("gradcheck --op matmul");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("PASS") != std::string::npos);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("bit-identical") != std::string::npos);
}

TEST_CASE("funnel gradcheck --model esmm checks every loss alone and the sum", "[cli][gradcheck]") {
  Run r = run("gradcheck --model esmm");
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("loss/ctr + loss/ctcvr") != std::string::npos);
  CHECK(r.out.find("embedding/table") != std::string::npos);
  CHECK(r.out.find("skipped at kinks") != std::string::npos);
}

TEST_CASE("funnel gradcheck fails (exit 1) when the tolerance cannot be met", "[cli][gradcheck]") {
  // A huge step and zero tolerance: central differences of the sigmoid/BCE model are visibly wrong.
  Run r = run("gradcheck --model esmm --eps 0.5 --atol 0 --rtol 0");
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK(r.out.find("FAIL") != std::string::npos);
}

TEST_CASE("funnel gradcheck usage errors exit 2", "[cli][gradcheck]") {
  CHECK(run("gradcheck").code == 2);
  CHECK(run("gradcheck --op matmul --all").code == 2);
  CHECK(run("gradcheck --op no_such_op").code == 2);
  CHECK(run("gradcheck --model nope").code == 2);
  CHECK(run("gradcheck --op matmul --eps -1").code == 2);
}

TEST_CASE("funnel dot: rendering without Graphviz on PATH is a clear error naming the package", "[cli][dot]") {
  fs::path d = temp_dir("nodot");
  const std::string cmd = "env PATH=" + (d / "empty").string() + " " + kBin + " dot --out " + (d / "g.svg").string() +
                          " 2>&1";
  const Run r = funnel::test::run_shell(cmd);
  const std::string& out = r.out;
  INFO(out);
  CHECK(r.code == 1);
  CHECK(out.find("apt-get install graphviz") != std::string::npos);
  CHECK_FALSE(fs::exists(d / "g.svg"));
  // Writing DOT needs no Graphviz.
  const std::string cmd2 = "env PATH=" + (d / "empty").string() + " " + kBin + " dot --out " + (d / "g.dot").string();
  CHECK(std::system(cmd2.c_str()) == 0);
  CHECK(fs::exists(d / "g.dot"));
  fs::remove_all(d);
}
