#include "serving/mapped_table.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/error.hpp"
#include "train/checkpoint.hpp"
#include "train/npy.hpp"

namespace funnel {

namespace {

std::string dims(const std::vector<std::int64_t>& s) {
  std::string o = "(";
  for (std::size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + ")";
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MappedTable::MappedTable(const std::string& dir, const CheckpointParam& p) : path_(dir + "/" + p.file) {
  const std::string what = " (the embedding table '" + p.name + "' of the checkpoint)";
  if (p.shape.size() != 2 || p.shape[0] < 1 || p.shape[1] < 1)
    throw Error(path_ + ": the manifest gives shape " + dims(p.shape) + what + ", expected rows × dim");
  Fd f;
  f.fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f.fd < 0) throw Error(path_ + ": cannot open" + what + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw Error(path_ + ": cannot stat" + what + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw Error(path_ + ": not a regular file" + what);
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < 16) throw Error(path_ + ": truncated" + what + ": " + std::to_string(size) + " bytes, shorter than a .npy header");
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (m == MAP_FAILED) throw Error(path_ + ": cannot map" + what + ": " + std::strerror(errno));
  map_ = m;
  map_bytes_ = size;
  try {
    const std::string_view bytes(static_cast<const char*>(map_), size);
    const NpyHeader h = npy_parse_header(bytes, path_);
    if (h.dtype != NpyDtype::F4)
      throw Error(path_ + ": dtype " + npy_descr(h.dtype) + what + ", expected <f4 (float32)");
    if (h.shape != p.shape)
      throw Error(path_ + ": holds shape " + dims(h.shape) + " but the manifest says " + dims(p.shape) + what);
    const std::size_t want = h.data_offset + h.data_bytes();
    if (size != want)
      throw Error(path_ + ": " + (size < want ? "truncated" : "too long") + what + ": " + std::to_string(size) +
                  " bytes, the header promises " + std::to_string(want));
    if (h.data_offset % 64 != 0)
      throw Error(path_ + ": the data starts at byte " + std::to_string(h.data_offset) + what +
                  ", expected a multiple of 64 (an aligned .npy, as funnel writes)");
    data_ = reinterpret_cast<const float*>(static_cast<const char*>(map_) + h.data_offset);
    rows_ = p.shape[0];
    dim_ = p.shape[1];
    ::madvise(map_, size, MADV_SEQUENTIAL);
    const std::string sum = checkpoint_checksum(data_, h.data_bytes());
    if (sum != p.checksum)
      throw Error(path_ + ": checksum mismatch" + what + ": the manifest says " + p.checksum + ", the data has " +
                  sum + " (the file is corrupt)");
    // The pass above paged the whole file in; give the pages back (they stay in the page cache) and let the rows a
    // request reads come in one at a time.
    ::madvise(map_, size, MADV_DONTNEED);
    ::madvise(map_, size, MADV_RANDOM);
  } catch (...) {
    unmap();
    throw;
  }
}

void MappedTable::unmap() {
  if (map_) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
  data_ = nullptr;
}

MappedTable::~MappedTable() { unmap(); }

MappedTable::MappedTable(MappedTable&& o) noexcept
    : path_(std::move(o.path_)), map_(std::exchange(o.map_, nullptr)), map_bytes_(std::exchange(o.map_bytes_, 0)),
      data_(std::exchange(o.data_, nullptr)), rows_(o.rows_), dim_(o.dim_) {}

MappedTable& MappedTable::operator=(MappedTable&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
    data_ = std::exchange(o.data_, nullptr);
    rows_ = o.rows_;
    dim_ = o.dim_;
  }
  return *this;
}

void MappedTableStorage::bind(Tensor<float>& lookup, SparseRows<float>* grad) {
  lookup = Tensor<float>::from_shape({std::size_t{0}, static_cast<std::size_t>(t_.dim())});
  if (grad) grad->init(0, t_.dim());
}

void MappedTableStorage::apply(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) {
  throw Error(t_.path() + ": a memory-mapped embedding table is read-only; it cannot be updated");
}

void MappedTableStorage::apply_lookup(const SparseRows<float>& g, RowUpdateRule<float>& rule, std::int64_t t) {
  apply(g, rule, t);
}

void MappedTableStorage::make_slots(std::size_t, const float*) {
  throw Error(t_.path() + ": a memory-mapped embedding table is read-only; it has no optimizer state");
}

}  // namespace funnel
