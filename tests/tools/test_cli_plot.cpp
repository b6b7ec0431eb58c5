// `funnel compare --plot` and `funnel train --plot`, run as a user would: the SVG is well-formed, has a series per
// model (compare) or per loss and metric (train), and the plotted values are the ones the command reports in
// --metrics-json. Output targets are checked before any training.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/viz/svg_check.hpp"
#include "tools/cli_util.hpp"

namespace fs = std::filesystem;
using namespace funnel::test;

namespace {
const std::string kSmall = "synthetic:rows=6000,fields=4,vocab=30,seed=5";
const std::string kModel = " --embedding-dim 4 --hidden 8,4 --batch-size 256 --threads 1";
Run run(const std::string& args) { return run_funnel(args, true); }

// The panel whose data-title is `title`.
std::string panel(const std::vector<std::string>& panels, const std::string& title) {
  for (const auto& p : panels)
    if (p.find("data-title=\"" + title + "\"") != std::string::npos) return p;
  FAIL("no panel '" << title << "'");
  return "";
}
}  // namespace

TEST_CASE("compare --plot: AUC per model with error bars and calibration curves, the reported values", "[cli][plot]") {
  const fs::path d = fresh_temp_dir("cli_compare_plot");
  const fs::path svg = d / "cmp.svg", js = d / "m.json";
  Run c = run("compare --data " + kSmall + kModel + " --epochs 1 --seeds 2 --models esmm,base,aitm --plot " +
              svg.string() + " --metrics-json " + js.string());
  INFO(c.out);
  REQUIRE(c.code == 0);
  const std::string s = slurp(svg);
  REQUIRE(xml_well_formed(s));
  const auto panels = split_panels(s);
  // CVR, CTCVR, CTR AUC, entire-space CVR AUC, and the two calibration panels.
  REQUIRE(panels.size() == 6);
  const nlohmann::json j = nlohmann::json::parse(slurp(js));
  const std::vector<std::string> models{"esmm", "base", "aitm"};
  for (const auto& [title, key] : std::vector<std::pair<std::string, std::string>>{
           {"CVR AUC", "cvr_auc"}, {"CTCVR AUC", "ctcvr_auc"}, {"CTR AUC", "ctr_auc"},
           {"CVR AUC entire", "cvr_auc_entire_space"}}) {
    INFO(title);
    const std::string p = panel(panels, title);
    CHECK(attr_values(p, "g class=\"series\"", "data-name") == models);
    const auto m = markers(p);
    REQUIRE(m.size() == 3);
    const Rect area = plot_area(p);
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(m[i].y == Approx(j[models[i]]["summary"][key]["mean"].get<double>()).epsilon(1e-6));
      CHECK(m[i].cx == Approx(area.x + area.width * (static_cast<double>(i) + 0.5) / 3.0).margin(0.011));
    }
    // Higher AUC is higher on screen.
    for (std::size_t a = 0; a < 3; ++a)
      for (std::size_t b = 0; b < 3; ++b)
        if (m[a].y > m[b].y) CHECK(m[a].cy < m[b].cy);
    CHECK(errorbar_spans(p).size() <= 3);
  }
  for (const char* t : {"pCVR calibration, clicked impressions", "pCVR calibration, entire space (ground truth)"}) {
    const std::string p = panel(panels, t);
    CHECK(attr_values(p, "g class=\"series\"", "data-name") == models);
    CHECK(count_of(p, "class=\"diagonal\"") == 1);
    CHECK(markers(p).size() == 30);  // 10 bins per model
  }
  fs::remove_all(d);
}

TEST_CASE("train --plot: losses by step and epoch, metrics by epoch, calibration", "[cli][plot]") {
  const fs::path d = fresh_temp_dir("cli_train_plot");
  const fs::path svg = d / "t.svg", js = d / "m.json";
  Run t = run("train --data " + kSmall + kModel + " --epochs 2 --model escm2-ips --plot " + svg.string() +
              " --metrics-json " + js.string());
  INFO(t.out);
  REQUIRE(t.code == 0);
  const std::string s = slurp(svg);
  REQUIRE(xml_well_formed(s));
  const auto panels = split_panels(s);
  REQUIRE(panels.size() == 5);
  const std::vector<std::string> losses{"ctr", "ctcvr", "cvr_ips"};
  CHECK(attr_values(panel(panels, "training loss (running mean)"), "g class=\"series\"", "data-name") == losses);
  CHECK(attr_values(panel(panels, "training loss (epoch mean)"), "g class=\"series\"", "data-name") == losses);
  const std::string auc = panel(panels, "evaluation AUC");
  CHECK(attr_values(auc, "g class=\"series\"", "data-name") ==
        std::vector<std::string>{"CTR AUC", "CVR AUC (clicked)", "CTCVR AUC", "CVR AUC (entire space)"});
  // The CTR AUC series holds the two epochs' values from the metrics JSON, at x = 1, 2.
  const nlohmann::json j = nlohmann::json::parse(slurp(js));
  const auto m = markers(auc);
  REQUIRE(m.size() == 8);
  REQUIRE(j["epochs"].size() == 2);
  for (std::size_t e = 0; e < 2; ++e) {
    CHECK(m[e].x == static_cast<double>(e + 1));
    CHECK(m[e].y == Approx(j["epochs"][e]["ctr_auc"].get<double>()).epsilon(1e-6));
  }
  CHECK(m[1].cx > m[0].cx);
  // Epoch-mean losses: the JSON's loss_<name> per epoch.
  const auto lm = markers(panel(panels, "training loss (epoch mean)"));
  REQUIRE(lm.size() == 6);
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t e = 0; e < 2; ++e)
      CHECK(lm[2 * k + e].y == Approx(j["epochs"][e]["loss_" + losses[k]].get<double>()).epsilon(1e-6));
  CHECK(attr_values(panel(panels, "pCVR calibration after the last epoch"), "g class=\"series\"", "data-name") ==
        std::vector<std::string>{"clicked impressions", "entire space (ground truth)"});
  fs::remove_all(d);
}

TEST_CASE("--plot targets are checked before training; an empty name exits 2", "[cli][plot]") {
  const fs::path d = fresh_temp_dir("cli_plot_target");
  // A directory cannot be written: refused before any data is read (the error names --plot).
  Run c = run("compare --data " + kSmall + kModel + " --models esmm --plot " + d.string());
  CHECK(c.code != 0);
  CHECK(c.out.find("--plot") != std::string::npos);
  CHECK(c.out.find("training esmm") == std::string::npos);
  Run t = run("train --data " + kSmall + kModel + " --plot " + (d / "no_dir" / "x.svg").string());
  CHECK(t.code != 0);
  CHECK(t.out.find("--plot") != std::string::npos);
  CHECK(t.out.find("epoch") == std::string::npos);
  CHECK(run("train --data " + kSmall + " --plot=").code == 2);
  CHECK(run("compare --data " + kSmall + " --plot=").code == 2);
  fs::remove_all(d);
}
