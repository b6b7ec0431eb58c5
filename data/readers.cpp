#include "data/readers.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/files.hpp"

#include "data/data_error.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace detail {

namespace {

// SIGBUS guard for mapped input files: a table of mappings, each with a "faulted" flag. A fault inside one maps
// zero pages from the faulting page to the end of that mapping (so the reader finishes on harmless zeros) and
// marks it; MappedFile::check_unchanged then reports the file. Faults elsewhere go to the previous handler.
struct GuardSlot {
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> len{0};
  std::atomic<int> faulted{0};
};
constexpr int kGuardSlots = 64;
GuardSlot g_guard[kGuardSlots];
struct sigaction g_prev_bus {};
std::once_flag g_guard_once;
std::uintptr_t g_page = 4096;

extern "C" void on_sigbus(int sig, siginfo_t* si, void* ctx) {
  const auto a = reinterpret_cast<std::uintptr_t>(si->si_addr);
  for (auto& s : g_guard) {
    const std::uintptr_t b = s.base.load();
    const std::size_t n = s.len.load();
    if (b && a >= b && a < b + n) {
      const std::uintptr_t page = a & ~(g_page - 1);
      const std::uintptr_t end = (b + n + g_page - 1) & ~(g_page - 1);
      void* m = ::mmap(reinterpret_cast<void*>(page), end - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                       -1, 0);
      if (m != MAP_FAILED) {
        s.faulted.store(1);
        return;  // the faulting read is retried and sees zeros
      }
    }
  }
  if ((g_prev_bus.sa_flags & SA_SIGINFO) && g_prev_bus.sa_sigaction) {
    g_prev_bus.sa_sigaction(sig, si, ctx);
  } else if (g_prev_bus.sa_handler != SIG_DFL && g_prev_bus.sa_handler != SIG_IGN) {
    g_prev_bus.sa_handler(sig);
  } else {
    ::signal(SIGBUS, SIG_DFL);  // returning re-runs the access, which now ends the process as usual
  }
}

int guard_mapping(const void* base, std::size_t len) {
  std::call_once(g_guard_once, [] {
    g_page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_prev_bus);
  });
  for (int i = 0; i < kGuardSlots; ++i) {
    std::uintptr_t expected = 0;
    if (g_guard[i].base.load() == 0) {
      g_guard[i].faulted.store(0);
      g_guard[i].len.store(len);
      if (g_guard[i].base.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(base))) return i;
    }
  }
  return -1;  // table full: unguarded (the fstat check still runs)
}

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

MappedFile::MappedFile(const std::string& path, bool sequential) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error("cannot open '" + printable(path) + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error("cannot stat '" + printable(path) + "': " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error("cannot read '" + printable(path) + "': it is a directory, expected a file");
  }
  if (S_ISREG(st.st_mode)) {
    size_ = static_cast<std::size_t>(st.st_size);
    mtime_ns_ = mtime_ns(st);
    if (size_ > 0) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (m == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw Error("cannot map '" + printable(path) + "': " + std::strerror(e));
      }
      if (sequential) ::madvise(m, size_, MADV_SEQUENTIAL);
      map_ = m;
      data_ = static_cast<const char*>(m);
      guard_ = guard_mapping(m, size_);
    }
    fd_ = fd;  // kept open for check_unchanged
    return;
  }
  // A pipe or other stream: read it whole (blocking reads from here on).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw Error("cannot read '" + printable(path) + "': " + std::strerror(e));
    }
    if (n == 0) break;
    fallback_.append(buf, static_cast<std::size_t>(n));
  }
  data_ = fallback_.data();
  size_ = fallback_.size();
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (guard_ >= 0) {
    g_guard[guard_].len.store(0);
    g_guard[guard_].base.store(0);
  }
  if (map_) ::munmap(map_, size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::check_unchanged() const {
  if (fd_ < 0) return;
  const std::string shown = printable(path_);
  struct stat st {};
  const bool faulted = guard_ >= 0 && g_guard[guard_].faulted.load();
  if (::fstat(fd_, &st) != 0) throw Error(shown + ": cannot stat it after reading: " + std::strerror(errno));
  if (faulted || static_cast<std::size_t>(st.st_size) != size_)
    throw Error(shown + ": the file changed while it was read (it had " + std::to_string(size_) + " bytes, now " +
                std::to_string(st.st_size) + "): read it again once nothing writes to it");
  if (mtime_ns(st) != mtime_ns_)
    throw Error(shown + ": the file was modified while it was read: read it again once nothing writes to it");
}

namespace {
// madvise(advice) over the whole `align`-aligned blocks inside [p, p + bytes) (advisory: failures are ignored).
[[maybe_unused]] void advise_inside(const void* p, std::size_t bytes, std::uintptr_t align, int advice) {
  const auto b = (reinterpret_cast<std::uintptr_t>(p) + align - 1) & ~(align - 1);
  const auto e = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(align - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, advice);
}
}  // namespace

void advise_huge_pages(const void* p, std::size_t bytes) {
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  if (bytes < 32 * kHuge) return;
#ifdef MADV_HUGEPAGE
  advise_inside(p, bytes, kHuge, MADV_HUGEPAGE);
#else
  (void)p;
#endif
}

void release_pages(const void* p, std::size_t bytes) {
#ifdef MADV_PAGEOUT
  advise_inside(p, bytes, static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE)), MADV_PAGEOUT);
#else
  (void)p;
  (void)bytes;
#endif
}

std::string show(std::string_view s, std::size_t max_len) { return printable(s, max_len, false); }

void BadRows::handle(const std::string& file, std::int64_t line, const RowError& e, bool unterminated,
                     const char* prefix, bool counts_as_row) {
  std::string msg = file + ":" + std::to_string(line) + ": field '" + e.field + "': expected " + e.expected +
                    ", got '" + (e.got_owned.empty() ? show(e.got) : e.got_owned) + "'";
  if (unterminated) msg += " (the last line, which has no line end: was the file cut short?)";
  if (mode_ == OnBadRow::Error) throw DataError(file, line, e.field, msg);
  rep_.skipped_by_reason[std::string(prefix) + e.reason] += 1;
  if (counts_as_row) {
    rep_.rows_skipped += 1;
    rep_.skipped_rows.push_back(rep_.rows_read);  // the reader counted the row before judging it
  }
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

std::string read_summary(const ReadReport& rep) {
  std::string out;
  if (rep.rows_skipped > 0) {
    out += "skipped " + std::to_string(rep.rows_skipped) + " of " + std::to_string(rep.rows_read) + " rows:";
    for (const auto& [k, v] : rep.skipped_by_reason)
      if (k.rfind("common:", 0) != 0) out += " " + k + "=" + std::to_string(v);
    out += "\n";
  }
  if (rep.common_rows_skipped > 0) {
    out += "common features file: skipped " + std::to_string(rep.common_rows_skipped) + " of " +
           std::to_string(rep.common_rows) + " rows:";
    for (const auto& [k, v] : rep.skipped_by_reason)
      if (k.rfind("common:", 0) == 0) out.append(" ").append(k, 7).append("=").append(std::to_string(v));
    out += " (" + std::to_string(rep.common_rows_unused) +
           " of them used by no sample; the samples using the others are counted as unknown_common_index)\n";
  }
  if (!rep.ignored_columns.empty()) {
    out += "ignored " + std::to_string(rep.ignored_columns.size()) + " column(s) the feature map does not know:";
    for (const auto& c : rep.ignored_columns) {
      out += ' ';
      out += printable(c, 60);
    }
    out += "\n";
  }
  if (!rep.dropped_features.empty()) {
    std::int64_t n = 0;
    for (const auto& [k, v] : rep.dropped_features) n += v;
    out += "dropped " + std::to_string(n) + " feature(s) of fields the feature map does not know:";
    for (const auto& [k, v] : rep.dropped_features) out += " " + k + "=" + std::to_string(v);
    out += "\n";
  }
  if (rep.unterminated_last_line)
    out += "note: the last line has no line end; it was read as a complete row (a row cut short fails its checks)\n";
  if (rep.stopped_at_max_rows) out += "stopped at --max-rows " + std::to_string(rep.rows_kept) + "\n";
  return out;
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

}  // namespace funnel
