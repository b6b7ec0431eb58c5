#pragma once
// Reading back the SVG that viz/plot.* writes (for the plot tests and the CLI tests of --plot): a small XML
// well-formedness check, the panels, attribute values, markers with their data values, the plot area.
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace funnel::test {

// Tags nest and close, attributes are quoted, text holds no bare '<' and every '&' starts an entity; one root.
inline bool xml_well_formed(const std::string& s) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  int roots = 0;
  auto entity_ok = [&](std::size_t at) {
    const std::size_t semi = s.find(';', at);
    if (semi == std::string::npos || semi - at > 8) return false;
    const std::string e = s.substr(at + 1, semi - at - 1);
    return e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos" || (!e.empty() && e[0] == '#');
  };
  while (i < s.size()) {
    if (s[i] == '&' && !entity_ok(i)) return false;
    if (s[i] != '<') {
      ++i;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      const std::size_t e = s.find("?>", i);
      if (e == std::string::npos) return false;
      i = e + 2;
      continue;
    }
    // Find the end of the tag, skipping quoted attribute values.
    std::size_t j = i + 1;
    char q = 0;
    for (; j < s.size(); ++j) {
      if (q) {
        if (s[j] == q) q = 0;
        else if (s[j] == '<') return false;
        else if (s[j] == '&' && !entity_ok(j)) return false;
      } else if (s[j] == '"' || s[j] == '\'') {
        q = s[j];
      } else if (s[j] == '>') {
        break;
      }
    }
    if (j >= s.size()) return false;
    std::string tag = s.substr(i + 1, j - i - 1);
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return false;
      stack.pop_back();
    } else {
      const bool self = !tag.empty() && tag.back() == '/';
      const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
      if (name.empty()) return false;
      if (stack.empty()) ++roots;
      if (!self) stack.push_back(name);
    }
    i = j + 1;
  }
  return stack.empty() && roots == 1;
}

inline std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// The text of every <g class="panel" ...> ... up to the next panel or the legend.
inline std::vector<std::string> split_panels(const std::string& svg) {
  std::vector<std::string> out;
  const std::string key = "<g class=\"panel\"";
  for (auto p = svg.find(key); p != std::string::npos;) {
    auto next = svg.find(key, p + 1);
    auto end = next == std::string::npos ? svg.find("<g class=\"legend\"", p) : next;
    out.push_back(svg.substr(p, end == std::string::npos ? std::string::npos : end - p));
    p = next;
  }
  return out;
}

// The value of attribute `attr` of every element whose text starts with `<` + `element` (e.g. `circle`,
// `g class="series"`), in order.
inline std::vector<std::string> attr_values(const std::string& s, const std::string& element, const std::string& attr) {
  std::vector<std::string> out;
  const std::string open = "<" + element;
  for (auto p = s.find(open); p != std::string::npos; p = s.find(open, p + 1)) {
    const auto end = s.find('>', p);
    const std::string tag = s.substr(p, end - p);
    const auto a = tag.find(" " + attr + "=\"");
    if (a == std::string::npos) continue;
    const auto v0 = a + attr.size() + 3;
    out.push_back(tag.substr(v0, tag.find('"', v0) - v0));
  }
  return out;
}

struct Marker {
  double cx = 0, cy = 0, x = 0, y = 0;
};
// Series markers (circles that carry data-x / data-y), in order.
inline std::vector<Marker> markers(const std::string& s) {
  std::vector<Marker> out;
  for (auto p = s.find("<circle"); p != std::string::npos; p = s.find("<circle", p + 1)) {
    const std::string tag = s.substr(p, s.find('>', p) - p);
    auto get = [&](const std::string& a) {
      const auto k = tag.find(" " + a + "=\"");
      return k == std::string::npos ? NAN : std::strtod(tag.c_str() + k + a.size() + 3, nullptr);
    };
    if (tag.find("data-y") == std::string::npos) continue;
    out.push_back({get("cx"), get("cy"), get("data-x"), get("data-y")});
  }
  return out;
}

struct Rect {
  double x = 0, y = 0, width = 0, height = 0;
};
inline Rect plot_area(const std::string& panel) {
  const auto p = panel.find("<rect class=\"plot-area\"");
  if (p == std::string::npos) return {};
  const std::string tag = panel.substr(p, panel.find('>', p) - p);
  auto get = [&](const std::string& a) {
    const auto k = tag.find(" " + a + "=\"");
    return std::strtod(tag.c_str() + k + a.size() + 3, nullptr);
  };
  return {get("x"), get("y"), get("width"), get("height")};
}

// Vertical length of every error bar (path "Mx y0Vy1...").
inline std::vector<double> errorbar_spans(const std::string& s) {
  std::vector<double> out;
  for (auto d : attr_values(s, "path class=\"errorbar\"", "d")) {
    char* e = nullptr;
    std::strtod(d.c_str() + 1, &e);              // x
    const double y0 = std::strtod(e, &e);          // y0
    const double y1 = std::strtod(e + 1, nullptr);  // after 'V'
    out.push_back(std::abs(y1 - y0));
  }
  return out;
}

}  // namespace funnel::test
