#pragma once
/// @file
/// A small SVG chart writer: a figure of panels laid out in a grid, each panel a set of named series (lines,
/// markers, optional ± error bars) on linear axes, with a categorical x axis when tick labels are given and an
/// optional y = x reference line (calibration curves). One legend per figure, a series keeping its colour in every
/// panel it appears in (colours go by name, in order of first appearance), or one legend per panel. funnel writes the SVG text itself: no
/// plotting library, no fonts beyond the viewer's sans-serif.
///
///   plot::Figure f{.title = "AUC"};
///   plot::Panel& p = f.panels.emplace_back();
///   p.title = "CVR AUC";
///   p.x_ticks = {"esmm", "base"};  // categorical: x = 0, 1
///   p.series.push_back({.name = "esmm", .x = {0}, .y = {0.78}, .err = {0.01}, .line = false});
///   std::string svg = plot::to_svg(f);
///
/// Non-finite points are left out (a line breaks there). The SVG marks its parts for tools and tests:
/// `<g class="panel" data-title=...>`, `<g class="series" data-name=...>`, markers `<circle data-x=.. data-y=..>`.
#include <optional>
#include <string>
#include <vector>

namespace funnel::plot {

/// One named data series of a panel.
struct Series {
  std::string name{};  ///< the legend entry; also picks the colour
  /// @{
  /// The points' coordinates, same length (on a categorical axis x is the tick index).
  std::vector<double> x{}, y{};
  /// @}
  std::vector<double> err{};  ///< empty, or one ± half-width per point (drawn as an error bar)
  bool line = true;           ///< connect consecutive points
  bool points = true;         ///< draw a marker at each point
};

/// One chart of a figure: axes, titles and its series.
struct Panel {
  /// @{
  /// The panel's title and axis labels; empty = none.
  std::string title{}, x_label{}, y_label{};
  /// @}
  std::vector<std::string> x_ticks{};  ///< categorical x axis: x = 0 .. n-1 labelled by these
  std::vector<Series> series{};  ///< drawn in order
  bool diagonal = false;   ///< draw y = x
  bool integer_x = false;  ///< x ticks on whole numbers only (epochs)
  /// @{
  /// fixed ranges; otherwise from the data, padded
  std::optional<double> x_min{}, x_max{}, y_min{}, y_max{};
  /// @}
};

/// A whole chart: panels in a grid of `columns` columns, row by row.
struct Figure {
  std::string title{};         ///< drawn above the panels; empty = none
  std::vector<Panel> panels{};  ///< in reading order
  int columns = 2;              ///< panels per row
  /// @{
  /// Size of each panel in pixels.
  double panel_width = 440, panel_height = 300;
  /// @}
  /// false: one legend under the panels, a series' colour follows its name across panels (models in a comparison);
  /// true: each panel has its own legend in its top right corner, colours counted per panel.
  bool panel_legends = false;
};

/// A linear map of [lo, hi] onto [p0, p1] (pixels; p0 > p1 for a y axis).
struct Scale {
  /// @{
  /// The data interval [lo, hi] and the pixel interval [p0, p1] it maps to.
  double lo = 0, hi = 1, p0 = 0, p1 = 1;
  /// @}
  /// The pixel position of data value v.
  double operator()(double v) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

/// Where a panel's plot area lies in the figure and how its data maps there.
struct PanelLayout {
  /// @{
  /// the plot area (inside the axes), pixels
  double left = 0, top = 0, width = 0, height = 0;
  /// @}
  /// @{
  /// How data coordinates map to pixels on each axis.
  Scale x, y;
  /// @}
  /// @{
  /// The data values at which ticks are drawn on each axis.
  std::vector<double> x_tick_values, y_tick_values;
  /// @}
};

/// The layout of every panel of `f` (the same one to_svg draws).
std::vector<PanelLayout> layout(const Figure& f);

/// The figure as an SVG document. Throws funnel::Error on a series whose x, y and err lengths disagree.
std::string to_svg(const Figure& f);

/// About `target` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

/// `s` with &, <, >, " and ' escaped for XML text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace funnel::plot
