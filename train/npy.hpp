#pragma once
/// @file
/// NumPy .npy files: format version 1.0 written, 1.0/2.0/3.0 read; little-endian float32 ('<f4'), float64 ('<f8')
/// and int64 ('<i8'); C order only. Headers are padded with spaces so the data starts at a multiple of 64 bytes.
///
/// The reader validates the magic string, the version, the header dict (descr, fortran_order, shape) and that the
/// file holds exactly the bytes the header promises; every error names the file and what was expected.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace funnel {

/// The element types funnel reads and writes, all little-endian.
enum class NpyDtype { F4 /**< float32 */, F8 /**< float64 */, I8 /**< int64 */ };
const char* npy_descr(NpyDtype t);  ///< the header's descr string: "<f4", "<f8", "<i8"
std::size_t npy_itemsize(NpyDtype t);  ///< bytes per element: 4 or 8

/// The NpyDtype of element type T (float, double or std::int64_t; no other type is defined).
template <class T>
constexpr NpyDtype npy_dtype_of();
/// float: NpyDtype::F4.
template <>
constexpr NpyDtype npy_dtype_of<float>() { return NpyDtype::F4; }
/// double: NpyDtype::F8.
template <>
constexpr NpyDtype npy_dtype_of<double>() { return NpyDtype::F8; }
/// std::int64_t: NpyDtype::I8.
template <>
constexpr NpyDtype npy_dtype_of<std::int64_t>() { return NpyDtype::I8; }

/// A parsed .npy header: what the data bytes after it hold.
struct NpyHeader {
  NpyDtype dtype = NpyDtype::F4;  ///< the element type
  std::vector<std::int64_t> shape;  ///< the dimensions, C order; () for a scalar
  std::size_t data_offset = 0;      ///< where the data starts in the file (bytes)
  std::size_t count() const;        ///< number of elements (the product of shape; 1 for a scalar)
  /// Bytes of data the header promises: count() × the element size.
  std::size_t data_bytes() const { return count() * npy_itemsize(dtype); }
};

/// A whole array in memory: its shape and its elements in C order.
template <class T>
struct NpyArray {
  std::vector<std::int64_t> shape;  ///< the dimensions; () for a scalar
  std::vector<T> data;              ///< the product of shape elements, row-major
};

/// The header alone (magic, version, length, padded dict): the data follows it (e.g. written in pieces).
std::string npy_header(NpyDtype dtype, const std::vector<std::int64_t>& shape);
/// The whole file (header + data) in memory; `data` holds the product of `shape` elements of `dtype`.
std::string npy_encode(NpyDtype dtype, const std::vector<std::int64_t>& shape, const void* data);
/// Parse the header of an in-memory file; `source` names it in errors. Does not check the data size. Throws
/// funnel::Error on a bad magic string, version or header dict, another dtype than the three, or fortran_order
/// True.
NpyHeader npy_parse_header(std::string_view bytes, const std::string& source);

/// Writes an array to `path` (created or replaced in place: atomicity is the caller's, as a checkpoint writes
/// into a temporary directory); with `sync`, the file is fsync'ed before returning. `data` holds the product of
/// `shape` elements. T is float, double or std::int64_t. Throws Error naming the file on any I/O failure.
///@{
template <class T>
void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const T* data, bool sync = false);
template <class T>
void write_npy(const std::string& path, const NpyArray<T>& a, bool sync = false) {
  write_npy(path, a.shape, a.data.data(), sync);
}
///@}

/// Read a file whose dtype must be T's. Errors: unreadable file, bad magic/version/header, other dtype,
/// fortran_order True, truncated or oversized data (the message has the expected and actual byte counts).
template <class T>
NpyArray<T> read_npy(const std::string& path);
/// The header of the .npy file at `path`, checked as read_npy checks it (the file size included), without reading
/// the data.
NpyHeader read_npy_header(const std::string& path);

/// The instantiations train/npy.cpp compiles: write_npy and read_npy for float, double and std::int64_t.
///@{
extern template void write_npy<float>(const std::string&, const std::vector<std::int64_t>&, const float*, bool);
extern template void write_npy<double>(const std::string&, const std::vector<std::int64_t>&, const double*, bool);
extern template void write_npy<std::int64_t>(const std::string&, const std::vector<std::int64_t>&,
                                             const std::int64_t*, bool);
extern template NpyArray<float> read_npy<float>(const std::string&);
extern template NpyArray<double> read_npy<double>(const std::string&);
extern template NpyArray<std::int64_t> read_npy<std::int64_t>(const std::string&);
///@}

}  // namespace funnel
