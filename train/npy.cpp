#include "train/npy.hpp"

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include <fcntl.h>
#include <unistd.h>

#include "core/error.hpp"
#include "core/io.hpp"
#include "core/files.hpp"

namespace funnel {

static_assert(std::endian::native == std::endian::little, "the .npy code assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;

std::string shape_tuple(const std::vector<std::int64_t>& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) r += ",";
  return r + ")";
}

// A tiny parser for the header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class DictParser {
 public:
  DictParser(std::string_view s, const std::string& source) : s_(s), src_(source) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(src_ + ": bad .npy header at character " + std::to_string(i_) + ": " + why + " (header: " +
                printable(s_, 200) + ")");
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool peek(char c) {
    ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string str() {
    ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) fail("expected a quoted string");
    const char q = s_[i_++];
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }
  bool boolean() {
    ws();
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::int64_t integer() {
    ws();
    const std::size_t start = i_;
    std::int64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("dimension too large");
      v = v * 10 + (s_[i_++] - '0');
    }
    if (i_ == start) fail("expected a non-negative integer");
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;  // Python 2 long suffix
    return v;
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> r;
    while (!peek(')')) {
      r.push_back(integer());
      if (!peek(',')) break;
      ++i_;
    }
    expect(')');
    return r;
  }
  bool at_end() {
    ws();
    return i_ == s_.size();
  }

 private:
  std::string_view s_;
  const std::string& src_;
  std::size_t i_ = 0;
};

std::uint32_t read_le(const unsigned char* p, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t k = 0; k < n; ++k) v |= static_cast<std::uint32_t>(p[k]) << (8 * k);
  return v;
}

std::string errno_str() { return std::strerror(errno); }

// The number of bytes of the magic, version and length fields, and the header length, from the first bytes.
std::size_t preamble_size(std::string_view b, const std::string& source) {
  if (b.size() < kMagicLen + 2 || std::memcmp(b.data(), kMagic, kMagicLen) != 0)
    throw Error(source + ": not a .npy file (missing the \\x93NUMPY magic string)");
  const int major = static_cast<unsigned char>(b[6]), minor = static_cast<unsigned char>(b[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    throw Error(source + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                " (expected 1.0, 2.0 or 3.0)");
  return major == 1 ? 10 : 12;
}

}  // namespace

const char* npy_descr(NpyDtype t) {
  switch (t) {
    case NpyDtype::F4: return "<f4";
    case NpyDtype::F8: return "<f8";
    case NpyDtype::I8: return "<i8";
  }
  return "?";
}

std::size_t npy_itemsize(NpyDtype t) { return t == NpyDtype::F4 ? 4 : 8; }

std::size_t NpyHeader::count() const {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

std::string npy_header(NpyDtype dtype, const std::vector<std::int64_t>& shape) {
  for (auto d : shape)
    if (d < 0) throw Error("npy_encode: negative dimension in shape " + shape_tuple(shape));
  std::string dict = std::string("{'descr': '") + npy_descr(dtype) + "', 'fortran_order': False, 'shape': " +
                     shape_tuple(shape) + ", }";
  // Pad with spaces and end with '\n' so that magic(6) + version(2) + len(2) + dict is a multiple of 64.
  const std::size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  if (dict.size() > 65535) throw Error("npy_encode: header too long for format 1.0 (shape " + shape_tuple(shape) + ")");
  std::string out;
  out.append(kMagic, kMagicLen);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  out += dict;
  return out;
}

std::string npy_encode(NpyDtype dtype, const std::vector<std::int64_t>& shape, const void* data) {
  std::string out = npy_header(dtype, shape);
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  const std::size_t bytes = n * npy_itemsize(dtype);
  out.reserve(out.size() + bytes);
  if (bytes) out.append(static_cast<const char*>(data), bytes);
  return out;
}

NpyHeader npy_parse_header(std::string_view b, const std::string& source) {
  const std::size_t pre = preamble_size(b, source);
  if (b.size() < pre) throw Error(source + ": truncated .npy header (file has " + std::to_string(b.size()) + " bytes)");
  const std::size_t hlen = read_le(reinterpret_cast<const unsigned char*>(b.data()) + 8, pre - 8);
  if (b.size() < pre + hlen)
    throw Error(source + ": truncated .npy header: it promises " + std::to_string(hlen) + " header bytes, file has " +
                std::to_string(b.size() - pre));
  NpyHeader h;
  h.data_offset = pre + hlen;
  DictParser p(b.substr(pre, hlen), source);
  bool have_descr = false, have_order = false, have_shape = false;
  p.expect('{');
  while (!p.peek('}')) {
    const std::string key = p.str();
    p.expect(':');
    if (key == "descr") {
      const std::string d = p.str();
      if (d == "<f4") h.dtype = NpyDtype::F4;
      else if (d == "<f8") h.dtype = NpyDtype::F8;
      else if (d == "<i8") h.dtype = NpyDtype::I8;
      else
        throw Error(source + ": unsupported .npy dtype '" + printable(d) + "' (expected '<f4', '<f8' or '<i8')");
      have_descr = true;
    } else if (key == "fortran_order") {
      if (p.boolean()) throw Error(source + ": fortran_order True is not supported (write the array in C order)");
      have_order = true;
    } else if (key == "shape") {
      h.shape = p.tuple();
      have_shape = true;
    } else {
      p.fail("unknown key '" + printable(key) + "'");
    }
    if (!p.peek(',')) break;
    p.expect(',');
  }
  p.expect('}');
  if (!p.at_end()) p.fail("trailing characters after the dict");
  if (!have_descr || !have_order || !have_shape)
    throw Error(source + ": .npy header lacks the key '" +
                std::string(!have_descr ? "descr" : !have_order ? "fortran_order" : "shape") + "'");
  // Overflow-safe element count.
  std::size_t n = 1;
  for (auto d : h.shape) {
    if (d != 0 && n > std::numeric_limits<std::size_t>::max() / 8 / static_cast<std::size_t>(d))
      throw Error(source + ": .npy shape " + shape_tuple(h.shape) + " is too large");
    n *= static_cast<std::size_t>(d);
  }
  return h;
}

template <class T>
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const T* data, bool sync) {
  const std::string bytes = npy_encode(npy_dtype_of<T>(), shape, data);
  SyncedFile f(path);
  const WriteResult w = write_fully(f.fd(), bytes.data(), bytes.size());
  if (w.error)
    throw Error(path + ": write failed after " + std::to_string(w.done) + " of " + std::to_string(bytes.size()) +
                " bytes: " + std::strerror(w.error));
  f.finish(sync);
}

namespace {

// Reads the header of an open file and checks the file size against it.
NpyHeader open_and_check(std::ifstream& f, const std::string& path) {
  f.open(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open: " + errno_str());
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(f.tellg());
  f.seekg(0);
  std::string head(std::min<std::size_t>(size, 12), '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  const std::size_t pre = preamble_size(head, path);
  if (size < pre) throw Error(path + ": truncated .npy header (file has " + std::to_string(size) + " bytes)");
  const std::size_t hlen = read_le(reinterpret_cast<const unsigned char*>(head.data()) + 8, pre - 8);
  if (size < pre + hlen)
    throw Error(path + ": truncated .npy header: it promises " + std::to_string(hlen) + " header bytes, file has " +
                std::to_string(size - pre));
  head.resize(pre + hlen);
  f.seekg(0);
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (!f) throw Error(path + ": read error in the .npy header");
  NpyHeader h = npy_parse_header(head, path);
  const std::size_t want = h.data_bytes(), have = size - h.data_offset;
  if (have != want)
    throw Error(path + ": " + (have < want ? "truncated" : "oversized") + " .npy file: header promises shape " +
                shape_tuple(h.shape) + " of " + npy_descr(h.dtype) + " = " + std::to_string(want) +
                " data bytes, file holds " + std::to_string(have));
  return h;
}

}  // namespace

NpyHeader read_npy_header(const std::string& path) {
  std::ifstream f;
  return open_and_check(f, path);
}

template <class T>
NpyArray<T> read_npy(const std::string& path) {
  std::ifstream f;
  const NpyHeader h = open_and_check(f, path);
  if (h.dtype != npy_dtype_of<T>())
    throw Error(path + ": .npy dtype is '" + npy_descr(h.dtype) + "', expected '" + npy_descr(npy_dtype_of<T>()) + "'");
  NpyArray<T> a;
  a.shape = h.shape;
  a.data.resize(h.count());
  if (a.data.empty()) return a;
  f.seekg(static_cast<std::streamoff>(h.data_offset));
  f.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(h.data_bytes()));
  if (!f) throw Error(path + ": read error in the .npy data");
  return a;
}

template void write_npy<float>(const std::string&, const std::vector<std::int64_t>&, const float*, bool);
template void write_npy<double>(const std::string&, const std::vector<std::int64_t>&, const double*, bool);
template void write_npy<std::int64_t>(const std::string&, const std::vector<std::int64_t>&, const std::int64_t*, bool);
template NpyArray<float> read_npy<float>(const std::string&);
template NpyArray<double> read_npy<double>(const std::string&);
template NpyArray<std::int64_t> read_npy<std::int64_t>(const std::string&);

}  // namespace funnel
