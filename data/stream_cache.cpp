// Cache format v3 (see data/stream_cache.hpp). Byte layout, little-endian host order (checked by an endian tag):
//
//   [0, 64)        header: "FUNNELDS", u32 version (3), u32 0x01020304, zeros
//   chunks         each at a 64-byte aligned offset; inside, every array starts 8-byte aligned:
//                    u32 id_start[R+1]        own ids of row i: [id_start[i], id_start[i+1]) of the chunk's ids
//                    uW  cell_len[R*F]        W = 1, 2 or 4 bytes (the chunk's `width`)
//                    u32 ids[n_ids]
//                    f32 weights[n_ids]       absent when the chunk's `ones` flag is set (every weight is 1)
//                    u8  labels[R]            bit s = reached stage s
//                    i32 row_block[R]         only in chunks with the `blocks` flag; -1 = no block
//                    f32 dense[R*D]
//                    f32 true_prob[R*S], u8 entire[R]   only with the `truth` flag (synthetic ground truth)
//                    i64 user[R]              only with the `users` flag (user keys of csv --user-column)
//   blocks         64-byte aligned: u64 start[nb+1], uW cell_len[nb*F], u32 ids[n], f32 weights[n] (unless ones)
//   meta           JSON: sizes, names, feature map, chunk table (offset, bytes, checksum, rows, n_ids, width,
//                  flags), blocks (offset, bytes, checksum, count, n_ids, width, ones)
//   [size-64, size) footer: "FUNNELV3", u64 meta offset, u64 meta bytes, u64 meta checksum, u64 file size,
//                  u64 checksum of the footer's first 40 bytes, zeros
//
// Checksums: the 64-bit word hash of data/stream_cache.cpp's Checksum over the bytes of a chunk / of the block
// section / of the meta.
#include "data/stream_cache.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.hpp"
#include "core/io.hpp"
#include "data/id_arrays.hpp"

namespace funnel {
namespace {

constexpr char kMagic[8] = {'F', 'U', 'N', 'N', 'E', 'L', 'D', 'S'};
constexpr char kFooterTag[8] = {'F', 'U', 'N', 'N', 'E', 'L', 'V', '3'};
constexpr std::uint32_t kEndian = 0x01020304;
constexpr std::uint64_t kHeaderBytes = 64, kFooterBytes = 64;

std::uint64_t align8(std::uint64_t x) { return (x + 7) & ~std::uint64_t{7}; }
std::uint64_t align64(std::uint64_t x) { return (x + 63) & ~std::uint64_t{63}; }

// 64-bit checksum of a byte sequence, independent of how it is fed in pieces.
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

std::uint64_t checksum(const void* p, std::size_t n) {
  Checksum c;
  c.update(p, n);
  return c.value();
}

struct ChunkLayout {
  std::uint64_t id_start, cell_len, ids, weights, labels, row_block, dense, true_prob, entire, users, bytes;
};
ChunkLayout chunk_layout(std::uint64_t R, std::uint64_t F, std::uint64_t D, std::uint64_t S, std::uint64_t n_ids,
                         int width, bool ones, bool blocks, bool truth, bool users = false) {
  ChunkLayout L{};
  std::uint64_t p = 0;
  L.id_start = p, p = align8(p + 4 * (R + 1));
  L.cell_len = p, p = align8(p + static_cast<std::uint64_t>(width) * R * F);
  L.ids = p, p = align8(p + 4 * n_ids);
  L.weights = p, p = align8(p + (ones ? 0 : 4 * n_ids));
  L.labels = p, p = align8(p + R);
  L.row_block = p, p = align8(p + (blocks ? 4 * R : 0));
  L.dense = p, p = align8(p + 4 * R * D);
  L.true_prob = p, p = align8(p + (truth ? 4 * R * S : 0));
  L.entire = p, p = align8(p + (truth ? R : 0));
  L.users = p, p = align8(p + (users ? 8 * R : 0));
  L.bytes = p;
  return L;
}

struct BlockLayout {
  std::uint64_t start, cell_len, ids, weights, bytes;
};
BlockLayout block_layout(std::uint64_t nb, std::uint64_t F, std::uint64_t n_ids, int width, bool ones) {
  BlockLayout L{};
  std::uint64_t p = 0;
  L.start = p, p = align8(p + 8 * (nb + 1));
  L.cell_len = p, p = align8(p + static_cast<std::uint64_t>(width) * nb * F);
  L.ids = p, p = align8(p + 4 * n_ids);
  L.weights = p, p = align8(p + (ones ? 0 : 4 * n_ids));
  L.bytes = p;
  return L;
}

int width_for(std::uint64_t max_len) { return max_len <= 0xff ? 1 : max_len <= 0xffff ? 2 : 4; }

inline std::uint32_t read_len(const unsigned char* base, int width, std::uint64_t k) {
  switch (width) {
    case 1:
      return base[k];
    case 2: {
      std::uint16_t v;
      std::memcpy(&v, base + 2 * k, 2);
      return v;
    }
    default: {
      std::uint32_t v;
      std::memcpy(&v, base + 4 * k, 4);
      return v;
    }
  }
}
inline void write_len(unsigned char* base, int width, std::uint64_t k, std::uint32_t v) {
  if (width == 1) base[k] = static_cast<unsigned char>(v);
  else if (width == 2) {
    const auto s = static_cast<std::uint16_t>(v);
    std::memcpy(base + 2 * k, &s, 2);
  } else {
    std::memcpy(base + 4 * k, &v, 4);
  }
}

// A file written with error checks; `what` names it in messages.
class RawFile {
 public:
  RawFile() = default;
  RawFile(const std::string& path, bool exclusive) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | (exclusive ? O_EXCL : 0), 0644);
    if (fd_ < 0) throw Error("write_cache: cannot create '" + path + "': " + std::strerror(errno));
  }
  ~RawFile() { close_quietly(); }
  RawFile(const RawFile&) = delete;
  RawFile& operator=(const RawFile&) = delete;
  void write_at(std::uint64_t off, const void* p, std::size_t n) {
    if (const WriteResult r = pwrite_fully(fd_, p, n, off); r.error)
      throw Error("write_cache: cannot write '" + path_ + "': " + std::strerror(r.error));
  }
  void read_at(std::uint64_t off, void* p, std::size_t n) const {
    auto c = static_cast<char*>(p);
    while (n) {
      const ssize_t k = ::pread(fd_, c, n, static_cast<off_t>(off));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) throw Error("write_cache: cannot read back '" + path_ + "': " + (k < 0 ? std::strerror(errno) : "short file"));
      c += k, off += static_cast<std::uint64_t>(k), n -= static_cast<std::size_t>(k);
    }
  }
  void sync_close() {
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      throw Error("write_cache: cannot write '" + path_ + "': " + std::strerror(errno));
    }
    fd_ = -1;
  }
  void close_quietly() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Appends to a side file through a buffer; read back sequentially with Reader.
class SideFile {
 public:
  explicit SideFile(const std::string& path) : f_(path, true) {}
  void put(const void* p, std::size_t n) {
    auto c = static_cast<const unsigned char*>(p);
    if (buf_.size() + n > (1u << 20)) flush();
    if (n > (1u << 20)) {
      f_.write_at(size_, c, n);
      size_ += n;
      return;
    }
    buf_.insert(buf_.end(), c, c + n);
  }
  void flush() {
    if (!buf_.empty()) f_.write_at(size_, buf_.data(), buf_.size());
    size_ += buf_.size();
    buf_.clear();
  }
  // Sequential reads after flush().
  void read(std::uint64_t off, void* p, std::size_t n) const { f_.read_at(off, p, n); }
  std::uint64_t size() const { return size_ + buf_.size(); }
  const std::string& path() const { return f_.path(); }

 private:
  RawFile f_;
  std::vector<unsigned char> buf_;
  std::uint64_t size_ = 0;
};

}  // namespace

// ------------------------------------------------------------------------------------------------ writer
struct CacheWriter::Impl {
  std::string file, tmp;
  std::vector<std::string> fields, dense_names;
  std::int64_t F = 0, S = 2, D = 0;
  std::unique_ptr<RawFile> out_file;
  RawFile& out() { return *out_file; }
  std::unique_ptr<SideFile> blens, bids, bw;  // block cell lengths (u32), ids (u32), weights (f32)
  std::int64_t nb = 0;
  std::uint64_t nb_ids = 0, nb_max_len = 0;
  bool b_ones = true;
  // the chunk being filled
  std::vector<std::uint32_t> id_start{0}, lens, ids;
  std::vector<float> w, dense, true_prob;
  std::vector<std::uint8_t> labels, entire;
  std::vector<std::int32_t> row_block;
  std::vector<std::int64_t> users;
  bool chunk_blocks = false, chunk_truth = false, chunk_users = false;
  std::vector<unsigned char> buf;
  struct ChunkInfo {
    std::uint64_t offset, bytes, checksum;
    std::int64_t rows, n_ids;
    int width;
    bool ones, blocks, truth, users;
  };
  std::vector<ChunkInfo> chunks;
  std::vector<std::uint32_t> remap;  // provisional id -> final id (vocabulary maps), empty otherwise
  bool provisional = false;
  std::int64_t clicks = 0, conversions = 0;
  bool committed = false;
};

CacheWriter::CacheWriter(const std::string& file, std::vector<std::string> field_names,
                         std::vector<std::string> dense_names, std::int64_t num_stages, std::int64_t chunk_rows)
    : impl_(std::make_unique<Impl>()), chunk_rows_(chunk_rows) {
  if (chunk_rows <= 0 || chunk_rows > (1 << 24)) throw Error("write_cache: chunk rows must be in [1, 2^24]");
  if (num_stages < 1 || num_stages > 8) throw Error("write_cache: the cache stores 1 to 8 funnel stages, got " + std::to_string(num_stages));
  Impl& m = *impl_;
  m.file = file;
  m.tmp = file + ".tmp." + std::to_string(::getpid());
  m.fields = std::move(field_names);
  m.dense_names = std::move(dense_names);
  m.F = static_cast<std::int64_t>(m.fields.size());
  m.D = static_cast<std::int64_t>(m.dense_names.size());
  m.S = num_stages;
  if (m.F <= 0) throw Error("write_cache: a dataset without fields");
  m.out_file = std::make_unique<RawFile>(m.tmp, false);
  try {
    m.blens = std::make_unique<SideFile>(m.tmp + ".blen");
    m.bids = std::make_unique<SideFile>(m.tmp + ".bids");
    m.bw = std::make_unique<SideFile>(m.tmp + ".bw");
    unsigned char head[kHeaderBytes] = {};
    std::memcpy(head, kMagic, 8);
    std::memcpy(head + 8, &kCacheVersion, 4);
    std::memcpy(head + 12, &kEndian, 4);
    m.out().write_at(0, head, sizeof head);
  } catch (...) {
    if (impl_->out_file) impl_->out_file->close_quietly();
    std::error_code ec;
    for (const char* s : {"", ".blen", ".bids", ".bw"}) std::filesystem::remove(m.tmp + s, ec);
    throw;
  }
  pos_ = kHeaderBytes;
}

CacheWriter::~CacheWriter() {
  if (!impl_) return;
  if (impl_->out_file) impl_->out_file->close_quietly();
  impl_->blens.reset();
  impl_->bids.reset();
  impl_->bw.reset();
  std::error_code ec;
  if (!impl_->committed) std::filesystem::remove(impl_->tmp, ec);
  for (const char* s : {".blen", ".bids", ".bw"}) std::filesystem::remove(impl_->tmp + s, ec);
}

namespace {
std::uint32_t narrow_id(std::int64_t id) {
  if (id < 0 || id > static_cast<std::int64_t>(UINT32_MAX))
    throw Error("write_cache: id " + std::to_string(id) + " does not fit the cache's 32-bit ids");
  return static_cast<std::uint32_t>(id);
}
}  // namespace

void CacheWriter::add_block(const std::int64_t* cell_ends, const std::int64_t* ids, const float* weights) {
  Impl& m = *impl_;
  std::int64_t prev = 0;
  for (std::int64_t f = 0; f < m.F; ++f) {
    const auto len = static_cast<std::uint32_t>(cell_ends[f] - prev);
    m.nb_max_len = std::max<std::uint64_t>(m.nb_max_len, len);
    prev = cell_ends[f];
    m.blens->put(&len, 4);
  }
  for (std::int64_t k = 0; k < prev; ++k) {
    const std::uint32_t v = narrow_id(ids[k]);
    m.bids->put(&v, 4);
    m.b_ones = m.b_ones && weights[k] == 1.0f;
  }
  m.bw->put(weights, static_cast<std::size_t>(prev) * 4);
  m.nb_ids += static_cast<std::uint64_t>(prev);
  if (m.nb >= INT32_MAX) throw Error("write_cache: too many shared blocks (more than 2^31-1)");
  ++m.nb;
}

void CacheWriter::add_rows(const Dataset& d) {
  Impl& m = *impl_;
  if (d.num_fields != m.F || d.num_dense != m.D || d.num_stages != m.S)
    throw Error("write_cache: rows with another layout (fields, dense columns or stages) than the cache's");
  const std::int64_t F = m.F, S = m.S, D = m.D;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    if (!d.row_block.empty()) {
      const std::int32_t b = d.row_block[static_cast<std::size_t>(r)];
      if (b >= m.nb) throw Error("write_cache: a row refers to shared block " + std::to_string(b) + " of " + std::to_string(m.nb));
      m.row_block.push_back(b);
      m.chunk_blocks = true;
    } else {
      m.row_block.push_back(-1);
    }
    const auto* off = d.offsets.data() + r * F;
    for (std::int64_t f = 0; f < F; ++f) m.lens.push_back(static_cast<std::uint32_t>(off[f + 1] - off[f]));
    for (auto k = off[0]; k < off[F]; ++k) {
      m.ids.push_back(narrow_id(d.ids[static_cast<std::size_t>(k)]));
      m.w.push_back(d.weights[static_cast<std::size_t>(k)]);
    }
    if (m.ids.size() > UINT32_MAX) throw Error("write_cache: more than 2^32 ids in one chunk; use smaller chunks");
    m.id_start.push_back(static_cast<std::uint32_t>(m.ids.size()));
    std::uint8_t bits = 0;
    for (std::int64_t s = 0; s < S; ++s) bits |= static_cast<std::uint8_t>((d.labels[static_cast<std::size_t>(r * S + s)] ? 1 : 0) << s);
    m.labels.push_back(bits);
    m.clicks += bits & 1;
    m.conversions += S > 1 ? (bits >> 1) & 1 : 0;
    for (std::int64_t j = 0; j < D; ++j) m.dense.push_back(d.dense[static_cast<std::size_t>(r * D + j)]);
    if (d.has_truth()) {
      m.chunk_truth = true;
      std::uint8_t e = 0;
      for (std::int64_t s = 0; s < S; ++s) {
        m.true_prob.push_back(d.true_prob.empty() ? 0.0f : d.true_prob[static_cast<std::size_t>(r * S + s)]);
        e |= static_cast<std::uint8_t>((d.entire_labels[static_cast<std::size_t>(r * S + s)] ? 1 : 0) << s);
      }
      m.entire.push_back(e);
    } else if (m.chunk_truth) {
      throw Error("write_cache: some rows have ground truth and some do not");
    }
    if (!d.user_keys.empty()) {
      m.chunk_users = true;
      m.users.push_back(d.user_keys[static_cast<std::size_t>(r)]);
    } else if (m.chunk_users) {
      throw Error("write_cache: some rows have user keys and some do not");
    }
    ++rows_;
    if (static_cast<std::int64_t>(m.labels.size()) == chunk_rows_) flush_chunk();
  }
}

void CacheWriter::flush_chunk() {
  Impl& m = *impl_;
  const auto R = static_cast<std::uint64_t>(m.labels.size());
  if (R == 0) return;
  if (!m.chunks.empty() && m.chunks.back().rows != chunk_rows_)
    throw Error("write_cache: internal error: a short chunk before the last");
  const std::uint64_t max_len = m.lens.empty() ? 0 : *std::max_element(m.lens.begin(), m.lens.end());
  const int width = width_for(max_len);
  const bool ones = std::all_of(m.w.begin(), m.w.end(), [](float x) { return x == 1.0f; });
  const auto F = static_cast<std::uint64_t>(m.F), D = static_cast<std::uint64_t>(m.D), S = static_cast<std::uint64_t>(m.S);
  const ChunkLayout L =
      chunk_layout(R, F, D, S, m.ids.size(), width, ones, m.chunk_blocks, m.chunk_truth, m.chunk_users);
  m.buf.assign(L.bytes, 0);
  unsigned char* b = m.buf.data();
  std::memcpy(b + L.id_start, m.id_start.data(), 4 * (R + 1));
  for (std::uint64_t k = 0; k < R * F; ++k) write_len(b + L.cell_len, width, k, m.lens[k]);
  if (!m.ids.empty()) std::memcpy(b + L.ids, m.ids.data(), 4 * m.ids.size());
  if (!ones && !m.w.empty()) std::memcpy(b + L.weights, m.w.data(), 4 * m.w.size());
  std::memcpy(b + L.labels, m.labels.data(), R);
  if (m.chunk_blocks) std::memcpy(b + L.row_block, m.row_block.data(), 4 * R);
  if (D) std::memcpy(b + L.dense, m.dense.data(), 4 * R * D);
  if (m.chunk_truth) {
    std::memcpy(b + L.true_prob, m.true_prob.data(), 4 * R * S);
    std::memcpy(b + L.entire, m.entire.data(), R);
  }
  if (m.chunk_users) std::memcpy(b + L.users, m.users.data(), 8 * R);
  pos_ = align64(pos_);
  m.out().write_at(pos_, b, L.bytes);
  m.chunks.push_back({pos_, L.bytes, checksum(b, L.bytes), static_cast<std::int64_t>(R),
                      static_cast<std::int64_t>(m.ids.size()), width, ones, m.chunk_blocks, m.chunk_truth,
                      m.chunk_users});
  pos_ += L.bytes;
  m.id_start.assign(1, 0);
  m.lens.clear();
  m.ids.clear();
  m.w.clear();
  m.labels.clear();
  m.row_block.clear();
  m.dense.clear();
  m.true_prob.clear();
  m.entire.clear();
  m.users.clear();
  m.chunk_blocks = false;
  // (chunk_truth stays: every row must then have it)
}

void CacheWriter::end_rows(FeatureMap& map, std::span<const std::int64_t> uses) {
  Impl& m = *impl_;
  if (!map.building()) return;
  if (static_cast<std::int64_t>(uses.size()) != m.nb) throw Error("write_cache: block use counts do not match the blocks");
  // Count every block's ids once per row using it, reading the blocks back from the side files.
  m.blens->flush();
  m.bids->flush();
  std::vector<std::uint32_t> lens(static_cast<std::size_t>(m.F)), raw;
  std::vector<std::int64_t> ids;
  std::uint64_t id_off = 0;
  for (std::int64_t b = 0; b < m.nb; ++b) {
    m.blens->read(static_cast<std::uint64_t>(b * m.F) * 4, lens.data(), lens.size() * 4);
    const std::uint64_t n = std::accumulate(lens.begin(), lens.end(), std::uint64_t{0});
    if (uses[static_cast<std::size_t>(b)] > 0 && n > 0) {
      raw.resize(n);
      m.bids->read(id_off * 4, raw.data(), n * 4);
      ids.assign(raw.begin(), raw.end());
      map.count(ids, uses[static_cast<std::size_t>(b)]);
    }
    id_off += n;
  }
  // The provisional -> final table: finish() rewrites the ids it is given, so give it every provisional id.
  std::int64_t P = 0;
  for (std::int64_t f = 0; f < map.num_fields(); ++f) P += map.distinct_values(f);
  std::vector<std::int64_t> table(static_cast<std::size_t>(P));
  std::iota(table.begin(), table.end(), std::int64_t{0});
  map.finish(table);
  m.remap.resize(table.size());
  for (std::size_t i = 0; i < table.size(); ++i) m.remap[i] = narrow_id(table[i]);
  m.provisional = true;
}

void CacheWriter::commit(const FeatureMap& map) {
  Impl& m = *impl_;
  if (!map.ready()) throw Error("write_cache: the feature map is not ready (read the dataset with it first)");
  if (map.fields() != m.fields || map.dense_names() != m.dense_names)
    throw Error("write_cache: the feature map does not belong to the dataset (fields differ)");
  if (map.vocab() > static_cast<std::int64_t>(UINT32_MAX) + 1)
    throw Error("write_cache: vocabulary of " + std::to_string(map.vocab()) + " rows does not fit 32-bit ids");
  flush_chunk();
  if (rows_ == 0) throw Error("write_cache: no rows to write");
  auto remap_ids = [&](std::uint32_t* p, std::size_t n, const std::string& where) {
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] >= m.remap.size()) throw Error("write_cache: " + where + " holds an id that is not a provisional id");
      p[i] = m.remap[p[i]];
    }
  };
  // Provisional ids (vocabulary maps): rewrite every chunk's ids in place and recompute its checksum.
  if (m.provisional) {
    for (auto& c : m.chunks) {
      m.buf.resize(c.bytes);
      m.out().read_at(c.offset, m.buf.data(), c.bytes);
      const ChunkLayout L = chunk_layout(static_cast<std::uint64_t>(c.rows), static_cast<std::uint64_t>(m.F),
                                         static_cast<std::uint64_t>(m.D), static_cast<std::uint64_t>(m.S),
                                         static_cast<std::uint64_t>(c.n_ids), c.width, c.ones, c.blocks, c.truth,
                                         c.users);
      remap_ids(reinterpret_cast<std::uint32_t*>(m.buf.data() + L.ids), static_cast<std::size_t>(c.n_ids), "a chunk");
      m.out().write_at(c.offset + L.ids, m.buf.data() + L.ids, static_cast<std::size_t>(c.n_ids) * 4);
      c.checksum = checksum(m.buf.data(), c.bytes);
    }
  }
  for (const auto& c : m.chunks)
    if (c.n_ids && m.remap.empty()) {
      // ids must be below the vocabulary: checked by readers; nothing to do here.
    }
  // Blocks: copied from the side files, lengths narrowed, ids remapped.
  nlohmann::json blocks = nullptr;
  if (m.nb > 0) {
    m.blens->flush();
    m.bids->flush();
    m.bw->flush();
    const int width = width_for(m.nb_max_len);
    const auto nb = static_cast<std::uint64_t>(m.nb), F = static_cast<std::uint64_t>(m.F);
    const BlockLayout L = block_layout(nb, F, m.nb_ids, width, m.b_ones);
    pos_ = align64(pos_);
    const std::uint64_t base = pos_;
    Checksum sum;
    std::uint64_t at = 0;  // bytes of the section written so far
    std::vector<unsigned char> out;
    auto emit = [&](const void* p, std::size_t n) {
      m.out().write_at(base + at, p, n);
      sum.update(p, n);
      at += n;
    };
    auto pad_to = [&](std::uint64_t off) {
      static const unsigned char z[8] = {};
      if (off > at) emit(z, static_cast<std::size_t>(off - at));
    };
    constexpr std::uint64_t kStep = 1 << 16;  // blocks per piece
    std::vector<std::uint32_t> lens;
    // starts
    std::vector<std::uint64_t> starts;
    std::uint64_t acc = 0;
    starts.push_back(0);
    for (std::uint64_t b0 = 0; b0 < nb; b0 += kStep) {
      const std::uint64_t b1 = std::min(nb, b0 + kStep);
      lens.resize((b1 - b0) * F);
      m.blens->read(b0 * F * 4, lens.data(), lens.size() * 4);
      for (std::uint64_t b = b0; b < b1; ++b) {
        for (std::uint64_t f = 0; f < F; ++f) acc += lens[(b - b0) * F + f];
        starts.push_back(acc);
      }
      emit(starts.data(), starts.size() * 8);
      starts.clear();
    }
    pad_to(L.cell_len);
    for (std::uint64_t b0 = 0; b0 < nb; b0 += kStep) {
      const std::uint64_t b1 = std::min(nb, b0 + kStep);
      lens.resize((b1 - b0) * F);
      m.blens->read(b0 * F * 4, lens.data(), lens.size() * 4);
      out.assign(lens.size() * static_cast<std::size_t>(width), 0);
      for (std::size_t k = 0; k < lens.size(); ++k) write_len(out.data(), width, k, lens[k]);
      emit(out.data(), out.size());
    }
    pad_to(L.ids);
    std::vector<std::uint32_t> ids;
    for (std::uint64_t i0 = 0; i0 < m.nb_ids; i0 += kStep * 16) {
      const std::uint64_t n = std::min(m.nb_ids - i0, kStep * 16);
      ids.resize(n);
      m.bids->read(i0 * 4, ids.data(), n * 4);
      if (m.provisional) remap_ids(ids.data(), ids.size(), "a shared block");
      emit(ids.data(), n * 4);
    }
    pad_to(L.weights);
    if (!m.b_ones) {
      for (std::uint64_t i0 = 0; i0 < m.nb_ids; i0 += kStep * 16) {
        const std::uint64_t n = std::min(m.nb_ids - i0, kStep * 16);
        ids.resize(n);
        m.bw->read(i0 * 4, ids.data(), n * 4);
        emit(ids.data(), n * 4);
      }
    }
    pad_to(L.bytes);
    blocks = {{"offset", base}, {"bytes", L.bytes}, {"checksum", sum.value()}, {"count", m.nb},
              {"n_ids", m.nb_ids}, {"width", width}, {"ones", m.b_ones}};
    pos_ = base + L.bytes;
  }
  nlohmann::json chunks = nlohmann::json::array();
  for (const auto& c : m.chunks)
    chunks.push_back({c.offset, c.bytes, c.checksum, c.rows, c.n_ids, c.width,
                      (c.ones ? 1 : 0) | (c.blocks ? 2 : 0) | (c.truth ? 4 : 0) | (c.users ? 8 : 0)});
  const nlohmann::json meta{{"format", "funnel dataset cache"},
                            {"version", kCacheVersion},
                            {"num_fields", m.F},
                            {"num_stages", m.S},
                            {"num_dense", m.D},
                            {"vocab", map.vocab()},
                            {"rows", rows_},
                            {"clicks", m.clicks},
                            {"conversions", m.conversions},
                            {"chunk_rows", chunk_rows_},
                            {"field_names", m.fields},
                            {"dense_names", m.dense_names},
                            {"map", map.to_json()},
                            {"chunks", chunks},
                            {"blocks", blocks}};
  const std::string text = meta.dump();
  pos_ = align8(pos_);
  const std::uint64_t meta_off = pos_;
  m.out().write_at(meta_off, text.data(), text.size());
  pos_ += text.size();
  unsigned char foot[kFooterBytes] = {};
  const std::uint64_t vals[4] = {meta_off, text.size(), checksum(text.data(), text.size()), pos_ + kFooterBytes};
  std::memcpy(foot, kFooterTag, 8);
  std::memcpy(foot + 8, vals, sizeof vals);
  const std::uint64_t foot_sum = checksum(foot, 40);
  std::memcpy(foot + 40, &foot_sum, 8);
  m.out().write_at(pos_, foot, sizeof foot);
  pos_ += kFooterBytes;
  m.out().sync_close();
  std::error_code ec;
  std::filesystem::rename(m.tmp, m.file, ec);
  if (ec) throw Error("write_cache: cannot rename '" + m.tmp + "' to '" + m.file + "': " + ec.message());
  m.committed = true;
  fsync_dir(std::filesystem::path(m.file).parent_path().empty() ? "." : std::filesystem::path(m.file).parent_path().string(),
            /*must_open=*/false);
}

// ------------------------------------------------------------------------------------------------ reader
void CacheFile::fail(const std::string& what) const { throw Error("cache '" + path_ + "': " + what); }

CacheFile::CacheFile(const std::string& path) : path_(path) {
  // O_NONBLOCK: a FIFO in the cache's place is refused at once below instead of blocking the open.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("cannot read '" + path + "': expected a regular file (a funnel dataset cache)");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    fail("empty file, expected a funnel dataset cache");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw Error("cannot map '" + path + "': " + std::strerror(e));
  data_ = static_cast<const unsigned char*>(p);
  try {
    if (size_ < 8 || std::memcmp(data_, kMagic, 8) != 0) {
      std::string got;
      for (std::size_t i = 0; i < std::min<std::size_t>(size_, 8); ++i)
        got += (data_[i] >= 0x20 && data_[i] < 0x7f) ? static_cast<char>(data_[i]) : '?';
      fail("expected a funnel dataset cache (magic FUNNELDS), got '" + got + "'");
    }
    if (size_ < 16) fail("truncated file: the header is incomplete (convert the data again)");
    std::uint32_t version, endian;
    std::memcpy(&version, data_ + 8, 4);
    std::memcpy(&endian, data_ + 12, 4);
    if (version != kCacheVersion)
      fail("expected format version " + std::to_string(kCacheVersion) + ", got version " + std::to_string(version) +
           (version < kCacheVersion ? " (written by an older funnel: convert the data again with funnel convert)"
                                    : " (written by a newer funnel)"));
    if (endian != kEndian) fail("written on a machine with a different byte order");
    if (size_ < kHeaderBytes + kFooterBytes || std::memcmp(data_ + size_ - kFooterBytes, kFooterTag, 8) != 0)
      fail("truncated file: no end-of-cache footer (the copy or the conversion did not finish; convert again)");
    std::uint64_t v[4], foot_sum;
    const unsigned char* foot = data_ + size_ - kFooterBytes;
    std::memcpy(v, foot + 8, sizeof v);
    std::memcpy(&foot_sum, foot + 40, 8);
    if (foot_sum != checksum(foot, 40) || std::any_of(foot + 48, foot + kFooterBytes, [](unsigned char x) { return x != 0; }))
      fail("checksum mismatch in the footer (file corrupted)");
    if (v[3] != size_)
      fail("truncated or extended file: the footer says " + std::to_string(v[3]) + " bytes, the file has " +
           std::to_string(size_));
    if (v[0] < kHeaderBytes || v[1] > size_ || v[0] + v[1] != size_ - kFooterBytes) fail("corrupt footer");
    if (checksum(data_ + v[0], v[1]) != v[2]) fail("checksum mismatch in the meta section (file corrupted)");
    nlohmann::json meta;
    try {
      meta = nlohmann::json::parse(data_ + v[0], data_ + v[0] + v[1]);
      num_fields_ = meta.at("num_fields").get<std::int64_t>();
      num_stages_ = meta.at("num_stages").get<std::int64_t>();
      num_dense_ = meta.at("num_dense").get<std::int64_t>();
      vocab_ = meta.at("vocab").get<std::int64_t>();
      rows_ = meta.at("rows").get<std::int64_t>();
      clicks_ = meta.at("clicks").get<std::int64_t>();
      conversions_ = meta.at("conversions").get<std::int64_t>();
      chunk_rows_ = meta.at("chunk_rows").get<std::int64_t>();
      field_names_ = meta.at("field_names").get<std::vector<std::string>>();
      dense_names_ = meta.at("dense_names").get<std::vector<std::string>>();
      map_ = FeatureMap::from_json(meta.at("map"));
    } catch (const nlohmann::json::exception& ex) {
      fail(std::string("corrupt meta section: ") + ex.what());
    }
    if (num_fields_ <= 0 || num_stages_ < 1 || num_stages_ > 8 || num_dense_ < 0 || rows_ <= 0 || chunk_rows_ <= 0 ||
        vocab_ < 0 || static_cast<std::int64_t>(field_names_.size()) != num_fields_ ||
        static_cast<std::int64_t>(dense_names_.size()) != num_dense_)
      fail("inconsistent contents: bad sizes in the meta section");
    if (map_.fields() != field_names_ || map_.vocab() != vocab_) fail("inconsistent contents: feature map vs dataset");
    const auto F = static_cast<std::uint64_t>(num_fields_), D = static_cast<std::uint64_t>(num_dense_),
               S = static_cast<std::uint64_t>(num_stages_);
    // blocks
    const auto& bj = meta.at("blocks");
    if (!bj.is_null()) {
      const auto off = bj.at("offset").get<std::uint64_t>(), bytes = bj.at("bytes").get<std::uint64_t>();
      num_blocks_ = bj.at("count").get<std::int64_t>();
      const auto n = bj.at("n_ids").get<std::uint64_t>();
      block_width_ = bj.at("width").get<int>();
      const bool ones = bj.at("ones").get<bool>();
      if (num_blocks_ <= 0 || (block_width_ != 1 && block_width_ != 2 && block_width_ != 4) || off % 8 ||
          off < kHeaderBytes || bytes > v[0] || off > v[0] - bytes)
        fail("inconsistent contents: the block section's place or sizes");
      const BlockLayout L = block_layout(static_cast<std::uint64_t>(num_blocks_), F, n, block_width_, ones);
      if (L.bytes != bytes) fail("inconsistent contents: the block section's size");
      if (checksum(data_ + off, bytes) != bj.at("checksum").get<std::uint64_t>())
        fail("checksum mismatch in the shared blocks (file corrupted)");
      block_start_ = reinterpret_cast<const std::uint64_t*>(data_ + off + L.start);
      block_len_ = data_ + off + L.cell_len;
      block_ids_ = reinterpret_cast<const std::uint32_t*>(data_ + off + L.ids);
      block_weights_ = ones ? nullptr : reinterpret_cast<const float*>(data_ + off + L.weights);
      has_blocks_ = true;
      check_blocks();
    }
    // chunks
    const auto& cj = meta.at("chunks");
    std::int64_t total = 0;
    for (const auto& c : cj) {
      Chunk k;
      k.offset = c.at(0).get<std::uint64_t>();
      k.bytes = c.at(1).get<std::uint64_t>();
      k.checksum = c.at(2).get<std::uint64_t>();
      k.rows = c.at(3).get<std::int64_t>();
      k.n_ids = c.at(4).get<std::int64_t>();
      k.width = c.at(5).get<int>();
      const int flags = c.at(6).get<int>();
      k.ones = flags & 1;
      const bool blocks = flags & 2, truth = flags & 4, users = flags & 8;
      if (k.rows <= 0 || k.rows > chunk_rows_ || k.n_ids < 0 || (k.width != 1 && k.width != 2 && k.width != 4) ||
          k.offset % 8 || k.offset < kHeaderBytes || k.bytes > v[0] || k.offset > v[0] - k.bytes)
        fail("inconsistent contents: chunk " + std::to_string(chunks_.size()) + " place or sizes");
      if (k.rows != chunk_rows_ && total + k.rows != rows_)
        fail("inconsistent contents: chunk " + std::to_string(chunks_.size()) + " is short but not the last");
      if (blocks && !has_blocks_) fail("inconsistent contents: rows refer to shared blocks, the file has none");
      const ChunkLayout L = chunk_layout(static_cast<std::uint64_t>(k.rows), F, D, S,
                                         static_cast<std::uint64_t>(k.n_ids), k.width, k.ones, blocks, truth, users);
      if (L.bytes != k.bytes) fail("inconsistent contents: chunk " + std::to_string(chunks_.size()) + " size");
      const unsigned char* b = data_ + k.offset;
      k.id_start = reinterpret_cast<const std::uint32_t*>(b + L.id_start);
      k.cell_len = b + L.cell_len;
      k.ids = reinterpret_cast<const std::uint32_t*>(b + L.ids);
      k.weights = k.ones ? nullptr : reinterpret_cast<const float*>(b + L.weights);
      k.labels = b + L.labels;
      k.row_block = blocks ? reinterpret_cast<const std::int32_t*>(b + L.row_block) : nullptr;
      k.dense = reinterpret_cast<const float*>(b + L.dense);
      if (truth) {
        k.true_prob = reinterpret_cast<const float*>(b + L.true_prob);
        k.entire = b + L.entire;
      }
      if (users) k.users = reinterpret_cast<const std::int64_t*>(b + L.users);
      total += k.rows;
      chunks_.push_back(k);
    }
    if (total != rows_) fail("inconsistent contents: the chunks hold " + std::to_string(total) + " rows, the meta says " + std::to_string(rows_));
  } catch (...) {
    ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = nullptr;
    throw;
  }
  verified_ = std::make_unique<std::atomic<std::uint8_t>[]>(chunks_.size());
  for (std::size_t i = 0; i < chunks_.size(); ++i) verified_[i].store(0);
}

CacheFile::~CacheFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

std::int64_t CacheFile::chunk_size(std::int64_t c) const { return chunks_[static_cast<std::size_t>(c)].rows; }

std::int64_t CacheFile::block_cell(std::int64_t b, std::int64_t f) const {
  return read_len(block_len_, block_width_, static_cast<std::uint64_t>(b * num_fields_ + f));
}

void CacheFile::check_blocks() {
  const auto nb = static_cast<std::uint64_t>(num_blocks_);
  if (block_start_[0] != 0) fail("inconsistent contents: shared block 0 does not start at 0");
  for (std::uint64_t b = 0; b < nb; ++b) {
    std::uint64_t n = 0;
    for (std::int64_t f = 0; f < num_fields_; ++f) n += static_cast<std::uint64_t>(block_cell(static_cast<std::int64_t>(b), f));
    if (block_start_[b + 1] != block_start_[b] + n)
      fail("inconsistent contents: shared block " + std::to_string(b) + " cell lengths vs its extent");
  }
  const std::uint64_t n = block_start_[nb];
  for (std::uint64_t k = 0; k < n; ++k)
    if (block_ids_[k] >= static_cast<std::uint64_t>(vocab_))
      fail("inconsistent contents: a shared block id " + std::to_string(block_ids_[k]) + " is not below the vocabulary " +
           std::to_string(vocab_));
}

void CacheFile::verify_chunk(std::int64_t c) const {
  if (c < 0 || c >= num_chunks()) fail("no chunk " + std::to_string(c));
  auto& flag = verified_[static_cast<std::size_t>(c)];
  if (flag.load(std::memory_order_acquire)) return;
  const Chunk& k = chunks_[static_cast<std::size_t>(c)];
  const std::string name = "chunk " + std::to_string(c) + " (rows " + std::to_string(chunk_begin(c)) + "..)";
  if (checksum(data_ + k.offset, k.bytes) != k.checksum) fail("checksum mismatch in " + name + " (file corrupted)");
  if (k.id_start[0] != 0 || k.id_start[k.rows] != static_cast<std::uint64_t>(k.n_ids))
    fail("inconsistent contents: " + name + " id extents");
  const auto F = static_cast<std::uint64_t>(num_fields_);
  for (std::int64_t i = 0; i < k.rows; ++i) {
    std::uint64_t n = 0;
    for (std::uint64_t f = 0; f < F; ++f) n += read_len(k.cell_len, k.width, static_cast<std::uint64_t>(i) * F + f);
    if (k.id_start[i + 1] < k.id_start[i] || k.id_start[i + 1] - k.id_start[i] != n)
      fail("inconsistent contents: " + name + " cell lengths vs row extents");
    const std::uint8_t bits = k.labels[i];
    if (bits >> num_stages_) fail("inconsistent contents: " + name + " labels");
    for (std::int64_t s = 1; s < num_stages_; ++s)
      if (((bits >> s) & 1) && !((bits >> (s - 1)) & 1)) fail("inconsistent contents: " + name + " labels not cumulative");
    if (k.row_block && (k.row_block[i] < -1 || k.row_block[i] >= num_blocks_))
      fail("inconsistent contents: " + name + " refers to a shared block that does not exist");
  }
  for (std::int64_t j = 0; j < k.n_ids; ++j)
    if (k.ids[j] >= static_cast<std::uint64_t>(vocab_))
      fail("inconsistent contents: " + name + " holds id " + std::to_string(k.ids[j]) + ", not below the vocabulary " +
           std::to_string(vocab_));
  flag.store(1, std::memory_order_release);
}

void CacheFile::release_chunk(std::int64_t c) const {
  const Chunk& k = chunks_[static_cast<std::size_t>(c)];
  const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  auto b = reinterpret_cast<std::uintptr_t>(data_ + k.offset);
  auto e = reinterpret_cast<std::uintptr_t>(data_ + k.offset + k.bytes);
  b = (b + page - 1) & ~(page - 1);  // whole pages inside the chunk only: neighbours may still be in use
  e &= ~(page - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

std::uint8_t CacheFile::label_bits(std::int64_t row) const {
  const std::int64_t c = chunk_of(row);
  verify_chunk(c);
  return chunks_[static_cast<std::size_t>(c)].labels[row - chunk_begin(c)];
}

std::uint8_t CacheFile::entire_bits(std::int64_t row) const {
  const std::int64_t c = chunk_of(row);
  verify_chunk(c);
  const Chunk& k = chunks_[static_cast<std::size_t>(c)];
  if (!k.entire) fail("chunk " + std::to_string(c) + " has no ground truth");
  return k.entire[row - chunk_begin(c)];
}

bool CacheFile::has_user_keys() const { return has_blocks_ || (!chunks_.empty() && chunks_[0].users != nullptr); }

std::int64_t CacheFile::user_key(std::int64_t row) const {
  const std::int64_t c = chunk_of(row);
  verify_chunk(c);
  const Chunk& k = chunks_[static_cast<std::size_t>(c)];
  const std::int64_t i = row - chunk_begin(c);
  return k.users ? k.users[i] : k.row_block ? k.row_block[i] : -1;
}

void CacheFile::gather(std::span<const std::int64_t> rows, IdBatch& ids, float* labels, float* dense) const {
  const std::int64_t F = num_fields_, S = num_stages_, D = num_dense_;
  const auto B = static_cast<std::int64_t>(rows.size());
  ids.reset(B, F);
  ids.offsets.resize(static_cast<std::size_t>(B * F + 1));
  std::uint64_t total = 0;
  for (const std::int64_t r : rows) {
    if (r < 0 || r >= rows_) fail("row " + std::to_string(r) + " out of range (" + std::to_string(rows_) + " rows)");
    const std::int64_t c = chunk_of(r);
    verify_chunk(c);
    const Chunk& k = chunks_[static_cast<std::size_t>(c)];
    const std::int64_t i = r - chunk_begin(c);
    total += k.id_start[i + 1] - k.id_start[i];
    if (k.row_block && k.row_block[i] >= 0) total += block_start_[k.row_block[i] + 1] - block_start_[k.row_block[i]];
  }
  detail::resize_ids(ids, static_cast<std::size_t>(total));
  std::int64_t* out = ids.ids.data();
  float* out_w = ids.weights.data();
  std::int64_t* off = ids.offsets.data();
  off[0] = 0;
  std::int64_t o = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t r = rows[static_cast<std::size_t>(b)];
    const std::int64_t c = chunk_of(r);
    const Chunk& k = chunks_[static_cast<std::size_t>(c)];
    const std::int64_t i = r - chunk_begin(c);
    const std::int32_t blk = k.row_block ? k.row_block[i] : -1;
    std::uint64_t own = k.id_start[i];
    std::uint64_t shared = blk >= 0 ? block_start_[blk] : 0;
    for (std::int64_t f = 0; f < F; ++f) {
      const std::uint32_t n = read_len(k.cell_len, k.width, static_cast<std::uint64_t>(i * F + f));
      for (std::uint32_t j = 0; j < n; ++j, ++own, ++o) {
        out[o] = k.ids[own];
        out_w[o] = k.weights ? k.weights[own] : 1.0f;
      }
      if (blk >= 0) {
        const auto m = static_cast<std::uint32_t>(block_cell(blk, f));
        for (std::uint32_t j = 0; j < m; ++j, ++shared, ++o) {
          out[o] = block_ids_[shared];
          out_w[o] = block_weights_ ? block_weights_[shared] : 1.0f;
        }
      }
      off[b * F + f + 1] = o;
    }
    if (labels)
      for (std::int64_t s = 0; s < S; ++s) labels[b * S + s] = static_cast<float>((k.labels[i] >> s) & 1);
    if (dense && D) std::memcpy(dense + b * D, k.dense + i * D, static_cast<std::size_t>(D) * sizeof(float));
  }
}

Dataset CacheFile::to_dataset() const {
  Dataset d;
  d.num_fields = num_fields_;
  d.num_stages = num_stages_;
  d.num_dense = num_dense_;
  d.vocab = vocab_;
  d.field_names = field_names_;
  d.dense_names = dense_names_;
  const std::int64_t F = num_fields_, S = num_stages_, D = num_dense_;
  std::int64_t n_ids = 0;
  for (const auto& k : chunks_) n_ids += k.n_ids;
  d.offsets.reserve(static_cast<std::size_t>(rows_ * F + 1));
  d.ids.reserve(static_cast<std::size_t>(n_ids));
  d.weights.reserve(static_cast<std::size_t>(n_ids));
  d.labels.reserve(static_cast<std::size_t>(rows_ * S));
  for (std::int64_t c = 0; c < num_chunks(); ++c) {
    verify_chunk(c);
    const Chunk& k = chunks_[static_cast<std::size_t>(c)];
    for (std::int64_t i = 0; i < k.rows; ++i)
      for (std::int64_t f = 0; f < F; ++f)
        d.offsets.push_back(d.offsets.back() + read_len(k.cell_len, k.width, static_cast<std::uint64_t>(i * F + f)));
    d.ids.insert(d.ids.end(), k.ids, k.ids + k.n_ids);
    if (k.weights) d.weights.insert(d.weights.end(), k.weights, k.weights + k.n_ids);
    else d.weights.resize(d.weights.size() + static_cast<std::size_t>(k.n_ids), 1.0f);
    for (std::int64_t i = 0; i < k.rows; ++i)
      for (std::int64_t s = 0; s < S; ++s) d.labels.push_back(static_cast<std::uint8_t>((k.labels[i] >> s) & 1));
    if (has_blocks_) {
      if (k.row_block) d.row_block.insert(d.row_block.end(), k.row_block, k.row_block + k.rows);
      else d.row_block.resize(d.row_block.size() + static_cast<std::size_t>(k.rows), -1);
    }
    d.dense.insert(d.dense.end(), k.dense, k.dense + k.rows * D);
    if (k.true_prob) {
      d.true_prob.insert(d.true_prob.end(), k.true_prob, k.true_prob + k.rows * S);
      for (std::int64_t i = 0; i < k.rows; ++i)
        for (std::int64_t s = 0; s < S; ++s) d.entire_labels.push_back(static_cast<std::uint8_t>((k.entire[i] >> s) & 1));
    }
    if (k.users) d.user_keys.insert(d.user_keys.end(), k.users, k.users + k.rows);
  }
  if (has_blocks_) {
    const auto nb = static_cast<std::uint64_t>(num_blocks_);
    d.block_offsets.reserve(nb * static_cast<std::uint64_t>(F) + 1);
    d.block_offsets.push_back(0);
    for (std::uint64_t b = 0; b < nb; ++b)
      for (std::int64_t f = 0; f < F; ++f)
        d.block_offsets.push_back(d.block_offsets.back() + block_cell(static_cast<std::int64_t>(b), f));
    d.block_ids.assign(block_ids_, block_ids_ + block_start_[nb]);
    if (block_weights_) d.block_weights.assign(block_weights_, block_weights_ + block_start_[nb]);
    else d.block_weights.assign(block_start_[nb], 1.0f);
  }
  return d;
}

}  // namespace funnel
