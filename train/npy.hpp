#pragma once
// NumPy .npy files: format version 1.0 written, 1.0/2.0/3.0 read; little-endian float32 ('<f4'), float64 ('<f8')
// and int64 ('<i8'); C order only. Headers are padded with spaces so the data starts at a multiple of 64 bytes.
//
// The reader validates the magic string, the version, the header dict (descr, fortran_order, shape) and that the
// file holds exactly the bytes the header promises; every error names the file and what was expected.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace funnel {

enum class NpyDtype { F4, F8, I8 };
const char* npy_descr(NpyDtype t);  // "<f4", "<f8", "<i8"
std::size_t npy_itemsize(NpyDtype t);

template <class T>
constexpr NpyDtype npy_dtype_of();
template <>
constexpr NpyDtype npy_dtype_of<float>() { return NpyDtype::F4; }
template <>
constexpr NpyDtype npy_dtype_of<double>() { return NpyDtype::F8; }
template <>
constexpr NpyDtype npy_dtype_of<std::int64_t>() { return NpyDtype::I8; }

struct NpyHeader {
  NpyDtype dtype = NpyDtype::F4;
  std::vector<std::int64_t> shape;  // () for a scalar
  std::size_t data_offset = 0;      // where the data starts in the file
  std::size_t count() const;        // number of elements
  std::size_t data_bytes() const { return count() * npy_itemsize(dtype); }
};

template <class T>
struct NpyArray {
  std::vector<std::int64_t> shape;
  std::vector<T> data;
};

// The header alone (magic, version, length, padded dict): the data follows it (e.g. written in pieces).
std::string npy_header(NpyDtype dtype, const std::vector<std::int64_t>& shape);
// The whole file (header + data) in memory.
std::string npy_encode(NpyDtype dtype, const std::vector<std::int64_t>& shape, const void* data);
// Parse the header of an in-memory file; `source` names it in errors. Does not check the data size.
NpyHeader npy_parse_header(std::string_view bytes, const std::string& source);

// Write atomically enough for a checkpoint: with `sync`, the file is fsync'ed before returning. Throws Error
// naming the file on any I/O failure.
template <class T>
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const T* data, bool sync = false);
template <class T>
void write_npy(const std::string& path, const NpyArray<T>& a, bool sync = false) {
  write_npy(path, a.shape, a.data.data(), sync);
}

// Read a file whose dtype must be T's. Errors: unreadable file, bad magic/version/header, other dtype,
// fortran_order True, truncated or oversized data (the message has the expected and actual byte counts).
template <class T>
NpyArray<T> read_npy(const std::string& path);
NpyHeader read_npy_header(const std::string& path);

extern template void write_npy<float>(const std::string&, const std::vector<std::int64_t>&, const float*, bool);
extern template void write_npy<double>(const std::string&, const std::vector<std::int64_t>&, const double*, bool);
extern template void write_npy<std::int64_t>(const std::string&, const std::vector<std::int64_t>&,
                                             const std::int64_t*, bool);
extern template NpyArray<float> read_npy<float>(const std::string&);
extern template NpyArray<double> read_npy<double>(const std::string&);
extern template NpyArray<std::int64_t> read_npy<std::int64_t>(const std::string&);

}  // namespace funnel
