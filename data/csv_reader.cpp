// csv:FILE — CSV (RFC 4180) with a header line: click, purchase|conversion, categorical columns, dense D* columns.
#include "core/files.hpp"
#include "core/hash.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

using detail::RowError;
namespace reason = funnel::reason;

// Splits CSV records into cells. A record without a quote is split in place (views into the text); one with
// quotes is parsed by RFC 4180 into `buf_` (quoted cells may hold commas, "" for a quote, and line ends, so such
// a record can run over several lines of the cursor). At most `limit` cells are kept: a row with more is a
// column-count error anyway, and this bounds the work on a line of a million commas.
class RecordSplitter {
 public:
  // Splits the record that starts with `line` (just returned by `cur`); advances `cur` past the record's extra
  // lines. Returns false with `err` set for bad quoting. `found` is the number of cells (may exceed out.size()).
  bool split(std::string_view line, detail::LineCursor& cur, std::size_t limit, std::vector<std::string_view>& out,
             std::size_t& found, RowError& err) {
    out.clear();
    found = 0;
    if (std::memchr(line.data(), '"', line.size()) == nullptr) {
      std::size_t start = 0;
      for (;;) {
        const auto c = line.find(',', start);
        ++found;
        if (out.size() < limit) out.push_back(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
        if (c == std::string_view::npos) return true;
        start = c + 1;
      }
    }
    return split_quoted(line, cur, limit, out, found, err);
  }

 private:
  bool split_quoted(std::string_view line, detail::LineCursor& cur, std::size_t limit,
                    std::vector<std::string_view>& out, std::size_t& found, RowError& err) {
    buf_.clear();
    cells_.clear();
    const char* const text_end = cur.text.data() + cur.text.size();
    const char* p = line.data();
    const char eol = cur.eol;
    std::int64_t extra_lines = 0;
    bool record_end = false;
    while (!record_end) {
      const std::size_t cell_start = buf_.size();
      if (p < text_end && *p == '"') {
        ++p;
        for (;;) {
          if (p == text_end) {
            err.set(reason::bad_quotes, "cell #" + std::to_string(cells_.size() + 1),
                    "a closing quote (the quoted cell runs to the end of the file: is it cut off?)",
                    line.substr(0, std::min<std::size_t>(line.size(), 80)));
            return false;
          }
          if (static_cast<std::size_t>(p - line.data()) > cur.max_line) cur.too_long(cur.line_no);
          if (*p == '"') {
            if (p + 1 < text_end && p[1] == '"') {
              buf_ += '"';
              p += 2;
              continue;
            }
            ++p;
            break;
          }
          if (*p == eol) ++extra_lines;
          buf_ += *p++;
        }
        // After the closing quote: a comma, the line end (optionally after \r) or the end of the text.
        if (p < text_end && *p == '\r' && eol == '\n' && p + 1 < text_end && p[1] == '\n') ++p;
        if (p == text_end || *p == eol) {
          record_end = true;
        } else if (*p != ',') {
          err.set(reason::bad_quotes, "cell #" + std::to_string(cells_.size() + 1),
                  "a comma or the line end after the closing quote", std::string_view(p, std::min<std::size_t>(text_end - p, 20)));
          skip_rest(p, text_end, eol, extra_lines, cur);
          return false;
        }
      } else {
        const char* s = p;
        while (p < text_end && *p != ',' && *p != eol) {
          if (*p == '"') {
            err.set(reason::bad_quotes, "cell #" + std::to_string(cells_.size() + 1),
                    "quotes only around a whole cell (write \"a \"\"b\"\" c\" for a cell with quotes)",
                    std::string_view(s, std::min<std::size_t>(text_end - s, 40)));
            skip_rest(p, text_end, eol, extra_lines, cur);
            return false;
          }
          ++p;
        }
        std::size_t n = static_cast<std::size_t>(p - s);
        if (p < text_end && *p == eol && eol == '\n' && n && s[n - 1] == '\r') --n;
        buf_.append(s, n);
        if (p == text_end || *p == eol) record_end = true;
      }
      cells_.emplace_back(cell_start, buf_.size() - cell_start);
      if (!record_end) ++p;  // the comma
    }
    finish_record(p, text_end, extra_lines, cur);
    found = cells_.size();
    for (std::size_t i = 0; i < cells_.size() && i < limit; ++i)
      out.emplace_back(buf_.data() + cells_[i].first, cells_[i].second);
    return true;
  }
  // Moves the cursor to just after the record that ends at `p` (a line end or the end of the text).
  static void finish_record(const char* p, const char* text_end, std::int64_t extra_lines, detail::LineCursor& cur) {
    cur.line_no += extra_lines;
    if (p == text_end) {
      cur.pos = cur.text.size();
      cur.unterminated = true;
    } else {
      cur.pos = static_cast<std::size_t>(p + 1 - cur.text.data());
      cur.unterminated = false;
    }
  }
  // After a quoting error: continue with the next line end (inside the current line only).
  static void skip_rest(const char* p, const char* text_end, char eol, std::int64_t extra_lines,
                        detail::LineCursor& cur) {
    while (p < text_end && *p != eol) ++p;
    finish_record(p, text_end, extra_lines, cur);
  }

  std::string buf_;
  std::vector<std::pair<std::size_t, std::size_t>> cells_;
};

using Col = detail::ColRole;

bool numeric_cell(std::string_view s) {
  if (s.empty()) return true;
  double v;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Dataset read_csv_buffer(std::string_view text, const std::string& name, const ReadOptions& options,
                        FeatureMap& map, ReadReport* report) {
  return detail::guarded_read(map, report, text.size(), [&](ReadReport& rep) -> Dataset {
    detail::LineCursor cur(text, name);
    RecordSplitter splitter;
    RowError err;
    std::string_view line;
    std::vector<std::string_view> cols;
    std::size_t found = 0;
    const bool given = !options.csv_columns.empty();
    std::vector<std::string> header;
    if (given) {
      header = options.csv_columns;
    } else {
      if (!cur.next(line) || line.empty())
        throw Error(name + (cur.line_no == 0 ? ": empty file" : ":1: empty header line") +
                    ", expected a header line (click,purchase,<fields>...)");
      if (!splitter.split(line, cur, 1 << 20, cols, found, err))
        throw Error(name + ":1: header: " + err.field + ": expected " + err.expected + ", got '" + printable(err.got) + "'");
      header.assign(cols.begin(), cols.end());
    }
    const std::size_t ncols = header.size();
    bool has_click = false;
    for (const auto& h : header) has_click = has_click || h == "click";
    if (!has_click && !given) {
      std::size_t numeric = 0;
      for (const auto& h : header) numeric += numeric_cell(h);
      if (numeric * 2 >= ncols)
        throw Error(name + ":1: the first line looks like a data row, not a header (no 'click' column; its cells are "
                    "numbers: '" + printable(line, 60) + "'): a csv: file needs a header line naming its columns "
                    "(click, purchase, then the fields)");
    }
    detail::ColumnRoles roles = detail::column_roles(header, name + ":1");
    std::vector<Col>& kind = roles.role;
    std::vector<std::int32_t>& slot = roles.slot;  // field index or dense index
    const std::vector<std::string>& cat_names = roles.cat_names;
    const std::vector<std::string>& dense_names = roles.dense_names;
    const std::int64_t click_col = roles.click_col, conv_col = roles.conv_col;
    if (click_col < 0)
      throw Error(name + ":1: field 'click': expected a 'click' column in the header, got '" + printable(line) + "'");
    if (conv_col < 0)
      throw Error(name + ":1: field 'purchase': expected a 'purchase' or 'conversion' column in the header, got '" +
                  printable(line) + "'");
    if (map.building()) throw Error(name + ": the feature map passed in is half-built; pass an empty or a ready map");
    if (map.empty()) {
      if (cat_names.empty())
        throw Error(name + ":1: field 'header': expected at least one categorical column, got '" + printable(line) +
                    "'");
      map.start(options.mapping, cat_names, dense_names);
    } else {
      // Ready map: its fields and dense columns must all be there (any order); other columns are not read and
      // are reported; a file none of whose feature columns the map knows is an error.
      const detail::KnownColumns known = detail::bind_columns_to_map(header, kind, slot, map, rep);
      const std::size_t known_cat = known.categorical, known_dense = known.dense;
      if (known_cat == 0 && known_dense == 0) {
        std::string fields;
        for (const auto& f : map.fields()) fields += (fields.empty() ? "" : ", ") + printable(f);
        throw Error(name + ":1: field 'header': expected the feature map's columns (" + fields +
                    "), got none of them: this file's columns are all unknown to the map");
      }
      if (known_cat != map.fields().size() || known_dense != map.dense_names().size()) {
        const std::string missing = detail::missing_map_columns(header, map);
        throw Error(name + ":1: field 'header': expected the feature map's columns, missing:" + missing);
      }
    }
    rep.header = header;
    std::int64_t user_col = -1;
    if (!options.user_column.empty()) {
      const auto it = std::find(header.begin(), header.end(), options.user_column);
      if (it == header.end())
        throw Error(name + ":1: field '" + printable(options.user_column) +
                    "': expected the user column (--user-column) in the header, got '" + printable(line) + "'");
      user_col = it - header.begin();
      if (user_col == click_col || user_col == conv_col)
        throw Error(name + ":1: field '" + options.user_column + "': expected a user column, got a label column");
    }

    Dataset d;
    detail::init_dataset(d, map);
    detail::RowAppender app(d, map, options.sink);
    app.input(text);
    detail::BadRows bad(options.on_bad_row, rep);
    std::vector<std::int32_t> fld;
    std::vector<std::int64_t> ids;
    std::vector<float> w, dense(static_cast<std::size_t>(d.num_dense));
    bool first = true;
    while (cur.next(line)) {
      const std::int64_t line_no = cur.line_no;
      bool ok = splitter.split(line, cur, ncols + 1, cols, found, err);
      if (given && first) {
        first = false;
        bool is_header = ok && found == ncols;
        for (std::size_t c = 0; is_header && c < ncols; ++c) is_header = cols[c] == header[c];
        if (is_header) continue;
      }
      ++rep.rows_read;
      if (cur.unterminated) rep.unterminated_last_line = true;  // valid (RFC 4180); the row checks still apply
      int click = -1, conv = -1;
      if (ok && found != ncols) {
        err.set(reason::column_count, "row",
                std::to_string(ncols) + " comma-separated columns (found " + std::to_string(found) + ")", line);
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
        bad.handle(name, line_no, err, cur.unterminated);
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
      if (user_col >= 0) {
        const std::string_view u = cols[static_cast<std::size_t>(user_col)];
        d.user_keys.push_back(u.empty() ? -1 : static_cast<std::int64_t>(fnv1a64(u) >> 1));
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
