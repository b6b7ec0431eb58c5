// The model registry (models/registry.cpp): every registered model exposes a complete handle; a model registered
// from outside funnel (here, by this test file) is listed, built, checked and configured through its own options;
// registration and handle errors; the config's JSON form.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/executor.hpp"
#include "core/error.hpp"
#include "models/blocks.hpp"
#include "models/model.hpp"
#include "tests/models/model_test_util.hpp"

using namespace funnel;
using namespace funnel::test;
using Catch::Matchers::Contains;

namespace {

// A model defined by this test file, the way a user's own file would: two towers over one embedding or two, the
// CVR tower's size an option. Its "break" option makes the builder return a defective handle, to test the
// registry's checks (the default builds a valid model, so registry-wide tests cover it like any other).
ModelHandle build_test_towers(Graph& g, const ModelConfig& c) {
  ModelHandle h;
  const blocks::Inputs in = blocks::make_inputs(g, c, h);
  const bool share = model_option(c, "share_embedding").get<bool>();
  const auto cvr_hidden = model_option(c, "cvr_hidden").get<std::vector<std::int64_t>>();
  const std::string brk = model_option(c, "break").get<std::string>();
  Var x = blocks::embed(g, c, in, "embedding");
  Var pctr = blocks::tower(g, c, x, "ctr_tower", "pctr");
  Var pcvr = blocks::tower(g, cvr_hidden, share ? x : blocks::embed(g, c, in, "embedding_cvr"), "cvr_tower", "pcvr");
  Var pctcvr = mul(pctr, pcvr, "pctcvr");
  if (brk != "no_losses") {
    auto s = g.scope("loss");
    blocks::add_loss(g, h, bce(pctr, in.labels[0], "ctr"));
    blocks::add_loss(g, h, bce(pctcvr, in.labels[1], "ctcvr"));
  }
  blocks::two_stage_outputs(h, pctr, pcvr, pctcvr);
  if (brk == "no_columns") h.columns.clear();
  if (brk == "same_column") h.columns[1].name = "pctr";
  if (brk == "wide_column") h.columns.push_back({"x", x.id});
  if (brk == "no_label") h.labels.pop_back();
  if (brk == "no_ids") h.ids = kUnsetNode;
  return h;
}

// The message of the GraphError that building `c` throws ("<no GraphError>" when it builds).
std::string build_error(const ModelConfig& c) {
  Graph g;
  try {
    build_model(g, c);
  } catch (const GraphError& e) {
    return std::string(e.what());
  }
  return std::string("<no GraphError>");
}

}  // namespace

FUNNEL_REGISTER_MODEL(test_towers, .name = "test-towers",
                      .description = "two towers registered by tests/models/test_registry.cpp",
                      .build = build_test_towers,
                      .options = {{"share_embedding", true, "one embedding for both towers"},
                                  {"cvr_hidden", nlohmann::json::array({3}), "the CVR tower's hidden sizes"},
                                  {"break", "none", "return a defective handle (tests)"}});

TEST_CASE("model_kinds lists funnel's models first, in order, then models registered elsewhere", "[models][registry]") {
  const auto k = model_kinds();
  REQUIRE(k.size() >= 5);
  CHECK(std::vector<std::string>(k.begin(), k.begin() + 4) == std::vector<std::string>{"esmm", "base", "esmm-ns", "division"});
  CHECK(std::find(k.begin(), k.end(), "test-towers") != k.end());
  CHECK(model_kinds_text().rfind("esmm, base, esmm-ns, division", 0) == 0);
  for (const auto& name : k) {
    INFO(name);
    const ModelDef& d = get_model(name);
    CHECK(d.name == name);
    CHECK(!d.description.empty());
    CHECK(d.description.find('\n') == std::string::npos);
  }
  CHECK(find_model("nope") == nullptr);
  CHECK_THROWS_WITH(get_model("nope"), Contains("unknown model 'nope'") && Contains("test-towers"));
}

TEST_CASE("registering a model twice, without a name or without a builder is an error", "[models][registry]") {
  const auto before = model_kinds();
  CHECK_THROWS_WITH(register_model({.name = "esmm", .description = "again", .build = build_test_towers}),
                    Contains("'esmm' is already registered"));
  CHECK_THROWS_WITH(register_model({.name = "", .description = "x", .build = build_test_towers}), Contains("name"));
  CHECK_THROWS_WITH(register_model({.name = "no-builder", .description = "x"}), Contains("no builder"));
  CHECK(model_kinds() == before);
}

TEST_CASE("a model registered outside funnel builds with its options, checked against their declared types",
          "[models][registry]") {
  ModelConfig c = small("test-towers");
  {
    Graph g;
    ModelHandle h = build_model(g, c);
    CHECK(h.kind == "test-towers");
    CHECK(g.node(g.at("cvr_tower/dense_0/w")).shape == Shape{9, 3});  // default cvr_hidden [3]
    CHECK(tables(g).size() == 1);
  }
  c.options = parse_model_options("cvr_hidden=[6,2],share_embedding=false");
  {
    Graph g;
    build_model(g, c);
    CHECK(g.node(g.at("cvr_tower/dense_0/w")).shape == Shape{9, 6});
    CHECK(g.node(g.at("cvr_tower/dense_1/w")).shape == Shape{6, 2});
    CHECK(tables(g).size() == 2);
  }
  c.options = {{"cvr_hiden", {2}}};
  CHECK_THAT(build_error(c), Contains("no option 'cvr_hiden'") && Contains("cvr_hidden") && Contains("share_embedding"));
  c.options = {{"share_embedding", 1}};
  CHECK_THAT(build_error(c), Contains("'share_embedding'") && Contains("must be a boolean") && Contains("got 1"));
  c.options = {{"cvr_hidden", 4}};
  CHECK_THAT(build_error(c), Contains("'cvr_hidden'") && Contains("a list"));
  // funnel's own models declare no options.
  ModelConfig e = small("esmm");
  e.options = {{"share_embedding", true}};
  CHECK_THAT(build_error(e), Contains("model 'esmm' has no option 'share_embedding'") && Contains("none"));
  CHECK_THROWS_WITH(model_option(small("esmm"), "x"), Contains("declares no option 'x'"));
}

TEST_CASE("the registry rejects a builder's defective handle, saying what is missing", "[models][registry]") {
  auto err = [](const std::string& brk) {
    ModelConfig c = small("test-towers");
    c.options = {{"break", brk}};
    return build_error(c);
  };
  CHECK(err("none") == "<no GraphError>");
  CHECK_THAT(err("no_losses"), Contains("model 'test-towers'") && Contains("no losses"));
  CHECK_THAT(err("no_columns"), Contains("no prediction columns"));
  CHECK_THAT(err("same_column"), Contains("two columns named 'pctr'"));
  CHECK_THAT(err("wide_column"), Contains("embedding/flatten") && Contains("expected B×1"));
  CHECK_THAT(err("no_label"), Contains("1 labels for 2 stages"));
  CHECK_THAT(err("no_ids"), Contains("no ids input"));
}

TEST_CASE("model options parse from KEY=VALUE lists: JSON values, else strings", "[models][registry]") {
  const auto o = parse_model_options("a=1,b=[2,3],c=true,d=sum,e=0.5,f={\"x\":[1,2]}");
  CHECK(o["a"] == 1);
  CHECK(o["b"] == nlohmann::json{2, 3});
  CHECK(o["c"] == true);
  CHECK(o["d"] == "sum");
  CHECK(o["e"] == 0.5);
  CHECK(o["f"]["x"] == nlohmann::json{1, 2});
  CHECK_THROWS_WITH(parse_model_options("a"), Contains("KEY=VALUE") && Contains("'a'"));
  CHECK_THROWS_WITH(parse_model_options("=3"), Contains("KEY=VALUE"));
  CHECK_THROWS_WITH(parse_model_options("a=1,a=2"), Contains("'a' given twice"));
}

TEST_CASE("a column is found by name, a missing one is an error listing the columns", "[models][registry]") {
  Graph g;
  ModelHandle h = build_model(g, small("esmm"));
  CHECK(h.column_names() == std::vector<std::string>{"pctr", "pcvr", "pctcvr"});
  CHECK(g.node(h.column("pcvr")).name == "cvr_tower/pcvr");
  CHECK_THROWS_WITH(h.column("pctcvr2"), Contains("no output column 'pctcvr2'") && Contains("pctr, pcvr, pctcvr"));
}

TEST_CASE("every registered model exposes ids, labels, B×1 outputs and scalar losses", "[models][registry]") {
  for (const auto& kind : model_kinds()) {
    INFO(kind);
    Graph g;
    ModelHandle h = build_model(g, small(kind));
    CHECK(h.kind == kind);
    CHECK(g.node(h.ids).kind == NodeKind::Ids);
    CHECK(g.node(h.ids).num_fields == 3);
    CHECK(h.dense.empty());
    REQUIRE(h.labels.size() == 2);
    for (NodeId l : h.labels) {
      CHECK(g.node(l).kind == NodeKind::Input);
      CHECK(g.node(l).shape == Shape{kBatch, 1});
    }
    REQUIRE(!h.columns.empty());
    for (const auto& col : h.columns) {
      INFO(col.name);
      CHECK(g.node(col.node).shape == Shape{kBatch, 1});
      CHECK(g.node(col.node).is_output);
    }
    REQUIRE(h.stage_probs.size() == 2);
    REQUIRE(h.cond_probs.size() == 2);
    CHECK(h.cond_probs[0] == h.stage_probs[0]);
    CHECK(h.cond_probs[1] != h.stage_probs[1]);
    for (NodeId v : h.stage_probs) CHECK(g.node(v).is_output);
    for (NodeId v : h.cond_probs) CHECK(g.node(v).is_output);
    REQUIRE(!h.losses.empty());
    CHECK(h.loss_names.size() == h.losses.size());
    CHECK(g.losses() == h.losses);
    for (NodeId l : h.losses) CHECK(g.node(l).shape == Shape{});
    CHECK(h.loss_weights == std::vector<double>(h.losses.size(), 1.0));
    // Every parameter reaches some loss.
    auto anc = g.ancestors(h.losses);
    for (NodeId p : g.params()) {
      INFO(g.node(p).name);
      CHECK(anc[p]);
    }
  }
}



TEST_CASE("dense features are concatenated to the embeddings", "[models][registry]") {
  for (const auto& kind : model_kinds()) {
    INFO(kind);
    ModelConfig c = small(kind);
    c.num_dense = 2;
    Graph g;
    ModelHandle h = build_model(g, c);
    REQUIRE(h.dense.size() == 1);
    CHECK(g.node(h.dense[0]).shape == Shape{kBatch, 2});
    CHECK(g.node(h.dense[0]).name == "input/dense");
    const bool builtin = kind == "esmm" || kind == "base" || kind == "esmm-ns" || kind == "division";
    for (const Node& n : g.nodes())
      if (builtin && n.kind == NodeKind::Param && n.name.find("dense_0/w") != std::string::npos) {
        INFO(n.name);
        CHECK(n.shape == Shape{11, 5});  // F·D + num_dense
      }
    Executor<float> ex(g);
    ex.init_params(1);
    feed(ex, h, c, 5, 2);
    CHECK_NOTHROW(ex.forward());
  }
}



TEST_CASE("bad model configs are GraphErrors saying what is wrong", "[models][registry]") {
  struct Case {
    const char* kind;
    std::function<void(ModelConfig&)> spoil;
    std::vector<std::string> says;  // what the message must contain
  };
  const Case cases[] = {
      {"esmm", [](ModelConfig& c) { c.kind = "dcn"; }, {"unknown model 'dcn'", "esmm", "division"}},
      {"esmm", [](ModelConfig& c) { c.num_fields = 0; }, {"num_fields"}},
      {"esmm", [](ModelConfig& c) { c.vocab = -1; }, {"vocab"}},
      {"esmm", [](ModelConfig& c) { c.dim = 0; }, {"dim"}},
      {"esmm", [](ModelConfig& c) { c.hidden = {4, 0}; }, {"hidden"}},
      {"esmm", [](ModelConfig& c) { c.num_stages = 1; }, {"2 stages"}},
      {"base", [](ModelConfig& c) { c.num_stages = 3; }, {"base"}},
      {"esmm", [](ModelConfig& c) { c.num_dense = -1; }, {"num_dense"}},
      {"esmm", [](ModelConfig& c) { c.loss_weights = {1.0}; }, {"1 loss weights", "2 losses"}},
  };
  for (const Case& k : cases) {
    ModelConfig c = small(k.kind);
    k.spoil(c);
    const std::string e = build_error(c);
    INFO(k.kind << ": " << e);
    for (const std::string& want : k.says) CHECK_THAT(e, Contains(want));
  }
  // A graph that already has nodes.
  Graph g;
  input(g, "x", {kBatch, 1});
  CHECK_THROWS_WITH(build_model(g, small("esmm")), Contains("empty graph"));
  // Custom loss weights are passed through.
  ModelConfig c = small("esmm");
  c.loss_weights = {1.0, 0.25};
  Graph g2;
  CHECK(build_model(g2, c).loss_weights == std::vector<double>{1.0, 0.25});
}



TEST_CASE("model config JSON round trip", "[models][registry]") {
  ModelConfig c;
  c.kind = "esmm-ns";
  c.num_fields = 7;
  c.vocab = 1234;
  c.dim = 5;
  c.hidden = {9, 3, 2};
  c.num_stages = 2;
  c.num_dense = 4;
  c.pool = Pool::Mean;
  c.loss_weights = {0.5, 2.0};
  nlohmann::json j = to_json(c);
  CHECK(j["kind"] == "esmm-ns");
  CHECK(j["pool"] == "mean");
  ModelConfig d = model_config_from_json(j);
  CHECK(d.kind == c.kind);
  CHECK(d.num_fields == c.num_fields);
  CHECK(d.vocab == c.vocab);
  CHECK(d.dim == c.dim);
  CHECK(d.hidden == c.hidden);
  CHECK(d.num_stages == c.num_stages);
  CHECK(d.num_dense == c.num_dense);
  CHECK(d.pool == c.pool);
  CHECK(d.loss_weights == c.loss_weights);
  CHECK(to_json(d) == j);
  // Through text as well.
  CHECK(to_json(model_config_from_json(nlohmann::json::parse(j.dump()))) == j);
  // Missing keys keep their defaults.
  ModelConfig dflt;
  ModelConfig e = model_config_from_json(nlohmann::json::object({{"kind", "base"}}));
  CHECK(e.kind == "base");
  CHECK(e.vocab == dflt.vocab);
  CHECK(e.hidden == dflt.hidden);
  CHECK(e.pool == Pool::Sum);
  // A config without options writes no "options" key (checkpoints from before options read and write as before).
  CHECK(!j.contains("options"));
  CHECK(e.options == nlohmann::json::object());
  // With options they round-trip.
  c.options = {{"cvr_hidden", {7, 2}}, {"share_embedding", false}};
  j = to_json(c);
  CHECK(j["options"]["cvr_hidden"] == nlohmann::json{7, 2});
  CHECK(model_config_from_json(j).options == c.options);
}



TEST_CASE("model config JSON errors name the offending key", "[models][registry]") {
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"kind", "esmm"}, {"hiden", {1, 2}}}),
                    Contains("unknown key") && Contains("'hiden'"));
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json{{"kind", "esmm"}, {"hiden", {1, 2}}}), GraphError);
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"vocab", "many"}}), Contains("'vocab'"));
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"hidden", 5}}), Contains("'hidden'"));
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"pool", "max"}}), Contains("pool") && Contains("max"));
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json::array({1, 2})), GraphError);
  CHECK_THROWS_AS(model_config_from_json(nlohmann::json("esmm")), GraphError);
  CHECK_THROWS_WITH(model_config_from_json(nlohmann::json{{"options", {1, 2}}}), Contains("'options'"));
}
