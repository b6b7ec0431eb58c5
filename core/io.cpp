#include "core/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"

namespace funnel {

namespace {

long system_write(int fd, const void* bytes, std::size_t n) { return ::write(fd, bytes, n); }
io_testing::WriteFn& write_fn() {
  static io_testing::WriteFn fn = &system_write;
  return fn;
}

std::string io_error_text(int e) { return std::strerror(e); }

bool path_exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string parent_of(const std::string& p) {
  const auto slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

}  // namespace

namespace io_testing {
WriteFn set_write_function(WriteFn fn) {
  const WriteFn old = write_fn();
  write_fn() = fn ? fn : &system_write;
  return old;
}
}  // namespace io_testing

namespace {
// Calls `write_some(p, n, done)` (a write of up to n bytes from p, done bytes in) until all n bytes are written,
// retrying EINTR; a call that writes nothing ends it with EIO.
template <class WriteSome>
WriteResult write_loop(const void* bytes, std::size_t n, WriteSome write_some) {
  WriteResult r;
  const auto* p = static_cast<const char*>(bytes);
  while (r.done < n) {
    const long w = write_some(p + r.done, n - r.done, r.done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      r.error = w < 0 ? errno : EIO;
      return r;
    }
    r.done += static_cast<std::size_t>(w);
  }
  return r;
}
}  // namespace

WriteResult write_fully(int fd, const void* bytes, std::size_t n) {
  return write_loop(bytes, n, [&](const char* p, std::size_t k, std::size_t) { return write_fn()(fd, p, k); });
}

WriteResult pwrite_fully(int fd, const void* bytes, std::size_t n, std::uint64_t off) {
  return write_loop(bytes, n, [&](const char* p, std::size_t k, std::size_t done) {
    return static_cast<long>(::pwrite(fd, p, k, static_cast<off_t>(off + done)));
  });
}

void write_all(int fd, std::string_view bytes, const std::string& name) {
  const WriteResult r = write_fully(fd, bytes.data(), bytes.size());
  if (r.error) throw Error(name + ": write failed: " + io_error_text(r.error));
}

void fsync_file(int fd, const std::string& name) {
  if (::fsync(fd) != 0) throw Error(name + ": fsync failed: " + io_error_text(errno));
}

void fsync_dir(const std::string& dir, bool must_open) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (must_open) throw Error(dir + ": cannot open directory to sync it: " + io_error_text(errno));
    return;
  }
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories (EINVAL); there is nothing more to do then.
  if (rc != 0 && e != EINVAL) throw Error(dir + ": fsync of the directory failed: " + io_error_text(e));
}

// ------------------------------------------------------------------------------------------------ SyncedFile
SyncedFile::SyncedFile(const std::string& path, int flags, unsigned mode) : path_(path) {
  if (flags < 0) flags = O_WRONLY | O_CREAT | O_TRUNC;
  fd_ = ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd_ < 0) throw Error(path + ": cannot create: " + io_error_text(errno));
}

SyncedFile::~SyncedFile() {
  if (fd_ >= 0) ::close(fd_);
}

void SyncedFile::write(const void* bytes, std::size_t n) {
  const WriteResult r = write_fully(fd_, bytes, n);
  if (r.error) throw Error(path_ + ": write failed: " + io_error_text(r.error));
}

void SyncedFile::finish(bool sync) {
  if (sync) fsync_file(fd_, path_);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw Error(path_ + ": close failed: " + io_error_text(errno));
}

void write_file_synced(const std::string& path, std::string_view bytes) {
  SyncedFile f(path);
  f.write(bytes);
  f.finish();
}

void replace_file_atomically(const std::string& real_path, std::string_view bytes, const std::string& shown) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = parent_of(real_path);
  const auto slash = real_path.rfind('/');
  const std::string base = slash == std::string::npos ? real_path : real_path.substr(slash + 1);
  const std::string tmp = (dir == "/" ? "/" : dir + "/") + "." + base + ".funnel-tmp-" +
                          std::to_string(::getpid()) + "-" + std::to_string(counter++);
  struct stat old {};
  const bool had_old = ::lstat(real_path.c_str(), &old) == 0;
  if (had_old && !S_ISREG(old.st_mode))
    throw Error(shown + ": is not a regular file (a symlink, FIFO, device or directory); refusing to replace it");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(shown + ": cannot create the temporary file " + printable(tmp) + ": " + io_error_text(errno));
  try {
    if (had_old) (void)::fchmod(fd, old.st_mode & 07777);
    write_all(fd, bytes, shown);
    fsync_file(fd, shown);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(shown + ": close failed: " + io_error_text(e));
  }
  if (::rename(tmp.c_str(), real_path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw Error(shown + ": cannot move the new file in place: " + io_error_text(e));
  }
  fsync_dir(dir, /*must_open=*/false);
}

// ------------------------------------------------------------------------------------------------ AtomicDir
AtomicDir::AtomicDir(std::string target, std::string shown, Options options)
    : target_(std::move(target)),
      shown_(std::move(shown)),
      tmp_(target_ + kTmpSuffix),
      old_(target_ + kOldSuffix),
      opt_(std::move(options)) {
  struct stat st {};
  if (::lstat(target_.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
    throw Error(shown_ + ": exists and is not a directory (a symlink, file, FIFO or device); refusing to replace it");
  // Leftovers of a commit that was killed: removed when their owner says they may be.
  for (const std::string& left : {tmp_, old_})
    if (path_exists(left) && !(opt_.discard && opt_.discard(left)))
      throw Error(shown_ + ": " + printable(left) + " is in the way and holds files funnel did not write; move it away");
  if (::mkdir(tmp_.c_str(), 0777) != 0)
    throw Error(printable(tmp_) + ": cannot create the temporary " + opt_.what + " directory: " + io_error_text(errno));
  try {
    write_file_synced(tmp_ + "/" + opt_.marker, "");
  } catch (...) {
    std::error_code ignore;
    std::filesystem::remove_all(tmp_, ignore);
    throw;
  }
}

AtomicDir::~AtomicDir() {
  if (done_) return;
  std::error_code ignore;
  std::filesystem::remove_all(tmp_, ignore);  // made by this object: the target is left as it was
}

void AtomicDir::commit() {
  auto stage = [&](std::string_view s) {
    if (opt_.stage) opt_.stage(s);
  };
  const std::string parent = parent_of(target_);
  if (::unlink((tmp_ + "/" + opt_.marker).c_str()) != 0)
    throw Error(printable(tmp_) + ": cannot finish: " + io_error_text(errno));
  fsync_dir(tmp_);
  stage("swap");
  if (!path_exists(target_)) {  // nothing to exchange with
    if (::rename(tmp_.c_str(), target_.c_str()) != 0)
      throw Error(shown_ + ": cannot move the new " + opt_.what + " " + printable(tmp_) + " in place: " +
                  io_error_text(errno));
    done_ = true;
    fsync_dir(parent);
    return;
  }
  const int rc = opt_.no_exchange ? (errno = EINVAL, -1)
                                  : ::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE);
  if (rc == 0) {
    done_ = true;  // tmp_ now holds the old contents
    fsync_dir(parent);
    if (opt_.discard) opt_.discard(tmp_);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
    throw Error(shown_ + ": cannot swap in the new " + opt_.what + " " + printable(tmp_) + ": " + io_error_text(errno));
  // No atomic exchange on this file system: move the old one aside, the new one in, then drop the old.
  if (::rename(target_.c_str(), old_.c_str()) != 0)
    throw Error(shown_ + ": cannot move the old " + opt_.what + " aside to " + printable(old_) + ": " +
                io_error_text(errno));
  try {
    stage("aside");
    if (::rename(tmp_.c_str(), target_.c_str()) != 0)
      throw Error(shown_ + ": cannot move the new " + opt_.what + " " + printable(tmp_) + " in place: " +
                  io_error_text(errno));
  } catch (...) {
    ::rename(old_.c_str(), target_.c_str());  // put the old one back
    throw;
  }
  done_ = true;
  fsync_dir(parent);
  if (opt_.discard) opt_.discard(old_);
}

}  // namespace funnel
