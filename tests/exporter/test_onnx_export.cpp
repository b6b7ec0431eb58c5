// ONNX export: every op on the way to a registered model's prediction columns has a lowering (an op without one
// stops the export, naming the node), the exported file's interface and parameters, and `funnel export`'s flags and
// output rules. That ONNX Runtime computes funnel's predictions from the files is checked by the CTest test
// exporter/onnx_runtime_agrees (tests/exporter/check_onnx_models.py).
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <onnx/onnx_pb.h>

#include "core/error.hpp"
#include "core/onnx_lowering.hpp"
#include "core/op.hpp"
#include "exporter/onnx_export.hpp"
#include "models/model.hpp"
#include "support/small_model.hpp"
#include "tools/cli_util.hpp"
#include "train/model.hpp"

namespace fs = std::filesystem;
using namespace funnel;

namespace {

ModelConfig small_config(const std::string& kind, Pool pool = Pool::Sum) {
  ModelConfig c = test::small(kind, {.vocab = 40, .dim = 4, .hidden = {6, 3}});
  c.num_dense = 2;
  c.pool = pool;
  return c;
}

std::vector<NodeId> columns_of(const ModelHandle& h) {
  std::vector<NodeId> v;
  for (const auto& c : h.columns) v.push_back(c.node);
  return v;
}

// An op with no ONNX lowering (registered by this test only).
struct Unlowered : OpT<Unlowered> {
  const char* name() const override { return "test_unlowered"; }
  const char* doc() const override { return "identity without an ONNX lowering (test)"; }
  int arity() const override { return 1; }
  Shape infer(const Node&, const std::vector<Shape>& in) const override { return in[0]; }
  template <class T>
  static void fwd(Ctx<T>& c) { *c.out = c.x(0); }
  template <class T>
  static void bwd(Ctx<T>& c) { *c.gin[0] = *c.gout; }
};
FUNNEL_REGISTER_OP(Unlowered);

}  // namespace

TEST_CASE("every op on the way to a registered model's prediction columns has an ONNX lowering", "[onnx]") {
  for (const auto& kind : model_kinds())
    for (Pool pool : {Pool::Sum, Pool::Mean}) {
      ModelConfig c = small_config(kind, pool);
      if (get_model(kind).multi_stage) c.num_stages = 3;
      Graph g;
      const ModelHandle h = build_model(g, c);
      INFO("model " << kind << ", " << c.num_stages << " stages");
      CHECK(missing_onnx_lowerings(g, columns_of(h)).empty());
      // Losses and labels are pruned.
      for (NodeId id : inference_nodes(g, columns_of(h))) {
        CHECK_FALSE(g.node(id).is_loss);
        for (NodeId l : h.labels) CHECK(id != l);
      }
    }
}

TEST_CASE("an op without an ONNX lowering on the way to a column is named, one only under a loss is pruned", "[onnx]") {
  REQUIRE(find_onnx_lowering("test_unlowered") == nullptr);
  REQUIRE(find_onnx_lowering("sigmoid") != nullptr);
  Graph g;
  const NodeId x = g.add_input("x", Shape{kBatch, 1});
  const NodeId y = g.add_input("y", Shape{kBatch, 1});
  const NodeId hidden = g.add_op("test_unlowered", {x}, {}, "hidden");
  const NodeId p = g.add_op("sigmoid", {hidden}, {}, "p");
  const NodeId q = g.add_op("sigmoid", {x}, {}, "q");
  const NodeId loss = g.add_op("bce", {g.add_op("test_unlowered", {q}, {}, "under_loss"), y}, {}, "loss");
  const auto missing = missing_onnx_lowerings(g, {p});
  REQUIRE(missing.size() == 1);
  CHECK(missing[0] == "node 'hidden' (op test_unlowered)");
  CHECK(missing_onnx_lowerings(g, {q}).empty());
  const auto nodes = inference_nodes(g, {q});
  CHECK(std::find(nodes.begin(), nodes.end(), loss) == nodes.end());
  CHECK(std::find(nodes.begin(), nodes.end(), y) == nodes.end());
}

TEST_CASE("the exported model: opset 17, ids/weights/offsets/dense inputs, one output per column, parameters as initializers",
          "[onnx]") {
  Model m(small_config("esmm"));
  m.params().init(7);
  const std::string bytes = export_onnx(m, "test");
  onnx::ModelProto p;
  REQUIRE(p.ParseFromString(bytes));
  REQUIRE(p.opset_import_size() == 1);
  CHECK(p.opset_import(0).version() == 17);
  CHECK(p.opset_import(0).domain().empty());
  const onnx::GraphProto& g = p.graph();
  std::vector<std::string> inputs, outputs;
  for (const auto& v : g.input()) inputs.push_back(v.name());
  for (const auto& v : g.output()) outputs.push_back(v.name());
  CHECK(inputs == std::vector<std::string>{"ids", "weights", "offsets", "dense"});
  CHECK(outputs == m.handle().column_names());
  CHECK(g.input(0).type().tensor_type().elem_type() == onnx::TensorProto::INT64);
  CHECK(g.input(1).type().tensor_type().elem_type() == onnx::TensorProto::FLOAT);
  CHECK(g.input(2).type().tensor_type().elem_type() == onnx::TensorProto::INT64);
  CHECK(g.input(3).type().tensor_type().shape().dim(0).dim_param() == "batch");
  CHECK(g.input(3).type().tensor_type().shape().dim(1).dim_value() == 2);
  // Every parameter, bit for bit.
  std::map<std::string, const onnx::TensorProto*> init;
  for (const auto& t : g.initializer()) init[t.name()] = &t;
  for (NodeId id : m.graph().params()) {
    const std::string& name = m.graph().node(id).name;
    INFO(name);
    REQUIRE(init.count(name) == 1);
    const auto& v = m.params().value(id);
    REQUIRE(init[name]->raw_data().size() == v.size() * sizeof(float));
    CHECK(std::memcmp(init[name]->raw_data().data(), v.data(), v.size() * sizeof(float)) == 0);
  }
  // Every node input is a graph input, an initializer or an earlier node's output (topological order).
  std::set<std::string> known(inputs.begin(), inputs.end());
  for (const auto& [name, t] : init) known.insert(name);
  for (const auto& n : g.node()) {
    for (const auto& i : n.input()) {
      INFO("node " << n.name() << " input " << i);
      CHECK((i.empty() || known.count(i) == 1));
    }
    for (const auto& o : n.output()) known.insert(o);
  }
  for (const auto& o : outputs) CHECK(known.count(o) == 1);
  // No loss or label made it in.
  for (const auto& n : g.node()) CHECK(n.name().find("loss") == std::string::npos);
}

TEST_CASE("funnel export: flags checked first, both outputs written by the rules of every funnel output", "[onnx][cli]") {
  const fs::path d = test::fresh_temp_dir("onnx_export");
  const std::string ck = (d / "ck").string();
  REQUIRE(test::run_funnel("train --data synthetic:rows=600,fields=3,vocab=20,seed=3 --embedding-dim 4 --hidden 6,3 "
                           "--batch-size 128 --quiet --save " + ck, true).code == 0);
  SECTION("bad --format: exit 2 naming the flag") {
    const auto r = test::run_funnel("export --checkpoint " + ck + " --format tflite --out " + (d / "m").string(), true);
    CHECK(r.code == 2);
    CHECK(r.out.find("--format") != std::string::npos);
    CHECK_FALSE(fs::exists(d / "m"));
  }
  SECTION("the default side file, and the JSON names the inputs and outputs") {
    const auto r = test::run_funnel("export --checkpoint " + ck + " --format onnx --out " + (d / "m.onnx").string(), true);
    REQUIRE(r.code == 0);
    CHECK(fs::file_size(d / "m.onnx") > 0);
    const auto j = nlohmann::json::parse(test::slurp((d / "m.features.json").string()));
    CHECK(j["format"] == "funnel.onnx_inputs");
    CHECK(j["outputs"] == std::vector<std::string>{"pctr", "pcvr", "pctcvr"});
    CHECK(j["num_fields"] == 3);
    CHECK(j["feature_map"].is_null());  // synthetic data: ids are fed as they are
  }
  SECTION("an output inside the checkpoint (an input) or a directory is refused before anything is written") {
    CHECK(test::run_funnel("export --checkpoint " + ck + " --format onnx --out " + ck + "/m.onnx", true).code != 0);
    CHECK_FALSE(fs::exists(fs::path(ck) / "m.onnx"));
    CHECK(test::run_funnel("export --checkpoint " + ck + " --format onnx --out " + d.string(), true).code != 0);
    const auto r = test::run_funnel("export --checkpoint " + ck + " --format onnx --out " + (d / "x.onnx").string() +
                                    " --features " + ck + "/manifest.json", true);
    CHECK(r.code != 0);
    CHECK_FALSE(fs::exists(d / "x.onnx"));
  }
  SECTION("--features the same file as --out: exit 2") {
    const auto r = test::run_funnel("export --checkpoint " + ck + " --format onnx --out " + (d / "m.onnx").string() +
                                    " --features " + (d / "m.onnx").string(), true);
    CHECK(r.code == 2);
  }
  fs::remove_all(d);
}
