// Binary dataset cache.
//
// Layout (little-endian host order, checked by an endian tag):
//   "FUNNELDS" | u32 version (2) | u32 0x01020304
//   i64 num_fields, num_stages, num_dense, vocab, rows
//   i64 n_offsets, n_ids, n_dense, n_labels, n_true_prob, n_entire, n_row_block, n_block_offsets, n_block_ids
//   string list field_names, string list dense_names   (u64 count, then u64 length + bytes each)
//   u64 length + feature map JSON text
//   arrays: offsets i64, ids i64, weights f32 (n_ids), dense f32, labels u8, true_prob f32, entire_labels u8,
//           row_block i32, block_offsets i64, block_ids i64, block_weights f32 (n_block_ids)
//   u64 checksum of every byte before it
// Version 1 (before shared blocks) had no block counts or arrays; it is refused with a message to re-convert.
// Written to FILE.tmp.<pid> and renamed over FILE, so a reader never sees a half-written cache.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/reader_util.hpp"

namespace funnel {
namespace {

constexpr char kMagic[8] = {'F', 'U', 'N', 'N', 'E', 'L', 'D', 'S'};
constexpr std::uint32_t kVersion = 2;
constexpr std::uint32_t kEndian = 0x01020304;

// Streaming 64-bit checksum over a byte sequence (independent of how it is chunked).
class Checksum {
 public:
  void update(const void* data, std::size_t n) {
    auto p = static_cast<const unsigned char*>(data);
    if (fill_) {
      const std::size_t t = std::min<std::size_t>(8 - fill_, n);
      std::memcpy(buf_ + fill_, p, t);
      fill_ += t;
      p += t;
      n -= t;
      if (fill_ < 8) return;
      word(buf_);
      fill_ = 0;
    }
    while (n >= 8) {
      word(p);
      p += 8;
      n -= 8;
    }
    std::memcpy(buf_, p, n);
    fill_ = n;
  }
  std::uint64_t value() const {
    std::uint64_t h = h_;
    for (std::size_t i = 0; i < fill_; ++i) h = (h ^ buf_[i]) * 0x100000001b3ULL;
    return h ^ (total_ + fill_);
  }

 private:
  void word(const unsigned char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h_ = (h_ ^ w) * 0x9E3779B97F4A7C15ULL;
    h_ ^= h_ >> 29;
    total_ += 8;
  }
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
  std::uint64_t total_ = 0;
  unsigned char buf_[8] = {};
  std::size_t fill_ = 0;
};

class Writer {
 public:
  Writer(const std::string& path, const std::string& final_name) : path_(path), final_(final_name) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw Error("write_cache: cannot create '" + path + "': " + std::strerror(errno));
  }
  ~Writer() {
    if (f_) std::fclose(f_);
  }
  void bytes(const void* p, std::size_t n) {
    if (n == 0) return;
    sum_.update(p, n);
    if (std::fwrite(p, 1, n, f_) != n) throw Error("write_cache: cannot write '" + path_ + "': " + std::strerror(errno));
  }
  template <class T>
  void pod(const T& v) {
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    pod(static_cast<std::uint64_t>(s.size()));
    bytes(s.data(), s.size());
  }
  template <class T>
  void array(const std::vector<T>& v) {
    bytes(v.data(), v.size() * sizeof(T));
  }
  void close() {
    const std::uint64_t c = sum_.value();
    if (std::fwrite(&c, 1, 8, f_) != 8 || std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) {
      const int e = errno;
      throw Error("write_cache: cannot write '" + path_ + "': " + std::strerror(e));
    }
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) throw Error("write_cache: cannot close '" + path_ + "': " + std::strerror(errno));
  }

 private:
  std::string path_, final_;
  std::FILE* f_ = nullptr;
  Checksum sum_;
};

class Reader {
 public:
  Reader(std::string_view data, const std::string& name) : d_(data), name_(name) {}
  const char* take(std::size_t n, const char* what) {
    if (n > d_.size() - pos_)
      throw Error("cache '" + name_ + "': truncated file: expected " + std::to_string(n) + " bytes of " + what +
                  " at offset " + std::to_string(pos_) + ", got " + std::to_string(d_.size() - pos_));
    const char* p = d_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <class T>
  T pod(const char* what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  std::string str(const char* what) {
    const auto n = pod<std::uint64_t>(what);
    if (n > d_.size()) throw Error("cache '" + name_ + "': corrupt " + what + " length " + std::to_string(n));
    const char* p = take(n, what);
    return {p, n};
  }
  std::vector<std::string> strs(const char* what) {
    const auto n = pod<std::uint64_t>(what);
    if (n > d_.size()) throw Error("cache '" + name_ + "': corrupt " + what + " count " + std::to_string(n));
    std::vector<std::string> v;
    for (std::uint64_t i = 0; i < n; ++i) v.push_back(str(what));
    return v;
  }
  template <class T>
  void array(std::vector<T>& v, std::int64_t n, const char* what) {
    if (n < 0 || static_cast<std::uint64_t>(n) > d_.size() / sizeof(T))
      throw Error("cache '" + name_ + "': corrupt " + what + " size " + std::to_string(n));
    const char* p = take(static_cast<std::size_t>(n) * sizeof(T), what);
    v.resize(static_cast<std::size_t>(n));
    if (n) std::memcpy(v.data(), p, static_cast<std::size_t>(n) * sizeof(T));
  }
  std::size_t pos() const { return pos_; }

 private:
  std::string_view d_;
  std::string name_;
  std::size_t pos_ = 0;
};

void check(bool ok, const std::string& file, const std::string& what) {
  if (!ok) throw Error("cache '" + file + "': inconsistent contents: " + what);
}

}  // namespace

void write_cache(const Dataset& d, const FeatureMap& map, const std::string& file) {
  if (!map.ready()) throw Error("write_cache: the feature map is not ready (read the dataset with it first)");
  if (map.fields() != d.field_names || map.vocab() != d.vocab)
    throw Error("write_cache: the feature map does not belong to the dataset (fields or vocab differ)");
  const std::string tmp = file + ".tmp." + std::to_string(::getpid());
  try {
    Writer w(tmp, file);
    w.bytes(kMagic, 8);
    w.pod(kVersion);
    w.pod(kEndian);
    const std::int64_t head[] = {d.num_fields,
                                 d.num_stages,
                                 d.num_dense,
                                 d.vocab,
                                 d.rows(),
                                 static_cast<std::int64_t>(d.offsets.size()),
                                 static_cast<std::int64_t>(d.ids.size()),
                                 static_cast<std::int64_t>(d.dense.size()),
                                 static_cast<std::int64_t>(d.labels.size()),
                                 static_cast<std::int64_t>(d.true_prob.size()),
                                 static_cast<std::int64_t>(d.entire_labels.size()),
                                 static_cast<std::int64_t>(d.row_block.size()),
                                 static_cast<std::int64_t>(d.block_offsets.size()),
                                 static_cast<std::int64_t>(d.block_ids.size())};
    for (auto v : head) w.pod(v);
    if (const std::string p = dataset_problem(d); !p.empty()) throw Error("write_cache: inconsistent dataset: " + p);
    for (const auto* list : {&d.field_names, &d.dense_names}) {
      w.pod(static_cast<std::uint64_t>(list->size()));
      for (const auto& s : *list) w.str(s);
    }
    w.str(map.to_json().dump());
    w.array(d.offsets);
    w.array(d.ids);
    w.array(d.weights);
    w.array(d.dense);
    w.array(d.labels);
    w.array(d.true_prob);
    w.array(d.entire_labels);
    w.array(d.row_block);
    w.array(d.block_offsets);
    w.array(d.block_ids);
    w.array(d.block_weights);
    w.close();
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error("write_cache: cannot rename '" + tmp + "' to '" + file + "': " + ec.message());
  }
}

Dataset read_cache(const std::string& file, FeatureMap& map, ReadReport* report) {
  detail::MappedFile mf(file, true);
  const std::string_view all = mf.view();
  if (all.empty()) throw Error("cache '" + file + "': empty file, expected a funnel dataset cache");
  if (all.size() < 8 || std::memcmp(all.data(), kMagic, 8) != 0)
    throw Error("cache '" + file + "': expected a funnel dataset cache (magic FUNNELDS), got '" +
                detail::show(all.substr(0, 8)) + "'");
  if (all.size() < 16) throw Error("cache '" + file + "': truncated file: the header is incomplete");
  Checksum sum;
  sum.update(all.data(), all.size() - 8);
  std::uint64_t stored;
  std::memcpy(&stored, all.data() + all.size() - 8, 8);
  Reader r(all.substr(0, all.size() - 8), file);
  r.take(8, "magic");
  const auto version = r.pod<std::uint32_t>("version");
  if (version != kVersion)
    throw Error("cache '" + file + "': expected format version " + std::to_string(kVersion) + ", got version " +
                std::to_string(version) +
                (version < kVersion ? " (written by an older funnel: convert the data again with funnel convert)" : ""));
  if (r.pod<std::uint32_t>("endian tag") != kEndian)
    throw Error("cache '" + file + "': written on a machine with a different byte order");
  std::int64_t h[14];
  for (auto& v : h) v = r.pod<std::int64_t>("header");
  Dataset d;
  d.num_fields = h[0];
  d.num_stages = h[1];
  d.num_dense = h[2];
  d.vocab = h[3];
  const std::int64_t rows = h[4];
  d.field_names = r.strs("field names");
  d.dense_names = r.strs("dense names");
  const std::string js = r.str("feature map");
  r.array(d.offsets, h[5], "offsets");
  r.array(d.ids, h[6], "ids");
  r.array(d.weights, h[6], "weights");
  r.array(d.dense, h[7], "dense");
  r.array(d.labels, h[8], "labels");
  r.array(d.true_prob, h[9], "true_prob");
  r.array(d.entire_labels, h[10], "entire_labels");
  r.array(d.row_block, h[11], "row_block");
  r.array(d.block_offsets, h[12], "block_offsets");
  r.array(d.block_ids, h[13], "block_ids");
  r.array(d.block_weights, h[13], "block_weights");
  if (r.pos() != all.size() - 8)
    throw Error("cache '" + file + "': expected " + std::to_string(r.pos() + 8) + " bytes, got " +
                std::to_string(all.size()) + " (trailing data)");
  if (sum.value() != stored) throw Error("cache '" + file + "': checksum mismatch (file corrupted)");
  check(d.num_fields > 0 && d.num_stages > 0 && d.num_dense >= 0 && rows >= 0, file, "bad sizes in the header");
  check(h[8] == rows * d.num_stages, file, "labels size vs rows x num_stages");
  if (const std::string p = dataset_problem(d); !p.empty()) check(false, file, p);
  FeatureMap cached;
  try {
    cached = FeatureMap::from_json(nlohmann::json::parse(js));
  } catch (const nlohmann::json::exception& e) {
    throw Error("cache '" + file + "': the feature map JSON is malformed: " + e.what());
  }
  check(cached.fields() == d.field_names && cached.vocab() == d.vocab, file, "feature map vs dataset");
  if (map.empty()) {
    map = std::move(cached);
  } else if (!(map == cached)) {
    throw Error("cache '" + file + "': built with a different feature map than the one passed in");
  }
  if (report) {
    report->bytes += static_cast<std::int64_t>(all.size());
    report->rows_read += rows;
    report->rows_kept += rows;
  }
  return d;
}

}  // namespace funnel
