#include "serving/request.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

namespace funnel {

namespace {

using json = nlohmann::json;

std::string type_name(const json& j) { return j.type_name(); }

[[noreturn]] void bad(std::int64_t row, const std::string& field, const std::string& what, int status = 400) {
  std::string msg;
  if (row >= 0) msg = "row " + std::to_string(row) + ": ";
  if (!field.empty()) msg += "field '" + field + "': ";
  throw RequestError(status, row, field, msg + what);
}

std::string_view keep(PredictRequest& r, std::string s) {
  r.strings.push_back(std::move(s));
  return r.strings.back();
}

void check_size(std::int64_t n, const RequestLimits& lim, const std::string& key) {
  if (n > lim.max_rows)
    bad(-1, key, std::to_string(n) + " rows, more than the limit of " + std::to_string(lim.max_rows) +
                     " per request (split the request)",
        413);
}

void parse_lines(PredictRequest& r, const json& arr, const std::string& key, std::vector<std::string_view>& out,
                 const RequestLimits& lim) {
  if (!arr.is_array()) bad(-1, key, "expected an array of strings (one line per row), got " + type_name(arr));
  check_size(static_cast<std::int64_t>(arr.size()), lim, key);
  out.reserve(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    if (!arr[i].is_string()) bad(row, key, "expected a string (a line), got " + type_name(arr[i]));
    const auto& s = arr[i].get_ref<const std::string&>();
    if (s.size() > lim.max_line_bytes)
      bad(row, key, "line longer than " + std::to_string(lim.max_line_bytes) + " bytes", 413);
    out.push_back(keep(r, s));
  }
}

}  // namespace

std::string error_json(int status, const std::string& message, std::int64_t row, const std::string& field) {
  json e{{"status", status}, {"message", message}};
  if (row >= 0) e["row"] = row;
  if (!field.empty()) e["field"] = field;
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

PredictRequest parse_predict_request(std::string_view body, const RequestLimits& lim) {
  json j;
  try {
    j = json::parse(body.begin(), body.end(), nullptr, true, false);
  } catch (const json::exception& e) {
    bad(-1, "", std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) bad(-1, "", "expected a JSON object with \"rows\", \"csv\", \"slots\" or \"aliccp\", got " + type_name(j));
  PredictRequest r;
  int kinds = 0;
  for (const auto& [k, v] : j.items()) {
    (void)v;
    if (k == "rows" || k == "csv" || k == "slots" || k == "aliccp") {
      ++kinds;
    } else {
      bad(-1, k, "unknown request key (expected one of \"rows\", \"csv\", \"slots\", \"aliccp\")");
    }
  }
  if (kinds != 1) bad(-1, "", "expected exactly one of \"rows\", \"csv\", \"slots\" or \"aliccp\"");
  if (j.contains("csv")) {
    r.kind = PredictRequest::Kind::Csv;
    parse_lines(r, j["csv"], "csv", r.lines, lim);
    return r;
  }
  if (j.contains("slots")) {
    r.kind = PredictRequest::Kind::Slots;
    parse_lines(r, j["slots"], "slots", r.lines, lim);
    return r;
  }
  if (j.contains("aliccp")) {
    r.kind = PredictRequest::Kind::Aliccp;
    const json& a = j["aliccp"];
    if (!a.is_object()) bad(-1, "aliccp", "expected an object {\"skeleton\": [...], \"common\": [...]}, got " + type_name(a));
    for (const auto& [k, v] : a.items()) {
      (void)v;
      if (k != "skeleton" && k != "common") bad(-1, "aliccp." + k, "unknown key (expected \"skeleton\" and \"common\")");
    }
    if (!a.contains("skeleton")) bad(-1, "aliccp.skeleton", "missing (the sample skeleton lines)");
    parse_lines(r, a["skeleton"], "aliccp.skeleton", r.lines, lim);
    if (a.contains("common")) parse_lines(r, a["common"], "aliccp.common", r.common, lim);
    return r;
  }
  const json& rows = j["rows"];
  if (!rows.is_array()) bad(-1, "rows", "expected an array of row objects, got " + type_name(rows));
  check_size(static_cast<std::int64_t>(rows.size()), lim, "rows");
  // Two passes: first the values (features/dense grow), then the spans into them.
  std::vector<std::pair<std::size_t, std::size_t>> fspan, dspan;
  fspan.reserve(rows.size());
  dspan.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto row = static_cast<std::int64_t>(i);
    const json& o = rows[i];
    if (!o.is_object()) bad(row, "", "expected an object (field -> value), got " + type_name(o));
    const std::size_t f0 = r.features.size(), d0 = r.dense.size();
    std::int64_t values = 0;
    for (auto item = o.begin(); item != o.end(); ++item) {
      const std::string& name = item.key();
      const json& v = item.value();
      if (name.size() > lim.max_value_bytes)
        bad(row, name.substr(0, 64), "field name longer than " + std::to_string(lim.max_value_bytes) + " bytes");
      const std::string_view field = keep(r, name);
      auto add = [&](const std::string& value, double weight) {
        if (++values > lim.max_features)
          bad(row, name, "more than " + std::to_string(lim.max_features) + " values in the row", 413);
        if (value.size() > lim.max_value_bytes)
          bad(row, name, "value longer than " + std::to_string(lim.max_value_bytes) + " bytes");
        if (!std::isfinite(weight) || std::fabs(weight) > 3.0e38)
          bad(row, name, "expected a finite weight for value '" + value.substr(0, 64) + "'");
        r.features.push_back({field, keep(r, value), static_cast<float>(weight)});
      };
      if (v.is_string()) {
        add(v.get_ref<const std::string&>(), 1.0);
      } else if (v.is_number()) {
        const double x = v.get<double>();
        if (!std::isfinite(x) || std::fabs(x) > 3.0e38) bad(row, name, "expected a finite float32 number");
        if (++values > lim.max_features)
          bad(row, name, "more than " + std::to_string(lim.max_features) + " values in the row", 413);
        r.dense.push_back({field, static_cast<float>(x)});
      } else if (v.is_null()) {
        // no value: an empty cell
      } else if (v.is_array()) {
        for (const json& e : v) {
          if (!e.is_string())
            bad(row, name, "expected an array of strings (the field's values), got an element of type " + type_name(e));
          add(e.get_ref<const std::string&>(), 1.0);
        }
      } else if (v.is_object()) {
        for (const auto& [value, w] : v.items()) {
          if (!w.is_number())
            bad(row, name, "expected {value: weight} with numeric weights, got " + type_name(w) + " for '" +
                               value.substr(0, 64) + "'");
          add(value, w.get<double>());
        }
      } else {
        bad(row, name,
            "expected a string, an array of strings, an object {value: weight}, null or a number (dense), got " +
                type_name(v));
      }
    }
    fspan.emplace_back(f0, r.features.size() - f0);
    dspan.emplace_back(d0, r.dense.size() - d0);
  }
  r.rows.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    r.rows.push_back({std::span<const FeatureValue>(r.features.data() + fspan[i].first, fspan[i].second),
                      std::span<const DenseValue>(r.dense.data() + dspan[i].first, dspan[i].second)});
  return r;
}

}  // namespace funnel
