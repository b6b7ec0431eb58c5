// aliccp:DIR[:train|:test] — the raw Ali-CCP release.
//
//   common_features_{split}.csv: common_feature_index,feature_num,feature_list      (user features)
//   sample_skeleton_{split}.csv: sample_id,click,conversion,common_feature_index,feature_num,feature_list
//   feature_list: features separated by \x01, each `field_id \x02 feature_id \x03 value`.
//
// Each row of the common file becomes a shared block of the dataset (Dataset::row_block), sorted into cells by
// field, with a hash table from common_feature_index to the block. The skeleton is scanned in place (mmap, no
// per-line allocation once the scratch buffers have grown); each row's own features are sorted into cells and
// the row refers to its common row's block instead of copying it (a cell is the skeleton's ids, then the common
// row's). Blocks no kept row uses are dropped at the end.
// Unknown field ids make the row bad (reason unknown_field): Ali-CCP has exactly the 23 fields of aliccp_fields().
#include <algorithm>

#include "data/reader_util.hpp"

namespace funnel {

const std::vector<std::string>& aliccp_fields() {
  static const std::vector<std::string> f{"101", "109_14", "110_14", "127_14", "150_14", "121", "122", "124",
                                          "125", "126",    "127",    "128",    "129",    "205", "206", "207",
                                          "210", "216",    "508",    "509",    "702",    "853", "301"};
  return f;
}

namespace {

using detail::RowError;

std::string field_list_text() {
  std::string s;
  for (const auto& f : aliccp_fields()) s += (s.empty() ? "" : ", ") + f;
  return s;
}

// Field id string (<= 8 bytes) -> field index, via a small open-addressing table on the packed bytes.
class FieldTable {
 public:
  FieldTable() {
    const auto& f = aliccp_fields();
    for (std::size_t i = 0; i < f.size(); ++i) {
      const std::uint64_t k = pack(f[i]);
      std::size_t s = slot(k);
      while (keys_[s]) s = (s + 1) & 63;
      keys_[s] = k;
      vals_[s] = static_cast<std::int32_t>(i);
    }
  }
  std::int32_t find(const char* p, std::size_t n) const {
    if (n == 0 || n > 8) return -1;
    const std::uint64_t k = pack({p, n});
    for (std::size_t s = slot(k);; s = (s + 1) & 63) {
      if (keys_[s] == k) return vals_[s];
      if (!keys_[s]) return -1;
    }
  }

 private:
  static std::uint64_t pack(std::string_view s) {
    std::uint64_t k = 0;
    for (std::size_t i = 0; i < s.size(); ++i) k |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
    return k;
  }
  static std::size_t slot(std::uint64_t k) { return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ULL) >> 58); }
  std::uint64_t keys_[64] = {};
  std::int32_t vals_[64] = {};
};

const FieldTable& field_table() {
  static const FieldTable t;
  return t;
}

// common_feature_index -> block index (-1: the key's row was bad), open addressing. Keys of up to 16 bytes (the
// release's keys are 16 hex digits) are compared from a copy in the entry, so a lookup does not touch the common
// file again; longer keys are compared through a view into it (the file outlives the table). `bad` remembers that
// some row with the key was bad, for messages.
class KeyIndex {
 public:
  struct Entry {
    std::uint64_t hash = 0;
    std::uint64_t w0 = 0, w1 = 0;  // the first 16 bytes of the key, zero-padded
    const char* ptr = nullptr;
    std::uint32_t len = 0;
    std::int32_t block = -1;
    bool used = false;
    bool bad = false;
    bool referenced = false;  // a skeleton row looked the key up
  };
  // The entry of `key`, inserted (block -1, not bad) if absent.
  Entry& upsert(std::string_view key) {
    if ((used_ + 1) * 2 > slots_.size()) grow();
    const Probe q(key);
    Entry& e = slots_[slot(q)];
    if (!e.used) {
      e = Entry{q.hash, q.w0, q.w1, key.data(), static_cast<std::uint32_t>(key.size()), -1, true, false, false};
      ++used_;
    }
    return e;
  }
  Entry* find(std::string_view key) {
    Entry& e = slots_[slot(Probe(key))];
    return e.used ? &e : nullptr;
  }

 private:
  struct Probe {
    std::string_view key;
    std::uint64_t hash, w0 = 0, w1 = 0;
    explicit Probe(std::string_view k) : key(k), hash(feature_hash(k, 0xc0ffeeULL)) {
      const std::size_t n = std::min<std::size_t>(k.size(), 16);
      char b[16] = {};
      std::memcpy(b, k.data(), n);
      std::memcpy(&w0, b, 8);
      std::memcpy(&w1, b + 8, 8);
    }
  };
  // The slot holding the key, or the empty slot where it would go.
  std::size_t slot(const Probe& q) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = q.hash & mask;; i = (i + 1) & mask) {
      const Entry& e = slots_[i];
      if (!e.used) return i;
      if (e.hash == q.hash && e.w0 == q.w0 && e.w1 == q.w1 && e.len == q.key.size() &&
          (e.len <= 16 || std::memcmp(e.ptr + 16, q.key.data() + 16, e.len - 16) == 0))
        return i;
    }
  }
  void grow() {
    std::vector<Entry> old(slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const Entry& e : old) {
      if (!e.used) continue;
      std::size_t i = e.hash & mask;
      while (slots_[i].used) i = (i + 1) & mask;
      slots_[i] = e;
    }
  }
  std::vector<Entry> slots_ = std::vector<Entry>(64);
  std::size_t used_ = 0;
};

bool mark_referenced(KeyIndex::Entry* e) {
  if (e) e->referenced = true;
  return e != nullptr;
}

struct Triples {
  std::vector<std::int32_t> fld;
  std::vector<std::int64_t> id;
  std::vector<float> w;
  void clear() {
    fld.clear();
    id.clear();
    w.clear();
  }
  std::size_t size() const { return fld.size(); }
};

// Splits off the next comma-separated column from [p, end); false if there is no comma.
inline bool next_col(const char*& p, const char* end, std::string_view& col) {
  const void* c = std::memchr(p, ',', static_cast<std::size_t>(end - p));
  if (!c) return false;
  const char* e = static_cast<const char*>(c);
  col = {p, static_cast<std::size_t>(e - p)};
  p = e + 1;
  return true;
}

// Extent of the k-th feature (for messages): from `s` to the next \x01.
std::string_view feature_text(const char* s, const char* end) {
  const void* e = std::memchr(s, '\x01', static_cast<std::size_t>(end - s));
  return {s, static_cast<std::size_t>((e ? static_cast<const char*>(e) : end) - s)};
}

// Parses a feature list, appending (field, row id, weight) to `out`; checks the count against feature_num.
bool parse_features(std::string_view list, std::int64_t feature_num, FeatureMap& map, bool use_values, Triples& out,
                    RowError& err) {
  const FieldTable& ft = field_table();
  const char* p = list.data();
  const char* const end = p + list.size();
  std::int64_t k = 0;
  if (p != end) {
    for (;;) {
      const char* fs = p;
      while (p < end && *p != '\x02' && *p != '\x01' && *p != '\x03') ++p;
      if (p == end || *p != '\x02') {
        err.set(reason::missing_separator, "feature_list #" + std::to_string(k + 1),
                "field\\x02feature\\x03value", feature_text(fs, end));
        return false;
      }
      const char* fe = p++;
      const char* is = p;
      while (p < end && *p != '\x03' && *p != '\x01' && *p != '\x02') ++p;
      if (p == end || *p != '\x03') {
        err.set(reason::missing_separator, "feature_list #" + std::to_string(k + 1),
                "field\\x02feature\\x03value", feature_text(fs, end));
        return false;
      }
      const char* ie = p++;
      const char* vs = p;
      while (p < end && *p != '\x01') ++p;
      const std::int32_t f = ft.find(fs, static_cast<std::size_t>(fe - fs));
      if (f < 0) {
        err.set(reason::unknown_field, "feature_list #" + std::to_string(k + 1),
                "an Ali-CCP field id (" + field_list_text() + ")", {fs, static_cast<std::size_t>(fe - fs)});
        return false;
      }
      if (ie == is) {
        err.set(reason::empty_value, "feature_list #" + std::to_string(k + 1), "a non-empty feature id",
                feature_text(fs, end));
        return false;
      }
      float v;
      if (!detail::parse_float({vs, static_cast<std::size_t>(p - vs)}, v)) {
        err.set(reason::bad_number, "feature_list #" + std::to_string(k + 1), "a finite number as the value",
                {vs, static_cast<std::size_t>(p - vs)});
        return false;
      }
      out.fld.push_back(f);
      out.id.push_back(map.map(f, {is, static_cast<std::size_t>(ie - is)}));
      out.w.push_back(use_values ? v : 1.0f);
      ++k;
      if (p == end) break;
      ++p;  // \x01
    }
  }
  if (k != feature_num) {
    err.set(reason::feature_num_mismatch, "feature_num",
            "the number of features in feature_list (" + std::to_string(k) + ")", {});
    err.got_owned = std::to_string(feature_num);
    return false;
  }
  return true;
}

bool parse_feature_num(std::string_view s, std::int64_t& n, RowError& err) {
  if (!detail::parse_count(s, n)) {
    err.set(reason::bad_number, "feature_num", "a non-negative integer", s);
    return false;
  }
  return true;
}

}  // namespace

Dataset read_aliccp_buffers(std::string_view skeleton, const std::string& skeleton_name, std::string_view common,
                            const std::string& common_name, const ReadOptions& options, FeatureMap& map,
                            ReadReport* report) {
  return detail::guarded_read(map, report, skeleton.size() + common.size(), [&](ReadReport& rep) -> Dataset {
    if (skeleton.empty())
      throw Error(skeleton_name +
                  ": empty file, expected rows sample_id,click,conversion,common_feature_index,feature_num,feature_list");
    if (common.empty())
      throw Error(common_name + ": empty file, expected rows common_feature_index,feature_num,feature_list");
    if (map.building()) throw Error(skeleton_name + ": the feature map passed in is half-built");
    if (map.empty()) {
      map.start(options.mapping, aliccp_fields(), {});
    } else if (map.fields() != aliccp_fields() || !map.dense_names().empty()) {
      throw Error(skeleton_name + ": the feature map's fields are not the Ali-CCP fields (" + field_list_text() + ")");
    }
    const bool use_values = options.weights == PoolWeights::Values;
    detail::BadRows bad(options.on_bad_row, rep);
    RowError err;
    std::string_view line;

    Dataset d;
    detail::init_dataset(d, map);
    detail::RowAppender app(d, map, options.sink);
    app.use_blocks();

    // --- common features: one block per good row ---------------------------------------------------------------
    Triples cf;
    KeyIndex index;
    std::vector<std::string_view> bad_keys;  // keys of the common file's bad rows (views into it)
    {
      detail::LineCursor cur(common, common_name);
      app.input(common);
      while (cur.next(line)) {
        ++rep.common_rows;
        const char* p = line.data();
        const char* end = p + line.size();
        std::string_view key, num;
        std::int64_t n = 0;
        cf.clear();
        KeyIndex::Entry* entry = nullptr;
        bool ok = true;
        if (cur.unterminated) rep.unterminated_last_line = true;  // valid; the row checks still apply
        if (!next_col(p, end, key) || !next_col(p, end, num) || std::memchr(p, ',', static_cast<std::size_t>(end - p))) {
          err.set(reason::column_count, "row", "3 comma-separated columns (common_feature_index,feature_num,feature_list)",
                  line);
          ok = false;
        } else if (key.empty()) {
          err.set(reason::empty_value, "common_feature_index", "a non-empty key", key);
          ok = false;
        } else if ((entry = &index.upsert(key))->block >= 0) {
          err.set(reason::duplicate_common_index, "common_feature_index", "a key not seen before in this file", key);
          ok = false;
        } else {
          ok = parse_feature_num(num, n, err) &&
               parse_features({p, static_cast<std::size_t>(end - p)}, n, map, use_values, cf, err);
        }
        if (!ok) {
          if (!key.empty()) index.upsert(key).bad = true;
          bad_keys.push_back(key);
          ++rep.common_rows_skipped;
          bad.handle(common_name, cur.line_no, err, cur.unterminated, "common:", false);
          continue;
        }
        entry->block = app.add_block(cf.fld.data(), cf.id.data(), cf.w.data(), cf.size());
        app.plan_blocks(cur.pos, common.size());
      }
    }

    // --- skeleton ----------------------------------------------------------------------------------------------
    Triples sk;
    detail::LineCursor cur(skeleton, skeleton_name);
    app.input(skeleton);
    while (cur.next(line)) {
      ++rep.rows_read;
      if (cur.unterminated) rep.unterminated_last_line = true;  // valid; the row checks still apply
      const char* p = line.data();
      const char* end = p + line.size();
      std::string_view sid, clk, cnv, key, num;
      sk.clear();
      bool ok = false;
      int click = -1, conv = -1;
      std::int64_t n = 0;
      std::int32_t block = -1;
      if (!next_col(p, end, sid) || !next_col(p, end, clk) || !next_col(p, end, cnv) || !next_col(p, end, key) ||
          !next_col(p, end, num) || std::memchr(p, ',', static_cast<std::size_t>(end - p))) {
        err.set(reason::column_count, "row",
                "6 comma-separated columns (sample_id,click,conversion,common_feature_index,feature_num,feature_list)",
                line);
      } else if (sid.empty()) {
        err.set(reason::empty_value, "sample_id", "a non-empty sample id", sid);
      } else if ((click = detail::parse_label(clk)) < 0) {
        err.set(reason::bad_label, "click", "0 or 1", clk);
      } else if ((conv = detail::parse_label(cnv)) < 0) {
        err.set(reason::bad_label, "conversion", "0 or 1", cnv);
      } else if (click == 0 && conv == 1) {
        err.set(reason::conversion_without_click, "conversion", "0 when click is 0 (a conversion needs a click)", cnv);
      } else if (KeyIndex::Entry* e = index.find(key); !mark_referenced(e) || e->block < 0) {
        err.set(reason::unknown_common_index, "common_feature_index",
                "a key of " + common_name + (e && e->bad ? " (its row there was bad and skipped)" : ""), key);
      } else {
        block = e->block;
        ok = parse_feature_num(num, n, err) &&
             parse_features({p, static_cast<std::size_t>(end - p)}, n, map, use_values, sk, err);
      }
      if (!ok) {
        bad.handle(skeleton_name, cur.line_no, err, cur.unterminated);
        continue;
      }
      app.append(sk.fld.data(), sk.id.data(), sk.w.data(), sk.size(), click, conv, nullptr, block);
      ++rep.rows_kept;
      app.plan(cur.pos, skeleton.size(), options.max_rows);
      if (options.max_rows && rep.rows_kept >= options.max_rows) {
        rep.stopped_at_max_rows = cur.pos < skeleton.size();
        break;
      }
    }
    // Bad common rows that no sample row asked for: they are in common_rows_skipped but in no row's reason.
    for (std::string_view k : bad_keys) {
      const KeyIndex::Entry* e = k.empty() ? nullptr : index.find(k);
      if (!e || !e->referenced) ++rep.common_rows_unused;
    }
    app.finish();
    detail::finish_dataset(d, map, rep, skeleton_name);
    return d;
  });
}

}  // namespace funnel
