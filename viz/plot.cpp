#include "viz/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "core/error.hpp"

namespace funnel::plot {
namespace {

// Colour-blind-safe palette (Okabe–Ito order, then a few more).
const char* const kPalette[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
                                "#000000", "#f0e442", "#7f3c8d", "#11a579", "#3969ac", "#a5aa99"};
constexpr std::size_t kNumColours = sizeof(kPalette) / sizeof(kPalette[0]);

constexpr double kMarginLeft = 62, kMarginRight = 16, kMarginTop = 30, kMarginBottom = 48;
constexpr double kTitleHeight = 34, kLegendRow = 20;

bool finite(double v) { return std::isfinite(v); }

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Short tick label: %g with up to 4 significant digits.
std::string tick_label(double v) {
  if (std::abs(v) < 1e-12) v = 0;
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

void check(const Series& s) {
  if (s.x.size() != s.y.size())
    throw Error("plot: series '" + s.name + "' has " + std::to_string(s.x.size()) + " x values and " +
                std::to_string(s.y.size()) + " y values");
  if (!s.err.empty() && s.err.size() != s.y.size())
    throw Error("plot: series '" + s.name + "' has " + std::to_string(s.err.size()) + " error values for " +
                std::to_string(s.y.size()) + " points");
}

// The data range of a panel along x (axis 0) or y (axis 1), error bars and the diagonal included.
std::pair<double, double> data_range(const Panel& p, int axis) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const Series& s : p.series) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!finite(s.x[i]) || !finite(s.y[i])) continue;
      const double e = axis == 1 && !s.err.empty() && finite(s.err[i]) ? std::abs(s.err[i]) : 0.0;
      const double v = axis == 0 ? s.x[i] : s.y[i];
      lo = std::min(lo, v - e);
      hi = std::max(hi, v + e);
    }
  }
  return {lo, hi};
}

std::pair<double, double> axis_range(const Panel& p, int axis) {
  const std::optional<double>& fmin = axis == 0 ? p.x_min : p.y_min;
  const std::optional<double>& fmax = axis == 0 ? p.x_max : p.y_max;
  if (axis == 0 && !p.x_ticks.empty())
    return {fmin.value_or(-0.5), fmax.value_or(static_cast<double>(p.x_ticks.size()) - 0.5)};
  auto [lo, hi] = data_range(p, axis);
  if (p.diagonal) {  // both axes cover both ranges, so y = x is visible
    auto [lo2, hi2] = data_range(p, 1 - axis);
    lo = std::min(lo, lo2);
    hi = std::max(hi, hi2);
  }
  if (!finite(lo) || !finite(hi)) lo = 0, hi = 1;
  const double pad = hi > lo ? 0.06 * (hi - lo) : (std::abs(hi) > 0 ? 0.1 * std::abs(hi) : 1.0);
  lo -= pad;
  hi += pad;
  if (p.diagonal && lo < 0 && lo + pad >= 0) lo = 0;  // probabilities: do not pad below 0
  if (fmin) lo = *fmin;
  if (fmax) hi = *fmax;
  if (!(hi > lo)) hi = lo + 1;
  return {lo, hi};
}

std::string colour_of(const std::map<std::string, std::size_t>& index, const std::string& name) {
  return kPalette[index.at(name) % kNumColours];
}

// Words of `s` joined into lines of at most `width` characters (a longer word stands alone).
std::vector<std::string> wrap(const std::string& s, std::size_t width) {
  std::vector<std::string> lines;
  std::string cur;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t sp = s.find(' ', pos);
    if (sp == std::string::npos) sp = s.size();
    const std::string word = s.substr(pos, sp - pos);
    pos = sp + 1;
    if (word.empty()) continue;
    if (!cur.empty() && cur.size() + 1 + word.size() > width) {
      lines.push_back(cur);
      cur.clear();
    }
    cur += (cur.empty() ? "" : " ") + word;
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += ' ';
        else o += c;
    }
  }
  return o;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> out;
  if (!(hi > lo) || !finite(lo) || !finite(hi) || target < 1) return out;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return out;
}

namespace {
double figure_width(const Figure& f) {
  const int cols = std::max(1, f.columns);
  return static_cast<double>(std::min<std::size_t>(static_cast<std::size_t>(cols),
                                                   std::max<std::size_t>(f.panels.size(), 1))) *
         f.panel_width;
}
std::vector<std::string> title_lines(const Figure& f) {
  return wrap(f.title, static_cast<std::size_t>(std::max(20.0, figure_width(f) / 8.6)));
}
double title_height(const Figure& f) {
  const auto n = title_lines(f).size();
  return n <= 1 ? kTitleHeight : kTitleHeight + 18.0 * static_cast<double>(n - 1);
}
}  // namespace

std::vector<PanelLayout> layout(const Figure& f) {
  std::vector<PanelLayout> out;
  const int cols = std::max(1, f.columns);
  const double title_h = title_height(f);
  for (std::size_t k = 0; k < f.panels.size(); ++k) {
    const Panel& p = f.panels[k];
    const double cx = static_cast<double>(static_cast<int>(k) % cols) * f.panel_width;
    const double cy = title_h + static_cast<double>(static_cast<int>(k) / cols) * f.panel_height;
    PanelLayout l;
    l.left = cx + kMarginLeft;
    l.top = cy + kMarginTop;
    l.width = f.panel_width - kMarginLeft - kMarginRight;
    l.height = f.panel_height - kMarginTop - kMarginBottom;
    const auto [x0, x1] = axis_range(p, 0);
    const auto [y0, y1] = axis_range(p, 1);
    l.x = Scale{x0, x1, l.left, l.left + l.width};
    l.y = Scale{y0, y1, l.top + l.height, l.top};
    if (p.x_ticks.empty()) {
      for (double t : nice_ticks(x0, x1))
        if (!p.integer_x || t == std::round(t)) l.x_tick_values.push_back(t);
      if (p.integer_x && l.x_tick_values.empty())
        for (double t = std::ceil(x0); t <= x1; t += 1) l.x_tick_values.push_back(t);
    }
    else
      for (std::size_t i = 0; i < p.x_ticks.size(); ++i) l.x_tick_values.push_back(static_cast<double>(i));
    l.y_tick_values = nice_ticks(y0, y1);
    out.push_back(std::move(l));
  }
  return out;
}

std::string to_svg(const Figure& f) {
  std::map<std::string, std::size_t> colour;  // series name -> palette index, by first appearance
  std::vector<std::string> names;
  for (const Panel& p : f.panels)
    for (const Series& s : p.series) {
      check(s);
      if (colour.emplace(s.name, colour.size()).second) names.push_back(s.name);
    }
  const std::vector<PanelLayout> lay = layout(f);
  const int cols = std::max(1, f.columns);
  const auto rows = (f.panels.size() + static_cast<std::size_t>(cols) - 1) / static_cast<std::size_t>(cols);
  const double width = figure_width(f);
  // Legend: entries flow left to right in rows under the panels.
  const double legend_top = title_height(f) + static_cast<double>(rows) * f.panel_height + 8;
  std::vector<std::pair<double, double>> legend_pos;
  double lx = 16, ly = legend_top + 14;
  if (f.panel_legends) names.clear();
  for (const auto& n : names) {
    const double w = 34 + 7.0 * static_cast<double>(n.size());
    if (lx + w > width - 8 && lx > 16) {
      lx = 16;
      ly += kLegendRow;
    }
    legend_pos.push_back({lx, ly});
    lx += w;
  }
  const double height = names.empty() ? legend_top : ly + kLegendRow;

  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
    << "\" viewBox=\"0 0 " << num(width) << " " << num(height)
    << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << num(width) << "\" height=\"" << num(height) << "\" fill=\"#ffffff\"/>\n";
  {
    double ty = 22;
    for (const auto& line : title_lines(f)) {
      o << "<text x=\"" << num(width / 2) << "\" y=\"" << num(ty)
        << "\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" << xml_escape(line) << "</text>\n";
      ty += 18;
    }
  }

  for (std::size_t k = 0; k < f.panels.size(); ++k) {
    const Panel& p = f.panels[k];
    const PanelLayout& l = lay[k];
    const double bottom = l.top + l.height, right = l.left + l.width;
    o << "<g class=\"panel\" data-title=\"" << xml_escape(p.title) << "\">\n";
    o << "<text x=\"" << num(l.left + l.width / 2) << "\" y=\"" << num(l.top - 10)
      << "\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">" << xml_escape(p.title) << "</text>\n";
    o << "<rect class=\"plot-area\" x=\"" << num(l.left) << "\" y=\"" << num(l.top) << "\" width=\"" << num(l.width)
      << "\" height=\"" << num(l.height) << "\" fill=\"#fafafa\" stroke=\"#888888\"/>\n";
    // Grid and ticks.
    for (double t : l.y_tick_values) {
      const double y = l.y(t);
      o << "<line x1=\"" << num(l.left) << "\" y1=\"" << num(y) << "\" x2=\"" << num(right) << "\" y2=\"" << num(y)
        << "\" stroke=\"#e3e3e3\"/>\n";
      o << "<text x=\"" << num(l.left - 5) << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\">"
        << tick_label(t) << "</text>\n";
    }
    for (std::size_t i = 0; i < l.x_tick_values.size(); ++i) {
      const double t = l.x_tick_values[i];
      const double x = l.x(t);
      o << "<line x1=\"" << num(x) << "\" y1=\"" << num(bottom) << "\" x2=\"" << num(x) << "\" y2=\""
        << num(bottom + 4) << "\" stroke=\"#888888\"/>\n";
      const std::string label = p.x_ticks.empty() ? tick_label(t) : p.x_ticks[i];
      if (p.x_ticks.empty())
        o << "<text x=\"" << num(x) << "\" y=\"" << num(bottom + 16) << "\" text-anchor=\"middle\">"
          << xml_escape(label) << "</text>\n";
      else  // category names slanted so long ones fit
        o << "<text x=\"" << num(x) << "\" y=\"" << num(bottom + 14) << "\" text-anchor=\"end\" transform=\"rotate(-30 "
          << num(x) << " " << num(bottom + 14) << ")\">" << xml_escape(label) << "</text>\n";
    }
    if (!p.x_label.empty())
      o << "<text x=\"" << num(l.left + l.width / 2) << "\" y=\"" << num(bottom + 40)
        << "\" text-anchor=\"middle\" fill=\"#333333\">" << xml_escape(p.x_label) << "</text>\n";
    if (!p.y_label.empty())
      o << "<text x=\"" << num(l.left - 48) << "\" y=\"" << num(l.top + l.height / 2)
        << "\" text-anchor=\"middle\" fill=\"#333333\" transform=\"rotate(-90 " << num(l.left - 48) << " "
        << num(l.top + l.height / 2) << ")\">" << xml_escape(p.y_label) << "</text>\n";
    if (p.diagonal) {  // y = x over the part of the plot where both axes overlap
      const double a = std::max(l.x.lo, l.y.lo), b = std::min(l.x.hi, l.y.hi);
      if (b > a)
        o << "<line class=\"diagonal\" x1=\"" << num(l.x(a)) << "\" y1=\"" << num(l.y(a)) << "\" x2=\"" << num(l.x(b))
          << "\" y2=\"" << num(l.y(b)) << "\" stroke=\"#999999\" stroke-dasharray=\"4 3\"/>\n";
    }
    // Series, clipped to the plot area.
    o << "<clipPath id=\"clip" << k << "\"><rect x=\"" << num(l.left) << "\" y=\"" << num(l.top) << "\" width=\""
      << num(l.width) << "\" height=\"" << num(l.height) << "\"/></clipPath>\n";
    for (std::size_t si = 0; si < p.series.size(); ++si) {
      const Series& s = p.series[si];
      const std::string c = f.panel_legends ? kPalette[si % kNumColours] : colour_of(colour, s.name);
      o << "<g class=\"series\" data-name=\"" << xml_escape(s.name) << "\" clip-path=\"url(#clip" << k << ")\">\n";
      if (s.line) {
        std::string pts;
        auto flush = [&] {
          if (!pts.empty())
            o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.8\" points=\"" << pts << "\"/>\n";
          pts.clear();
        };
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (!finite(s.x[i]) || !finite(s.y[i])) {
            flush();
            continue;
          }
          if (!pts.empty()) pts += ' ';  // appended piece by piece: GCC 12 warns falsely on "lit" + string
          pts += num(l.x(s.x[i]));
          pts += ',';
          pts += num(l.y(s.y[i]));
        }
        flush();
      }
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!finite(s.x[i]) || !finite(s.y[i])) continue;
        const double x = l.x(s.x[i]), y = l.y(s.y[i]);
        if (!s.err.empty() && finite(s.err[i]) && s.err[i] != 0) {
          const double e = std::abs(s.err[i]), y0 = l.y(s.y[i] - e), y1 = l.y(s.y[i] + e);
          o << "<path class=\"errorbar\" d=\"M" << num(x) << " " << num(y0) << "V" << num(y1) << "M" << num(x - 5)
            << " " << num(y0) << "H" << num(x + 5) << "M" << num(x - 5) << " " << num(y1) << "H" << num(x + 5)
            << "\" stroke=\"" << c << "\" stroke-width=\"1.4\" fill=\"none\"/>\n";
        }
        if (s.points) {
          char raw[80];
          std::snprintf(raw, sizeof raw, "data-x=\"%.9g\" data-y=\"%.9g\"", s.x[i], s.y[i]);
          o << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"3.2\" fill=\"" << c << "\" " << raw
            << "><title>" << xml_escape(s.name) << ": " << tick_label(s.y[i])
            << (s.err.empty() ? std::string() : " ± " + tick_label(s.err[i])) << "</title></circle>\n";
        }
      }
      o << "</g>\n";
    }
    if (f.panel_legends && !p.series.empty()) {  // top right corner of the plot area
      std::size_t longest = 0;
      for (const Series& s : p.series) longest = std::max(longest, s.name.size());
      const double w = 34 + 6.2 * static_cast<double>(longest), h = 6 + 15.0 * static_cast<double>(p.series.size());
      const double x0 = right - w - 6, y0 = l.top + 6;
      o << "<g class=\"panel-legend\">\n<rect x=\"" << num(x0) << "\" y=\"" << num(y0) << "\" width=\"" << num(w)
        << "\" height=\"" << num(h) << "\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n";
      for (std::size_t si = 0; si < p.series.size(); ++si) {
        const double y = y0 + 15.0 * static_cast<double>(si + 1);
        o << "<line x1=\"" << num(x0 + 6) << "\" y1=\"" << num(y - 4) << "\" x2=\"" << num(x0 + 24) << "\" y2=\""
          << num(y - 4) << "\" stroke=\"" << kPalette[si % kNumColours] << "\" stroke-width=\"2.5\"/>\n"
          << "<text x=\"" << num(x0 + 29) << "\" y=\"" << num(y) << "\" font-size=\"10\">" << xml_escape(p.series[si].name)
          << "</text>\n";
      }
      o << "</g>\n";
    }
    o << "</g>\n";
  }
  if (!names.empty()) {
    o << "<g class=\"legend\">\n";
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto [x, y] = legend_pos[i];
      o << "<line x1=\"" << num(x) << "\" y1=\"" << num(y - 4) << "\" x2=\"" << num(x + 18) << "\" y2=\"" << num(y - 4)
        << "\" stroke=\"" << colour_of(colour, names[i]) << "\" stroke-width=\"2.5\"/>\n"
        << "<circle cx=\"" << num(x + 9) << "\" cy=\"" << num(y - 4) << "\" r=\"3.2\" fill=\""
        << colour_of(colour, names[i]) << "\"/>\n"
        << "<text x=\"" << num(x + 24) << "\" y=\"" << num(y) << "\">" << xml_escape(names[i]) << "</text>\n";
    }
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace funnel::plot
