// csv:FILE — CSV with a header line: click, purchase|conversion, categorical columns, dense D* columns.
#include "data/reader_util.hpp"

namespace funnel {
namespace {

using detail::RowError;
namespace reason = funnel::reason;

// Splits `line` on ',' into `out` (views into line).
void split_commas(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  for (;;) {
    const auto c = line.find(',', start);
    if (c == std::string_view::npos) {
      out.push_back(line.substr(start));
      return;
    }
    out.push_back(line.substr(start, c - start));
    start = c + 1;
  }
}

enum class Col : std::uint8_t { Click, Conversion, Dense, Categorical };

}  // namespace

Dataset read_csv_buffer(std::string_view text, const std::string& name, const ReadOptions& options,
                        FeatureMap& map, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep.bytes += static_cast<std::int64_t>(text.size());
  return detail::guarded(map, [&]() -> Dataset {
    detail::LineCursor cur(text);
    std::string_view line;
    if (!cur.next(line) || line.empty())
      throw Error(name + (text.empty() ? ": empty file" : ":1: empty header line") +
                  ", expected a header line (click,purchase,<fields>...)");
    std::vector<std::string_view> cols;
    split_commas(line, cols);
    const std::size_t ncols = cols.size();
    const std::vector<std::string> header(cols.begin(), cols.end());
    std::vector<Col> kind(ncols);
    std::vector<std::int32_t> slot(ncols, -1);  // field index or dense index
    std::vector<std::string> cat_names, dense_names;
    std::int64_t click_col = -1, conv_col = -1;
    for (std::size_t c = 0; c < ncols; ++c) {
      const std::string col(cols[c]);
      if (col.empty())
        throw Error(name + ":1: field '#" + std::to_string(c + 1) + "': expected a column name, got ''");
      for (std::size_t k = 0; k < c; ++k)
        if (cols[k] == cols[c]) throw Error(name + ":1: field '" + col + "': expected unique column names, got it twice");
      if (col == "click") {
        kind[c] = Col::Click;
        click_col = static_cast<std::int64_t>(c);
      } else if (col == "purchase" || col == "conversion") {
        if (conv_col >= 0)
          throw Error(name + ":1: field '" + col + "': expected one conversion label column, got both 'purchase' and "
                      "'conversion'");
        kind[c] = Col::Conversion;
        conv_col = static_cast<std::int64_t>(c);
      } else if (col[0] == 'D') {
        kind[c] = Col::Dense;
        slot[c] = static_cast<std::int32_t>(dense_names.size());
        dense_names.push_back(col);
      } else {
        kind[c] = Col::Categorical;
        slot[c] = static_cast<std::int32_t>(cat_names.size());
        cat_names.push_back(col);
      }
    }
    if (click_col < 0)
      throw Error(name + ":1: field 'click': expected a 'click' column in the header, got '" + detail::show(line) + "'");
    if (conv_col < 0)
      throw Error(name + ":1: field 'purchase': expected a 'purchase' or 'conversion' column in the header, got '" +
                  detail::show(line) + "'");
    if (map.building()) throw Error(name + ": the feature map passed in is half-built; pass an empty or a ready map");
    if (map.empty()) {
      if (cat_names.empty())
        throw Error(name + ":1: field 'header': expected at least one categorical column, got '" + detail::show(line) +
                    "'");
      map.start(options.mapping, cat_names, dense_names);
    } else {
      // Ready map: the columns must be the map's fields and dense columns (any order).
      for (std::size_t c = 0; c < ncols; ++c) {
        if (kind[c] == Col::Categorical) {
          const auto f = map.field_index(cols[c]);
          if (f < 0)
            throw Error(name + ":1: field '" + std::string(cols[c]) +
                        "': expected a field of the feature map, got a column the map does not know");
          slot[c] = static_cast<std::int32_t>(f);
        } else if (kind[c] == Col::Dense) {
          const auto& dn = map.dense_names();
          const auto it = std::find(dn.begin(), dn.end(), cols[c]);
          if (it == dn.end())
            throw Error(name + ":1: field '" + std::string(cols[c]) +
                        "': expected a dense column of the feature map, got a column the map does not know");
          slot[c] = static_cast<std::int32_t>(it - dn.begin());
        }
      }
      if (cat_names.size() != map.fields().size() || dense_names.size() != map.dense_names().size()) {
        std::string missing;
        for (const auto& f : map.fields())
          if (std::find(cat_names.begin(), cat_names.end(), f) == cat_names.end()) missing += " " + f;
        for (const auto& f : map.dense_names())
          if (std::find(dense_names.begin(), dense_names.end(), f) == dense_names.end()) missing += " " + f;
        throw Error(name + ":1: field 'header': expected the feature map's columns, missing:" + missing);
      }
    }

    Dataset d;
    detail::init_dataset(d, map);
    detail::RowAppender app(d, map, options.sink);
    detail::BadRows bad(options.on_bad_row, rep);
    RowError err;
    std::vector<std::int32_t> fld;
    std::vector<std::int64_t> ids;
    std::vector<float> w, dense(static_cast<std::size_t>(d.num_dense));
    while (cur.next(line)) {
      ++rep.rows_read;
      if (cur.unterminated) rep.unterminated_last_line = true;
      split_commas(line, cols);
      int click = -1, conv = -1;
      bool ok = true;
      if (cols.size() != ncols) {
        err.set(reason::column_count, "row",
                std::to_string(ncols) + " comma-separated columns (found " + std::to_string(cols.size()) + ")", line);
        ok = false;
      }
      for (std::size_t c = 0; ok && c < ncols; ++c) {
        if (kind[c] == Col::Click || kind[c] == Col::Conversion) {
          const int v = detail::parse_label(cols[c]);
          if (v < 0) {
            err.set(reason::bad_label, header[c], "0 or 1", cols[c]);
            ok = false;
          }
          (kind[c] == Col::Click ? click : conv) = v;
        } else if (kind[c] == Col::Dense) {
          if (!detail::parse_float(cols[c], dense[static_cast<std::size_t>(slot[c])])) {
            err.set(reason::bad_number, header[c], "a finite number", cols[c]);
            ok = false;
          }
        }
      }
      if (ok && click == 0 && conv == 1) {
        err.set(reason::conversion_without_click, header[static_cast<std::size_t>(conv_col)],
                "0 when click is 0 (a conversion needs a click)", cols[static_cast<std::size_t>(conv_col)]);
        ok = false;
      }
      if (!ok) {
        bad.handle(name, cur.line_no, err, cur.unterminated);
        continue;
      }
      fld.clear();
      ids.clear();
      w.clear();
      for (std::size_t c = 0; c < ncols; ++c) {
        if (kind[c] != Col::Categorical || cols[c].empty()) continue;
        fld.push_back(slot[c]);
        ids.push_back(map.map(slot[c], cols[c]));
        w.push_back(1.0f);
      }
      app.append(fld.data(), ids.data(), w.data(), fld.size(), click, conv, dense.data());
      ++rep.rows_kept;
      app.plan(cur.pos, text.size(), options.max_rows);
      if (options.max_rows && rep.rows_kept >= options.max_rows) {
        rep.stopped_at_max_rows = cur.pos < text.size();
        break;
      }
    }
    app.finish();
    detail::finish_dataset(d, map, rep, name);
    return d;
  });
}

}  // namespace funnel
