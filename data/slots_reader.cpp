// slots:FILE — lines `sample_id,click,conversion,field:feature,field:feature,...` (fields may repeat).
#include <algorithm>
#include <set>
#include <unordered_map>

#include "core/files.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

using detail::RowError;

struct SlotsRow {
  int click = -1, conv = -1;
  std::vector<std::pair<std::string_view, std::string_view>> feats;  // field, feature
};

// Parses one line; false (and err) when the row is bad.
bool parse_slots_line(std::string_view line, SlotsRow& row, RowError& err) {
  row.feats.clear();
  std::string_view head[3];
  std::size_t pos = 0;
  for (int k = 0; k < 3; ++k) {
    const auto c = line.find(',', pos);
    if (c == std::string_view::npos && k < 2) {
      err.set(reason::column_count, "row", "at least 3 comma-separated columns (sample_id,click,conversion,...)",
              line);
      return false;
    }
    head[k] = line.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos);
    pos = c == std::string_view::npos ? line.size() + 1 : c + 1;
  }
  if (head[0].empty()) {
    err.set(reason::empty_value, "sample_id", "a non-empty sample id", head[0]);
    return false;
  }
  row.click = detail::parse_label(head[1]);
  if (row.click < 0) {
    err.set(reason::bad_label, "click", "0 or 1", head[1]);
    return false;
  }
  row.conv = detail::parse_label(head[2]);
  if (row.conv < 0) {
    err.set(reason::bad_label, "conversion", "0 or 1", head[2]);
    return false;
  }
  if (row.click == 0 && row.conv == 1) {
    err.set(reason::conversion_without_click, "conversion", "0 when click is 0 (a conversion needs a click)",
            head[2]);
    return false;
  }
  std::size_t k = 0;
  while (pos <= line.size()) {
    auto c = line.find(',', pos);
    if (c == std::string_view::npos) c = line.size();
    const std::string_view tok = line.substr(pos, c - pos);
    pos = c + 1;
    ++k;
    const auto colon = tok.find(':');
    if (colon == std::string_view::npos) {
      err.set(reason::missing_separator, "feature #" + std::to_string(k), "field:feature", tok);
      return false;
    }
    const auto f = tok.substr(0, colon), v = tok.substr(colon + 1);
    if (f.empty() || v.empty()) {
      err.set(reason::empty_value, "feature #" + std::to_string(k),
              f.empty() ? "a non-empty field name before ':'" : "a non-empty feature after ':'", tok);
      return false;
    }
    if (tok.find('"') != std::string_view::npos) {
      // The slots format has no quoting: a quote would become part of a field name ("210) or a feature.
      err.set(reason::bad_quotes, "feature #" + std::to_string(k),
              "field:feature without quotes (slots lines are not quoted; remove the quotes)", tok);
      return false;
    }
    row.feats.emplace_back(f, v);
  }
  return true;
}

}  // namespace

Dataset read_slots_buffer(std::string_view text, const std::string& name, const ReadOptions& options,
                          FeatureMap& map, ReadReport* report) {
  return detail::guarded_read(map, report, text.size(), [&](ReadReport& rep) -> Dataset {
    if (text.empty()) throw Error(name + ": empty file, expected lines sample_id,click,conversion,field:feature,...");
    if (map.building()) throw Error(name + ": the feature map passed in is half-built; pass an empty or a ready map");
    SlotsRow row;
    RowError err;
    std::string_view line;
    if (map.empty()) {
      // Pass 1: the field set = every field of a valid row (within max_rows), sorted.
      std::set<std::string, std::less<>> names;
      detail::LineCursor cur(text, name);
      std::int64_t kept = 0;
      detail::BadRows strict(options.on_bad_row, rep);
      while (cur.next(line)) {
        if (!parse_slots_line(line, row, err)) {
          // Error mode: report the first bad row now. Skip mode: counted in pass 2.
          if (options.on_bad_row == OnBadRow::Error) strict.handle(name, cur.line_no, err, cur.unterminated);
          continue;
        }
        for (const auto& fv : row.feats)
          if (names.find(fv.first) == names.end()) names.emplace(fv.first);
        if (options.max_rows && ++kept >= options.max_rows) break;
      }
      if (names.empty())
        throw Error(name + ": no valid row with a field:feature pair, so there are no fields (first line: '" +
                    printable(text.substr(0, text.find('\n')), 80) + "')");
      map.start(options.mapping, std::vector<std::string>(names.begin(), names.end()), {});
    }
    if (!map.dense_names().empty())
      throw Error(name + ": the feature map has dense columns, but slots files have none");
    std::unordered_map<std::string_view, std::int32_t> field_of;
    for (std::size_t f = 0; f < map.fields().size(); ++f)
      field_of.emplace(map.fields()[f], static_cast<std::int32_t>(f));

    Dataset d;
    detail::init_dataset(d, map);
    detail::RowAppender app(d, map, options.sink);
    app.input(text);
    detail::BadRows bad(options.on_bad_row, rep);
    std::vector<std::int32_t> fld;
    std::vector<std::int64_t> ids;
    std::vector<float> w;
    detail::LineCursor cur(text, name);
    std::int64_t known = 0, unknown = 0;
    while (cur.next(line)) {
      ++rep.rows_read;
      if (cur.unterminated) rep.unterminated_last_line = true;  // valid; the row checks still apply
      if (!parse_slots_line(line, row, err)) {
        bad.handle(name, cur.line_no, err, cur.unterminated);
        continue;
      }
      fld.clear();
      ids.clear();
      w.clear();
      for (const auto& [f, v] : row.feats) {
        const auto it = field_of.find(f);
        if (it == field_of.end()) {  // only with a ready map from other data
          rep.dropped_features["unknown_field:" + printable(f, 60)] += 1;
          ++unknown;
          continue;
        }
        ++known;
        fld.push_back(it->second);
        ids.push_back(map.map(it->second, v));
        w.push_back(1.0f);
      }
      app.append(fld.data(), ids.data(), w.data(), fld.size(), row.click, row.conv, nullptr);
      ++rep.rows_kept;
      app.plan(cur.pos, text.size(), options.max_rows);
      if (options.max_rows && rep.rows_kept >= options.max_rows) {
        rep.stopped_at_max_rows = cur.pos < text.size();
        break;
      }
    }
    if (known == 0 && unknown > 0) {
      std::string fields, seen;
      for (const auto& f : map.fields()) fields += (fields.empty() ? "" : ", ") + printable(f);
      for (const auto& [k, v] : rep.dropped_features) seen += (seen.empty() ? "" : ", ") + k.substr(14);
      throw Error(name + ": none of the file's fields is known to the feature map (the map has " + fields +
                  "; the file has " + seen + ")");
    }
    app.finish();
    detail::finish_dataset(d, map, rep, name);
    return d;
  });
}

}  // namespace funnel
