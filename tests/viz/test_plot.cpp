// The SVG chart writer (viz/plot.*): well-formed XML, one series group per named series in each panel, values
// placed where the axes say (checked against the drawn plot area, not against the writer's own scale), error bars
// as long as the error, non-finite points left out, names escaped.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tests/viz/svg_check.hpp"
#include "viz/plot.hpp"

using namespace funnel;
using namespace funnel::test;

namespace {

plot::Figure sample() {
  plot::Figure f;
  f.title = "sample <figure>";
  plot::Panel& a = f.panels.emplace_back();
  a.title = "AUC";
  a.x_ticks = {"esmm", "base", "a<b&c"};
  a.y_min = 0.0;
  a.y_max = 1.0;
  a.series.push_back({.name = "esmm", .x = {0}, .y = {0.75}, .err = {0.05}, .line = false});
  a.series.push_back({.name = "base", .x = {1}, .y = {0.25}, .err = {0.1}, .line = false});
  a.series.push_back({.name = "a<b&c", .x = {2}, .y = {0.5}, .err = {0.0}, .line = false});
  plot::Panel& c = f.panels.emplace_back();
  c.title = "calibration";
  c.diagonal = true;
  c.series.push_back({.name = "esmm", .x = {0.01, 0.02, 0.04}, .y = {0.012, 0.018, 0.05}});
  c.series.push_back({.name = "base", .x = {0.01, NAN, 0.05}, .y = {0.02, 0.03, 0.03}});
  return f;
}

}  // namespace

TEST_CASE("plot: the SVG is well-formed, one series group per series in each panel", "[viz][plot]") {
  const std::string svg = plot::to_svg(sample());
  INFO(svg.substr(0, 400));
  REQUIRE(xml_well_formed(svg));
  REQUIRE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  const auto panels = split_panels(svg);
  REQUIRE(panels.size() == 2);
  CHECK(attr_values(panels[0], "g class=\"series\"", "data-name") ==
        std::vector<std::string>{"esmm", "base", "a&lt;b&amp;c"});
  CHECK(attr_values(panels[1], "g class=\"series\"", "data-name") == std::vector<std::string>{"esmm", "base"});
  // Names are escaped everywhere; a series keeps its colour across panels.
  CHECK(svg.find("a<b") == std::string::npos);
  CHECK(svg.find("sample &lt;figure&gt;") != std::string::npos);
  const auto fill0 = attr_values(panels[0], "circle", "fill");
  const auto fill1 = attr_values(panels[1], "circle", "fill");
  REQUIRE(fill0.size() == 3);
  REQUIRE(fill1.size() == 5);  // 3 + 2: the NaN point is left out
  CHECK(fill0[0] == fill1[0]);  // esmm
  CHECK(fill0[1] == fill1[3]);  // base
  CHECK(fill0[0] != fill0[1]);
  CHECK(count_of(panels[1], "class=\"diagonal\"") == 1);
  CHECK(count_of(panels[0], "class=\"diagonal\"") == 0);
  // The base line breaks at the NaN point: two pieces of one point each are not drawn as one segment.
  CHECK(count_of(panels[1], "<polyline") == 3);
}

TEST_CASE("plot: values map to coordinates inside the drawn plot area", "[viz][plot]") {
  const plot::Figure f = sample();
  const std::string svg = plot::to_svg(f);
  const auto panels = split_panels(svg);
  REQUIRE(panels.size() == 2);
  // Panel 0 has the fixed range [0, 1]: a value v sits at bottom − v·height of the plot-area rectangle, category i
  // at the centre of the i-th of n equal slots.
  const Rect area = plot_area(panels[0]);
  REQUIRE(area.height > 0);
  const auto pts = markers(panels[0]);
  REQUIRE(pts.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("point " << i);
    CHECK(pts[i].cy == Approx(area.y + area.height * (1.0 - pts[i].y)).margin(0.011));
    CHECK(pts[i].cx == Approx(area.x + area.width * (static_cast<double>(i) + 0.5) / 3.0).margin(0.011));
  }
  CHECK(pts[0].y == 0.75);
  CHECK(pts[1].y == 0.25);
  // Error bars span ±err: esmm's 0.05 is 0.1 of the height, base's 0.1 is 0.2; the zero one is not drawn.
  const auto bars = errorbar_spans(panels[0]);
  REQUIRE(bars.size() == 2);
  CHECK(bars[0] == Approx(0.1 * area.height).margin(0.02));
  CHECK(bars[1] == Approx(0.2 * area.height).margin(0.02));
  // Panel 1 (data range): larger values are higher on screen and further right, linearly.
  const auto q = markers(panels[1]);
  REQUIRE(q.size() == 5);
  const Rect a1 = plot_area(panels[1]);
  for (const auto& p : q) {
    CHECK(p.cx >= a1.x);
    CHECK(p.cx <= a1.x + a1.width);
    CHECK(p.cy >= a1.y);
    CHECK(p.cy <= a1.y + a1.height);
  }
  // esmm: x 0.01, 0.02, 0.04 -> equal steps in x pixels per unit.
  const double kx = (q[1].cx - q[0].cx) / (q[1].x - q[0].x), kx2 = (q[2].cx - q[1].cx) / (q[2].x - q[1].x);
  CHECK(kx > 0);
  CHECK(kx == Approx(kx2).epsilon(1e-3));
  const double ky = (q[1].cy - q[0].cy) / (q[1].y - q[0].y), ky2 = (q[2].cy - q[1].cy) / (q[2].y - q[1].y);
  CHECK(ky < 0);
  CHECK(ky == Approx(ky2).epsilon(1e-3));
  // The layout the writer reports is the one it drew.
  const auto lay = plot::layout(f);
  CHECK(lay[1].y(q[0].y) == Approx(q[0].cy).margin(0.011));
}

TEST_CASE("plot: mismatched series lengths are errors, ticks are round", "[viz][plot]") {
  plot::Figure f;
  f.panels.push_back({.title = "x", .series = {{.name = "s", .x = {1, 2}, .y = {1}}}});
  CHECK_THROWS_AS(plot::to_svg(f), Error);
  f.panels[0].series[0] = {.name = "s", .x = {1}, .y = {1}, .err = {1, 2}};
  CHECK_THROWS_WITH(plot::to_svg(f), Catch::Contains("series 's' has 2 error values for 1 points"));
  CHECK(plot::nice_ticks(0, 1, 5) == std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1});
  const auto t = plot::nice_ticks(0.013, 0.087, 4);
  REQUIRE(t.size() >= 3);
  CHECK(t.front() >= 0.013);
  CHECK(t.back() <= 0.087);
  CHECK(plot::nice_ticks(1, 1).empty());
  CHECK(plot::xml_escape("<a href=\"x\">&'") == "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
}
