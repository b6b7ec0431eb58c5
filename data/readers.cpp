#include "data/readers.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "data/reader_util.hpp"

namespace funnel {
namespace detail {

MappedFile::MappedFile(const std::string& path, bool sequential) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error("cannot stat '" + path + "': " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("cannot read '" + path + "': it is a directory, expected a file");
  }
  if (S_ISREG(st.st_mode)) {
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (m == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw Error("cannot map '" + path + "': " + std::strerror(e));
      }
      if (sequential) ::madvise(m, size_, MADV_SEQUENTIAL);
      map_ = m;
      data_ = static_cast<const char*>(m);
    }
  } else {
    char buf[1 << 16];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        ::close(fd);
        throw Error("cannot read '" + path + "': " + std::strerror(e));
      }
      if (n == 0) break;
      fallback_.append(buf, static_cast<std::size_t>(n));
    }
    data_ = fallback_.data();
    size_ = fallback_.size();
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (map_) ::munmap(map_, size_);
}

void advise_huge_pages(const void* p, std::size_t bytes) {
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  if (bytes < 32 * kHuge) return;
  const auto b = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto e = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
#ifdef MADV_HUGEPAGE
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#else
  (void)b;
  (void)e;
#endif
}

std::string show(std::string_view s, std::size_t max_len) {
  std::string out;
  const std::size_t n = std::min(s.size(), max_len);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

void BadRows::handle(const std::string& file, std::int64_t line, const RowError& e, bool unterminated,
                     const char* prefix, bool counts_as_row) {
  std::string msg = file + ":" + std::to_string(line) + ": field '" + e.field + "': expected " + e.expected +
                    ", got '" + (e.got_owned.empty() ? show(e.got) : e.got_owned) + "'";
  if (unterminated) msg += " (the last line has no newline: is the file truncated?)";
  if (mode_ == OnBadRow::Error) throw Error(msg);
  rep_.skipped_by_reason[std::string(prefix) + e.reason] += 1;
  if (counts_as_row) rep_.rows_skipped += 1;
  if (rep_.first_errors.size() < 10) rep_.first_errors.push_back(std::move(msg));
}

void init_dataset(Dataset& d, const FeatureMap& map) {
  d = Dataset{};
  d.num_fields = map.num_fields();
  d.num_stages = 2;
  d.field_names = map.fields();
  d.dense_names = map.dense_names();
  d.num_dense = static_cast<std::int64_t>(d.dense_names.size());
}

void finish_dataset(Dataset& d, FeatureMap& map, const ReadReport& rep, const std::string& name) {
  if (d.rows() == 0 && rep.rows_kept == 0) {
    std::string why = name + ": no valid rows (read " + std::to_string(rep.rows_read) + ", skipped " +
                      std::to_string(rep.rows_skipped);
    for (const auto& [k, v] : rep.skipped_by_reason) why += ", " + k + "=" + std::to_string(v);
    why += ")";
    if (!rep.first_errors.empty()) why += "; first: " + rep.first_errors.front();
    throw Error(why);
  }
  map.finish(d.ids, d.block_ids);
  d.vocab = map.vocab();
}

}  // namespace detail

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

}  // namespace

std::vector<std::string> dataset_spec_inputs(const std::string& spec) {
  for (const char* p : {"csv:", "slots:", "cache:"})
    if (starts_with(spec, p)) return {spec.substr(std::strlen(p))};
  if (starts_with(spec, "aliccp:")) {
    std::string dir = spec.substr(7), split = "train";
    const auto colon = dir.rfind(':');
    if (colon != std::string::npos) {
      split = dir.substr(colon + 1);
      dir = dir.substr(0, colon);
    }
    return {dir + "/sample_skeleton_" + split + ".csv", dir + "/common_features_" + split + ".csv"};
  }
  return {};
}

std::string dataset_spec_help() {
  return "csv:FILE (CSV with header: click, purchase|conversion, categorical columns, dense D* columns), "
         "slots:FILE (sample_id,click,conversion,field:feature,...), "
         "aliccp:DIR[:train|:test] (raw Ali-CCP sample_skeleton_*.csv + common_features_*.csv), "
         "cache:FILE (binary cache written by write_cache)";
}

OnBadRow parse_on_bad_row(std::string_view s) {
  if (s == "error") return OnBadRow::Error;
  if (s == "skip") return OnBadRow::Skip;
  throw Error("on_bad_row: expected 'error' or 'skip', got '" + std::string(s) + "'");
}

PoolWeights parse_pool_weights(std::string_view s) {
  if (s == "ones") return PoolWeights::Ones;
  if (s == "values") return PoolWeights::Values;
  throw Error("pooling weights: expected 'ones' or 'values', got '" + std::string(s) + "'");
}

Dataset read_dataset(const std::string& spec, const ReadOptions& options, FeatureMap& map, ReadReport* report) {
  if (options.max_rows < 0) throw Error("max_rows: expected >= 0, got " + std::to_string(options.max_rows));
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep = ReadReport{};
  rep.source = spec;
  if (starts_with(spec, "csv:") || starts_with(spec, "slots:")) {
    const bool csv = starts_with(spec, "csv:");
    const std::string file = spec.substr(csv ? 4 : 6);
    if (file.empty()) throw Error("dataset spec '" + spec + "': expected a file name after the colon");
    detail::MappedFile mf(file, true);
    return csv ? read_csv_buffer(mf.view(), file, options, map, &rep)
               : read_slots_buffer(mf.view(), file, options, map, &rep);
  }
  if (starts_with(spec, "aliccp:")) {
    std::string dir = spec.substr(7);
    std::string split = "train";
    const auto colon = dir.rfind(':');
    if (colon != std::string::npos) {
      split = dir.substr(colon + 1);
      dir = dir.substr(0, colon);
      if (split != "train" && split != "test")
        throw Error("dataset spec '" + spec + "': expected split 'train' or 'test' after the last colon, got '" +
                    split + "'");
    }
    if (dir.empty()) throw Error("dataset spec '" + spec + "': expected a directory after 'aliccp:'");
    std::error_code ec;
    const auto st = std::filesystem::status(dir, ec);
    if (ec || !std::filesystem::exists(st))
      throw Error("aliccp: cannot read directory '" + dir + "': " + (ec ? ec.message() : "it does not exist"));
    if (!std::filesystem::is_directory(st))
      throw Error("aliccp: '" + dir + "' is not a directory (expected the Ali-CCP release directory)");
    const std::string skel = dir + "/sample_skeleton_" + split + ".csv";
    const std::string common = dir + "/common_features_" + split + ".csv";
    detail::MappedFile cf(common, false);
    detail::MappedFile sf(skel, true);
    return read_aliccp_buffers(sf.view(), skel, cf.view(), common, options, map, &rep);
  }
  if (starts_with(spec, "cache:")) {
    const std::string file = spec.substr(6);
    if (file.empty()) throw Error("dataset spec '" + spec + "': expected a file name after the colon");
    return read_cache(file, map, &rep);
  }
  throw Error("dataset spec: expected one of " + dataset_spec_help() + "; got '" + spec + "'");
}

}  // namespace funnel
