// columns:NAME — a table of typed columns in memory, read like a csv: file with the same header and cells.
#include "data/columns.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <mutex>

#include "core/files.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

using detail::RowError;
using ColKind = detail::ColRole;
using CType = ColumnArray::Type;

// The cell's text as a CSV file would hold it (into `buf` for numbers); false for a missing value.
bool cell_text(const ColumnArray& c, std::int64_t r, char (&buf)[40], std::string_view& out) {
  const auto i = static_cast<std::size_t>(r);
  switch (c.type) {
    case CType::Text:
      out = c.text[i];
      return out.data() != nullptr;
    case CType::Int64: {
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<const std::int64_t*>(c.values)[i]);
      out = std::string_view(buf, static_cast<std::size_t>(p - buf));
      return true;
    }
    case CType::Bool:
      out = static_cast<const std::uint8_t*>(c.values)[i] ? "1" : "0";
      return true;
    case CType::Float64:
    case CType::Float32: {
      const double v = c.type == CType::Float64 ? static_cast<const double*>(c.values)[i]
                                               : static_cast<double>(static_cast<const float*>(c.values)[i]);
      if (std::isnan(v)) return false;
      std::to_chars_result res;
      if (std::abs(v) < 9007199254740992.0 && v == std::trunc(v))
        res = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));  // 3.0 (an int column with gaps) is "3"
      else if (c.type == CType::Float32)
        res = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
      else
        res = std::to_chars(buf, buf + sizeof buf, v);
      out = std::string_view(buf, static_cast<std::size_t>(res.ptr - buf));
      return true;
    }
  }
  return false;
}

// A label: 0 or 1 (-1 for anything else, with its text in `got`).
int label_of(const ColumnArray& c, std::int64_t r, char (&buf)[40], std::string& got) {
  std::string_view t;
  const auto i = static_cast<std::size_t>(r);
  if (c.type == CType::Float64 || c.type == CType::Float32) {
    const double v = c.type == CType::Float64 ? static_cast<const double*>(c.values)[i]
                                             : static_cast<double>(static_cast<const float*>(c.values)[i]);
    if (v == 0.0) return 0;
    if (v == 1.0) return 1;
    got = std::isnan(v) ? "" : std::to_string(v);
    return -1;
  }
  if (!cell_text(c, r, buf, t)) return -1;
  const int v = detail::parse_label(t);
  if (v < 0) got = std::string(t);
  return v;
}

// A dense value: a finite float.
bool dense_of(const ColumnArray& c, std::int64_t r, char (&buf)[40], float& out, std::string& got) {
  const auto i = static_cast<std::size_t>(r);
  switch (c.type) {
    case CType::Float64: {
      const double v = static_cast<const double*>(c.values)[i];
      out = static_cast<float>(v);
      if (std::isfinite(out)) return true;
      got = std::isnan(v) ? "" : std::to_string(v);
      return false;
    }
    case CType::Float32:
      out = static_cast<const float*>(c.values)[i];
      if (std::isfinite(out)) return true;
      got = std::isnan(out) ? "" : std::to_string(out);
      return false;
    case CType::Int64:
      out = static_cast<float>(static_cast<const std::int64_t*>(c.values)[i]);
      return true;
    case CType::Bool:
      out = static_cast<const std::uint8_t*>(c.values)[i] ? 1.0f : 0.0f;
      return true;
    case CType::Text: {
      std::string_view t;
      if (cell_text(c, r, buf, t) && detail::parse_float(t, out)) return true;
      got = std::string(t.data() ? t : std::string_view());
      return false;
    }
  }
  return false;
}

std::mutex g_tables_mutex;
std::map<std::string, std::shared_ptr<const ColumnTable>>& tables() {
  static std::map<std::string, std::shared_ptr<const ColumnTable>> t;
  return t;
}
std::int64_t g_next_table = 0;

}  // namespace

ColumnsRegistration::ColumnsRegistration(std::shared_ptr<const ColumnTable> t) {
  std::lock_guard<std::mutex> lock(g_tables_mutex);
  spec_ = "columns:" + t->name + "#" + std::to_string(++g_next_table);
  tables()[spec_] = std::move(t);
}

ColumnsRegistration::~ColumnsRegistration() {
  std::lock_guard<std::mutex> lock(g_tables_mutex);
  tables().erase(spec_);
}

std::shared_ptr<const ColumnTable> registered_columns(const std::string& spec) {
  std::lock_guard<std::mutex> lock(g_tables_mutex);
  auto it = tables().find(spec);
  if (it == tables().end())
    throw Error("dataset spec '" + spec + "': no such table in memory (columns: specs name tables handed over by a "
                "program, e.g. a DataFrame passed to the Python module)");
  return it->second;
}

Dataset read_columns(const ColumnTable& t, const ReadOptions& options, FeatureMap& map, ReadReport* report) {
  const std::string& name = t.name;
  return detail::guarded_read(map, report, 0, [&](ReadReport& rep) -> Dataset {
    const std::size_t ncols = t.columns.size();
    for (const auto& c : t.columns)
      if (c.type == CType::Text ? static_cast<std::int64_t>(c.text.size()) != t.rows : c.values == nullptr && t.rows > 0)
        throw Error(name + ": column '" + c.name + "': expected " + std::to_string(t.rows) + " values");
    std::vector<std::string> header;
    for (const auto& c : t.columns) header.push_back(c.name);
    detail::ColumnRoles roles = detail::column_roles(header, name);
    std::vector<ColKind>& kind = roles.role;
    std::vector<std::int32_t>& slot = roles.slot;
    const std::vector<std::string>& cat_names = roles.cat_names;
    const std::vector<std::string>& dense_names = roles.dense_names;
    const std::int64_t click_col = roles.click_col, conv_col = roles.conv_col;
    std::string cols_text;
    for (const auto& h : header) cols_text += (cols_text.empty() ? "" : ",") + h;
    if (click_col < 0) throw Error(name + ": field 'click': expected a 'click' column, got columns '" + cols_text + "'");
    if (conv_col < 0)
      throw Error(name + ": field 'purchase': expected a 'purchase' or 'conversion' column, got columns '" + cols_text +
                  "'");
    if (map.building()) throw Error(name + ": the feature map passed in is half-built; pass an empty or a ready map");
    if (map.empty()) {
      if (cat_names.empty())
        throw Error(name + ": field 'columns': expected at least one categorical column, got '" + cols_text + "'");
      map.start(options.mapping, cat_names, dense_names);
    } else {
      const detail::KnownColumns known = detail::bind_columns_to_map(header, kind, slot, map, rep);
      const std::size_t known_cat = known.categorical, known_dense = known.dense;
      if (known_cat != map.fields().size() || known_dense != map.dense_names().size()) {
        const std::string missing = detail::missing_map_columns(header, map);
        throw Error(name + ": field 'columns': expected the feature map's columns, missing:" + missing);
      }
    }
    rep.header = header;

    Dataset d;
    detail::init_dataset(d, map);
    detail::RowAppender app(d, map, options.sink);
    detail::BadRows bad(options.on_bad_row, rep);
    RowError err;
    std::vector<std::int32_t> fld;
    std::vector<std::int64_t> ids;
    std::vector<float> w, dense(static_cast<std::size_t>(d.num_dense));
    std::string got;
    char buf[40];
    for (std::int64_t r = 0; r < t.rows; ++r) {
      ++rep.rows_read;
      bool ok = true;
      int click = -1, conv = -1;
      for (std::size_t c = 0; ok && c < ncols; ++c) {
        const ColumnArray& col = t.columns[c];
        if (kind[c] == ColKind::Click || kind[c] == ColKind::Conversion) {
          const int v = label_of(col, r, buf, got);
          if (v < 0) {
            err.set(reason::bad_label, header[c], "0 or 1", {});
            err.got_owned = got.empty() ? "(missing)" : got;
            ok = false;
          }
          (kind[c] == ColKind::Click ? click : conv) = v;
        } else if (kind[c] == ColKind::Dense) {
          if (!dense_of(col, r, buf, dense[static_cast<std::size_t>(slot[c])], got)) {
            err.set(reason::bad_number, header[c], "a finite number", {});
            err.got_owned = got.empty() ? "(missing)" : got;
            ok = false;
          }
        }
      }
      if (ok && click == 0 && conv == 1) {
        err.set(reason::conversion_without_click, header[static_cast<std::size_t>(conv_col)],
                "0 when click is 0 (a conversion needs a click)", "1");
        ok = false;
      }
      if (!ok) {
        bad.handle(name, r + 1, err, false);
        continue;
      }
      fld.clear();
      ids.clear();
      w.clear();
      for (std::size_t c = 0; c < ncols; ++c) {
        if (kind[c] != ColKind::Categorical) continue;
        std::string_view text;
        if (!cell_text(t.columns[c], r, buf, text) || text.empty()) continue;
        fld.push_back(slot[c]);
        ids.push_back(map.map(slot[c], text));
        w.push_back(1.0f);
      }
      app.append(fld.data(), ids.data(), w.data(), fld.size(), click, conv, dense.data());
      ++rep.rows_kept;
      if (options.max_rows && rep.rows_kept >= options.max_rows) {
        rep.stopped_at_max_rows = r + 1 < t.rows;
        break;
      }
    }
    app.finish();
    detail::finish_dataset(d, map, rep, name);
    return d;
  });
}

}  // namespace funnel
