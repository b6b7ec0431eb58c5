#pragma once
/// @file
/// Internal helpers shared by the readers (not part of the public API): memory-mapped files, a line cursor,
/// number parsing, bad-row bookkeeping and the row appender that builds a Dataset's CSR arrays.
#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "data/dataset.hpp"
#include "data/feature_map.hpp"
#include "data/readers.hpp"
#include "data/row_sink.hpp"

namespace funnel::detail {

/// Read-only view of a whole file: mmap for regular files, a plain read for anything else (pipes, /proc, ...).
/// Throws funnel::Error naming the path and the reason (missing, a directory, unreadable).
/// A mapped file that is truncated while it is read would raise SIGBUS on the pages past its new end; a handler
/// (installed with the first mapping) maps zero pages there instead and notes it, and check_unchanged() then
/// throws an Error naming the file. check_unchanged() also compares size and modification time with those at
/// open, so a file rewritten under the reader is an error too. Readers call it after parsing (also when parsing
/// failed: a changed file explains a parse error better than the error itself).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path, bool sequential = false);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view view() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  void check_unchanged() const;

 private:
  std::string path_;
  const char* data_ = "";
  std::size_t size_ = 0;
  void* map_ = nullptr;
  int fd_ = -1;
  int guard_ = -1;  ///< slot in the SIGBUS guard table
  std::int64_t mtime_ns_ = 0;
  std::string fallback_;
};

/// Longest line (or CSV record) a reader accepts; longer ones are an error found without scanning further.
inline constexpr std::size_t kMaxLineBytes = std::size_t{16} << 20;

/// Iterates over the lines of a buffer. A UTF-8 byte order mark at the start is skipped. Line ends: "\n", "\r\n",
/// or "\r" alone when the first line end of the buffer is a lone "\r" (old Mac files). Line numbers are 1-based.
/// A line longer than max_line throws funnel::Error naming the file and line, after looking at max_line bytes only.
struct LineCursor {
  std::string_view text;
  std::size_t pos = 0;
  std::int64_t line_no = 0;
  bool unterminated = false;  ///< the line just returned had no line end (last line of the buffer)
  char eol = '\n';
  std::size_t max_line = kMaxLineBytes;
  std::string name;  ///< for messages

  explicit LineCursor(std::string_view t, std::string file_name = "input") : text(t), name(std::move(file_name)) {
    if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
    const std::string_view head = text.substr(pos, std::min<std::size_t>(text.size() - pos, 1 << 20));
    const auto cr = head.find('\r');
    if (cr != std::string_view::npos && cr < head.find('\n') && (cr + 1 >= head.size() || head[cr + 1] != '\n'))
      eol = '\r';
  }
  bool next(std::string_view& line) {
    if (pos >= text.size()) return false;
    const char* b = text.data() + pos;
    const std::size_t left = text.size() - pos;
    const std::size_t window = std::min(left, max_line + 2);
    const void* nl = std::memchr(b, eol, window);
    std::size_t len;
    if (nl) {
      len = static_cast<std::size_t>(static_cast<const char*>(nl) - b);
      pos += len + 1;
      unterminated = false;
    } else {
      if (left > window) too_long(line_no + 1);
      len = left;
      pos = text.size();
      unterminated = true;
    }
    if (eol == '\n' && len && b[len - 1] == '\r') --len;
    if (len > max_line) too_long(line_no + 1);
    line = {b, len};
    ++line_no;
    return true;
  }
  [[noreturn]] void too_long(std::int64_t line) const {
    throw Error(name + ":" + std::to_string(line) + ": line longer than " + std::to_string(max_line >> 20) +
                " MiB (no line end within it): is this really a text file of the expected format?");
  }
};

/// A rejected row: reason key, the column (field) name, what was expected and the offending text.
struct RowError {
  const char* reason = nullptr;
  std::string field;
  std::string expected;
  std::string_view got;
  std::string got_owned;  ///< used instead of `got` when non-empty
  void set(const char* r, std::string f, std::string e, std::string_view g) {
    reason = r;
    field = std::move(f);
    expected = std::move(e);
    got = g;
    got_owned.clear();
  }
};

/// Printable, shortened rendering of raw input for messages (control bytes as \xNN).
std::string show(std::string_view s, std::size_t max_len = 80);

/// Handles a bad row according to the policy: throws funnel::Error or counts it.
class BadRows {
 public:
  BadRows(OnBadRow mode, ReadReport& rep) : mode_(mode), rep_(rep) {}
  /// `prefix` is prepended to the reason key (e.g. "common:"); `counts_as_row` false for common-file rows.
  void handle(const std::string& file, std::int64_t line, const RowError& e, bool unterminated,
              const char* prefix = "", bool counts_as_row = true);

 private:
  OnBadRow mode_;
  ReadReport& rep_;
};

/// Label cell: "0" or "1" (also "0.0"/"1.0" style numbers equal to 0 or 1). Returns -1 when invalid.
inline int parse_label(std::string_view s) {
  if (s.size() == 1 && (s[0] == '0' || s[0] == '1')) return s[0] - '0';
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return -1;
  if (v == 0.0) return 0;
  if (v == 1.0) return 1;
  return -1;
}

/// A finite float filling the whole cell.
inline bool parse_float(std::string_view s, float& out) {
  if (s.size() == 3 && s[0] == '1' && s[1] == '.' && s[2] == '0') {  // the common case in Ali-CCP
    out = 1.0f;
    return true;
  }
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec == std::errc::result_out_of_range && p == s.data() + s.size() && s.size() < 64) {
    // Out of float's range: a number too small (1e-400) underflows to 0 and is read as 0; too large is an error.
    char buf[64];
    std::memcpy(buf, s.data(), s.size());
    buf[s.size()] = '\0';
    const double v = std::strtod(buf, nullptr);
    if (std::isfinite(v) && std::fabs(v) < 1.0) {
      out = std::signbit(v) ? -0.0f : 0.0f;
      return true;
    }
    return false;
  }
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

/// A non-negative decimal integer filling the whole cell.
inline bool parse_count(std::string_view s, std::int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  std::int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

/// Asks the kernel to back a large buffer with transparent huge pages (first-touch page faults dominate filling
/// gigabytes of fresh output on some VMs). A hint only; ignored for small buffers or when unsupported.
void advise_huge_pages(const void* p, std::size_t bytes);
/// Asks the kernel to reclaim the whole pages inside [p, p + bytes) (MADV_PAGEOUT: file pages leave the resident
/// set and are read again from the file if touched; the contents never change). A hint; for input already parsed.
void release_pages(const void* p, std::size_t bytes);

/// Collects rows into a Dataset: per row a list of (field, id, weight) in any order, sorted into cells by field
/// (stable: ids of one field keep their input order). Optionally with shared blocks (Dataset::row_block): a block is
/// added once with add_block() and rows refer to it by index.
class RowAppender {
 public:
  /// With a sink (ReadOptions::sink), rows are handed to it every sink->chunk_rows() rows and blocks as they come,
  /// instead of accumulating in `d` (which then holds at most one chunk of rows and no blocks).
  RowAppender(Dataset& d, FeatureMap& map, RowSink* sink = nullptr)
      : d_(d), map_(map), cnt_(static_cast<std::size_t>(d.num_fields) + 1), sink_(sink) {}

  /// Every row appended from now on gets a row_block entry (-1 if it uses no block). Call before the first row.
  void use_blocks() {
    blocks_ = true;
    if (d_.block_offsets.empty()) d_.block_offsets.push_back(0);
  }

  /// A shared block from (field, id, weight) triples; returns its index. Its ids are counted for the feature map
  /// once per row that uses it (in finish()), as if they had been copied into those rows.
  std::int32_t add_block(const std::int32_t* field, const std::int64_t* id, const float* w, std::size_t n) {
    if (sink_) {
      sink_ends_.clear();
      sort_cells(field, id, w, n, 0, sink_ends_);
      sink_->add_block(sink_ends_.data(), row_ids_.data(), row_w_.data());
      if (uses_.size() >= static_cast<std::size_t>(INT32_MAX)) throw Error("too many shared blocks (more than 2^31-1)");
      uses_.push_back(0);
      return static_cast<std::int32_t>(uses_.size() - 1);
    }
    const std::size_t base = d_.block_ids.size();
    sort_cells(field, id, w, n, base, d_.block_offsets);
    d_.block_ids.insert(d_.block_ids.end(), row_ids_.data(), row_ids_.data() + n);
    d_.block_weights.insert(d_.block_weights.end(), row_w_.data(), row_w_.data() + n);
    if (uses_.size() >= static_cast<std::size_t>(INT32_MAX)) throw Error("too many shared blocks (more than 2^31-1)");
    uses_.push_back(0);
    return static_cast<std::int32_t>(uses_.size() - 1);
  }

  /// One row: its own (field, id, weight) triples and optionally a block (index from add_block, or -1). A cell's
  /// ids are the row's own followed by the block's (the order of copying the block into the row).
  void append(const std::int32_t* field, const std::int64_t* id, const float* w, std::size_t n, int click,
              int conversion, const float* dense, std::int32_t block = -1) {
    const std::size_t base = d_.ids.size();
    sort_cells(field, id, w, n, base, d_.offsets);
    map_.count({row_ids_.data(), n});
    d_.ids.insert(d_.ids.end(), row_ids_.data(), row_ids_.data() + n);
    d_.weights.insert(d_.weights.end(), row_w_.data(), row_w_.data() + n);
    if (blocks_) {
      d_.row_block.push_back(block);
      if (block >= 0) ++uses_[static_cast<std::size_t>(block)];
    }
    d_.labels.push_back(static_cast<std::uint8_t>(click));
    d_.labels.push_back(static_cast<std::uint8_t>(click & conversion));
    if (dense)
      for (std::int64_t j = 0; j < d_.num_dense; ++j) d_.dense.push_back(dense[j]);
    ++rows_;
    if (sink_ && d_.rows() >= sink_->chunk_rows()) hand_over();
  }

  /// After the last row: counts the ids of each block once per row using it (building vocab maps) and drops the
  /// blocks no row uses (renumbering the rest, order kept). A dataset without rows keeps no blocks.
  void finish() {
    if (sink_) {
      hand_over();
      sink_->end_rows(map_, uses_);
      return;
    }
    if (!blocks_) return;
    const std::size_t F = static_cast<std::size_t>(d_.num_fields);
    std::vector<std::int32_t> remap(uses_.size(), -1);
    std::size_t kept = 0, ids_to = 0;
    for (std::size_t b = 0; b < uses_.size(); ++b) {
      const auto beg = static_cast<std::size_t>(d_.block_offsets[b * F]);
      const auto end = static_cast<std::size_t>(d_.block_offsets[(b + 1) * F]);
      if (!uses_[b]) continue;
      map_.count({d_.block_ids.data() + beg, end - beg}, uses_[b]);
      if (kept != b) {  // move block b down to slot `kept` (its offsets are rebased below)
        std::copy(d_.block_ids.begin() + static_cast<std::ptrdiff_t>(beg), d_.block_ids.begin() + static_cast<std::ptrdiff_t>(end),
                  d_.block_ids.begin() + static_cast<std::ptrdiff_t>(ids_to));
        std::copy(d_.block_weights.begin() + static_cast<std::ptrdiff_t>(beg),
                  d_.block_weights.begin() + static_cast<std::ptrdiff_t>(end),
                  d_.block_weights.begin() + static_cast<std::ptrdiff_t>(ids_to));
        for (std::size_t f = 0; f < F; ++f)
          d_.block_offsets[kept * F + f + 1] =
              d_.block_offsets[b * F + f + 1] - static_cast<std::int64_t>(beg) + static_cast<std::int64_t>(ids_to);
      }
      remap[b] = static_cast<std::int32_t>(kept++);
      ids_to += end - beg;
    }
    if (kept != uses_.size()) {
      d_.block_offsets.resize(kept * F + 1);
      d_.block_ids.resize(ids_to);
      d_.block_weights.resize(ids_to);
      d_.block_ids.shrink_to_fit();
      d_.block_weights.shrink_to_fit();
      for (auto& b : d_.row_block)
        if (b >= 0) b = remap[static_cast<std::size_t>(b)];
    }
    if (d_.row_block.empty()) {
      d_.block_offsets.clear();
      d_.block_ids.clear();
      d_.block_weights.clear();
    }
  }

  /// Streaming (with a sink): the buffer whose rows plan() is told about; parsed parts of it are dropped from the
  /// resident set as reading advances, so memory does not grow with the input. Only for input never read again.
  void input(std::string_view text) {
    in_ = text;
    in_released_ = 0;
  }

  /// Same for the blocks, early in the file they come from (`consumed` of `total` bytes).
  void plan_blocks(std::size_t consumed, std::size_t total) {
    release_input(consumed);
    if (sink_ || blocks_planned_ || uses_.size() < 256 || consumed == 0) return;
    blocks_planned_ = true;
    const double scale = 1.05 * static_cast<double>(total) / static_cast<double>(consumed);
    if (scale <= 1.0) return;
    grow(scale, d_.block_offsets, d_.block_ids, d_.block_weights, uses_);
  }

  /// Once, early in the file: reserve the arrays for the whole file by extrapolating from the rows so far
  /// (`consumed` of `total` input bytes), so that they are not reallocated and copied as they grow.
  void plan(std::size_t consumed, std::size_t total, std::int64_t max_rows) {
    release_input(consumed);
    if (sink_ || planned_ || rows_ < 1024 || consumed == 0) return;
    planned_ = true;
    double scale = 1.05 * static_cast<double>(total) / static_cast<double>(consumed);
    if (max_rows > 0) scale = std::min(scale, static_cast<double>(max_rows) / static_cast<double>(rows_));
    if (scale <= 1.0) return;
    grow(scale, d_.offsets, d_.ids, d_.weights, d_.labels, d_.dense, d_.row_block);
  }

 private:
  /// Reserves each vector for `scale` times its size (and a little), on huge pages where the kernel has them.
  template <class... V>
  static void grow(double scale, V&... vs) {
    auto one = [scale](auto& v) {
      v.reserve(static_cast<std::size_t>(static_cast<double>(v.size()) * scale) + 16);
      advise_huge_pages(v.data(), v.capacity() * sizeof(v[0]));
    };
    (one(vs), ...);
  }

  /// Streaming: every 64 MB of input parsed, its pages leave the resident set.
  void release_input(std::size_t consumed) {
    if (sink_ && consumed >= in_released_ + (std::size_t{64} << 20) && consumed <= in_.size()) {
      release_pages(in_.data() + in_released_, consumed - in_released_);
      in_released_ = consumed;
    }
  }

  /// Hands the rows collected so far to the sink and empties the row arrays (keeping their capacity).
  void hand_over() {
    if (d_.rows() > 0) sink_->add_rows(d_);
    d_.offsets.assign(1, 0);
    d_.ids.clear();
    d_.weights.clear();
    d_.labels.clear();
    d_.dense.clear();
    d_.row_block.clear();
    d_.user_keys.clear();
  }

  /// Sorts n triples into F cells (counting sort by field, stable) in the scratch buffers row_ids_/row_w_ and
  /// appends the F cell ends (base + cumulative count) to `offsets`.
  void sort_cells(const std::int32_t* field, const std::int64_t* id, const float* w, std::size_t n, std::size_t base,
                  std::vector<std::int64_t>& offsets) {
    const std::size_t F = static_cast<std::size_t>(d_.num_fields);
    if (row_ids_.size() < n) {
      row_ids_.resize(n);
      row_w_.resize(n);
    }
    std::fill(cnt_.begin(), cnt_.end(), 0);
    for (std::size_t i = 0; i < n; ++i) ++cnt_[static_cast<std::size_t>(field[i]) + 1];
    for (std::size_t f = 0; f < F; ++f) {
      cnt_[f + 1] += cnt_[f];
      offsets.push_back(static_cast<std::int64_t>(base + cnt_[f + 1]));
    }
    std::int64_t* ids = row_ids_.data();
    float* ws = row_w_.data();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = cnt_[static_cast<std::size_t>(field[i])]++;
      ids[k] = id[i];
      ws[k] = w[i];
    }
  }

  Dataset& d_;
  FeatureMap& map_;
  std::vector<std::size_t> cnt_;
  std::vector<std::int64_t> row_ids_;
  std::vector<float> row_w_;
  std::vector<std::int64_t> uses_;  ///< per block: rows using it
  std::int64_t rows_ = 0;
  bool planned_ = false;
  bool blocks_planned_ = false;
  bool blocks_ = false;
  RowSink* sink_ = nullptr;
  std::vector<std::int64_t> sink_ends_;
  std::string_view in_;
  std::size_t in_released_ = 0;
};

/// Runs f(); if it throws and `map` was empty before, leaves it empty again.
template <class F>
Dataset guarded(FeatureMap& map, F&& f) {
  const bool was_empty = map.empty();
  try {
    return f();
  } catch (...) {
    if (was_empty) map.clear();
    throw;
  }
}

/// guarded() for a reader whose report is optional: runs f(rep), rep being *report or, when `report` is null, a report
/// of its own, after counting `bytes` of input into it.
template <class F>
Dataset guarded_read(FeatureMap& map, ReadReport* report, std::size_t bytes, F&& f) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep.bytes += static_cast<std::int64_t>(bytes);
  return guarded(map, [&]() -> Dataset { return f(rep); });
}

/// Prepares `d` (fields, dense names, empty arrays) from a started or ready map.
void init_dataset(Dataset& d, const FeatureMap& map);
/// Finishes the map (vocab: provisional -> final ids), sets vocab, checks that rows were kept.
void finish_dataset(Dataset& d, FeatureMap& map, const ReadReport& rep, const std::string& name);


/// The role of a column of a table with a header (a csv file, in-memory columns).
enum class ColRole : std::uint8_t { Click, Conversion, Dense, Categorical, Ignored };

/// The columns of a header by role: the role and slot of each (slot: its categorical or dense index, -1 for the
/// labels), the categorical and the dense names in column order, and the label columns (-1 when absent).
struct ColumnRoles {
  std::vector<ColRole> role;
  std::vector<std::int32_t> slot;
  std::vector<std::string> cat_names, dense_names;
  std::int64_t click_col = -1, conv_col = -1;
};

/// Roles by name: "click"; "purchase" or "conversion" (not both); a name starting with 'D' is dense; any other is
/// categorical. An empty or repeated name is an error whose message starts with `where` (e.g. "file.csv:1").
inline ColumnRoles column_roles(const std::vector<std::string>& header, const std::string& where) {
  const std::size_t ncols = header.size();
  ColumnRoles r;
  r.role.resize(ncols);
  r.slot.assign(ncols, -1);
  for (std::size_t c = 0; c < ncols; ++c) {
    const std::string& col = header[c];
    if (col.empty()) throw Error(where + ": field '#" + std::to_string(c + 1) + "': expected a column name, got ''");
    for (std::size_t k = 0; k < c; ++k)
      if (header[k] == col)
        throw Error(where + ": field '" + printable(col) + "': expected unique column names, got it twice");
    if (col == "click") {
      r.role[c] = ColRole::Click;
      r.click_col = static_cast<std::int64_t>(c);
    } else if (col == "purchase" || col == "conversion") {
      if (r.conv_col >= 0)
        throw Error(where + ": field '" + col + "': expected one conversion label column, got both 'purchase' and "
                    "'conversion'");
      r.role[c] = ColRole::Conversion;
      r.conv_col = static_cast<std::int64_t>(c);
    } else if (col[0] == 'D') {
      r.role[c] = ColRole::Dense;
      r.slot[c] = static_cast<std::int32_t>(r.dense_names.size());
      r.dense_names.push_back(col);
    } else {
      r.role[c] = ColRole::Categorical;
      r.slot[c] = static_cast<std::int32_t>(r.cat_names.size());
      r.cat_names.push_back(col);
    }
  }
  return r;
}

/// Binds the feature columns of `header` to a ready feature map: slot[c] becomes the field index (categorical) or the
/// dense index (dense) of column c; a feature column the map does not know becomes Ignored and is listed in
/// rep.ignored_columns. Returns how many categorical and dense columns the map knows.
struct KnownColumns {
  std::size_t categorical = 0, dense = 0;
};
inline KnownColumns bind_columns_to_map(const std::vector<std::string>& header, std::vector<ColRole>& role,
                                        std::vector<std::int32_t>& slot, const FeatureMap& map, ReadReport& rep) {
  KnownColumns known;
  const auto& dn = map.dense_names();
  for (std::size_t c = 0; c < header.size(); ++c) {
    std::int64_t at = -1;
    if (role[c] == ColRole::Categorical) {
      at = map.field_index(header[c]);
    } else if (role[c] == ColRole::Dense) {
      const auto it = std::find(dn.begin(), dn.end(), header[c]);
      if (it != dn.end()) at = it - dn.begin();
    } else {
      continue;
    }
    if (at < 0) {
      role[c] = ColRole::Ignored;
      rep.ignored_columns.push_back(header[c]);
      continue;
    }
    slot[c] = static_cast<std::int32_t>(at);
    ++(role[c] == ColRole::Categorical ? known.categorical : known.dense);
  }
  return known;
}

/// The ready map's columns (fields, then dense) that `header` lacks, each preceded by a space; empty when none.
inline std::string missing_map_columns(const std::vector<std::string>& header, const FeatureMap& map) {
  std::string missing;
  for (const auto* names : {&map.fields(), &map.dense_names()})
    for (const auto& f : *names)
      if (std::find(header.begin(), header.end(), f) == header.end()) {
        missing += ' ';  // appended piece by piece: GCC 12 warns falsely on " " + std::string
        missing += printable(f);
      }
  return missing;
}

// Runs a read over mapped files; a file that changed while it was read is the error, also when the read failed.
template <class F>
Dataset checked(std::initializer_list<const MappedFile*> files, F&& read) {
  try {
    Dataset d = read();
    for (const auto* f : files) f->check_unchanged();
    return d;
  } catch (const Error&) {
    for (const auto* f : files) f->check_unchanged();
    throw;
  }
}

// Maps the file `file` (sequential access) and runs parse(its bytes) through checked().
template <class Parse>
Dataset read_mapped(const std::string& file, Parse&& parse) {
  MappedFile mf(file, true);
  return checked({&mf}, [&] { return parse(mf.view()); });
}

}  // namespace funnel::detail
