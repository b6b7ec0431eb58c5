#pragma once
/// @file
/// The low-level writing funnel's outputs share: writing every byte (short writes and EINTR retried), fsync of a
/// file and of a directory, a whole file written and synced, a file replaced atomically (temporary sibling, fsync,
/// rename), and a directory replaced atomically (temporary sibling with an in-progress marker, renameat2 exchange,
/// rollback). Every failure is a funnel::Error naming the path. What may be written at all (a device, FIFO or
/// symlink target; a file funnel did not create) is decided by the callers (core/files.hpp, the checkpoint); this
/// module only writes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace funnel {

/// How far a write loop got: `error` is 0 on success, else the errno that stopped it; `done` bytes were written.
struct WriteResult {
  int error = 0;          ///< 0, or the errno of the failed write (EIO when a write made no progress)
  std::size_t done = 0;   ///< bytes written before it stopped
};

/// Writes `n` bytes to `fd`, retrying short writes and EINTR; never throws (for callers with their own messages).
WriteResult write_fully(int fd, const void* bytes, std::size_t n);
/// Writes `n` bytes to `fd` at offset `off` (pwrite), retrying short writes and EINTR; never throws.
WriteResult pwrite_fully(int fd, const void* bytes, std::size_t n, std::uint64_t off);

/// Writes all of `bytes` to `fd` (retrying short writes and EINTR); throws funnel::Error "NAME: write failed: ...".
void write_all(int fd, std::string_view bytes, const std::string& name);

/// fsync(fd); throws funnel::Error "NAME: fsync failed: ..." on failure.
void fsync_file(int fd, const std::string& name);

/// fsyncs the directory `dir` (so a rename or unlink in it is durable). A file system without fsync on
/// directories (EINVAL) is accepted. When the directory cannot be opened: an Error when `must_open`, else nothing.
void fsync_dir(const std::string& dir, bool must_open = true);

/// A file descriptor opened for writing and closed by its owner: write(), then finish() to fsync and close (every
/// failure an Error naming the path). Destroyed unfinished it closes quietly (the file stays as it is).
class SyncedFile {
 public:
  /// Opens `path` with open(2) `flags` (O_WRONLY | O_CREAT | O_TRUNC by default) and `mode`; throws
  /// "PATH: cannot create: ..." on failure. O_CLOEXEC is always added.
  explicit SyncedFile(const std::string& path, int flags = -1, unsigned mode = 0644);
  ~SyncedFile();
  SyncedFile(const SyncedFile&) = delete;
  SyncedFile& operator=(const SyncedFile&) = delete;
  /// Appends `n` bytes; throws "PATH: write failed: ...".
  void write(const void* bytes, std::size_t n);
  /// Appends `bytes`; throws "PATH: write failed: ...".
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  /// With `sync`, fsyncs ("PATH: fsync failed: ..."); then closes ("PATH: close failed: ...").
  void finish(bool sync = true);
  /// The descriptor (-1 once finished).
  int fd() const { return fd_; }
  /// The path as opened.
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

/// Creates (or truncates) `path`, writes `bytes`, fsyncs and closes it. Errors name the path.
void write_file_synced(const std::string& path, std::string_view bytes);

/// Replaces the regular file (or the name that does not exist yet) `real_path` atomically: `bytes` go to a new
/// temporary file beside it (".NAME.funnel-tmp-PID-N"), which is fsync'ed and renamed over it, then the directory
/// is fsync'ed. The old file's permission bits are kept. On any failure the temporary file is removed and the old
/// file is left as it was. Errors start with `shown` (the name the user gave). The caller decides whether the
/// file may be replaced at all (core/files.hpp: not an input; symlinks resolved); anything at `real_path` that is
/// not a regular file (a symlink, FIFO, device or directory) is refused here too.
void replace_file_atomically(const std::string& real_path, std::string_view bytes, const std::string& shown);

/// Test seams of the I/O module. Not thread-safe.
namespace io_testing {
/// The write(2) the module calls.
using WriteFn = long (*)(int fd, const void* bytes, std::size_t n);
/// Makes the module call `fn` instead of write(2) (nullptr: write(2) again); returns the previous one. Lets a
/// test simulate short writes, EINTR and a full disk.
WriteFn set_write_function(WriteFn fn);
}  // namespace io_testing

/// A directory replaced as a whole, atomically. The new contents are written into a temporary sibling
/// (TARGET.funnel-tmp, holding an in-progress marker file from the start); commit() removes the marker, fsyncs,
/// and exchanges the sibling with TARGET in one step (renameat2 RENAME_EXCHANGE; where the file system lacks it,
/// TARGET is renamed aside to TARGET.funnel-old first and the new one moved in, putting the old one back if that
/// fails), fsyncs the parent and discards the old version. Destroyed before commit() (an exception on the way), it
/// removes the temporary sibling: TARGET is left as it was.
class AtomicDir {
 public:
  /// Suffix of the temporary sibling.
  static constexpr const char* kTmpSuffix = ".funnel-tmp";
  /// Suffix of the old version moved aside (only where there is no exchange).
  static constexpr const char* kOldSuffix = ".funnel-old";

  /// What the owner of the directory decides.
  struct Options {
    /// The name of the in-progress marker file inside the temporary sibling.
    std::string marker = "funnel-save-in-progress";
    /// Removes a directory this kind of commit left behind (a stale sibling, the old version); returns false when
    /// it holds something that must not be removed (then it is left in place).
    std::function<bool(const std::string& dir)> discard;
    /// Called at named points: "swap" before the exchange, "aside" between moving the old version aside and the
    /// new one in (no-exchange path). A hook that throws simulates a failure there. May be empty.
    std::function<void(std::string_view stage)> stage;
    /// Pretend the file system lacks RENAME_EXCHANGE (to test the rename-aside path).
    bool no_exchange = false;
    /// What the directory is, in messages ("cannot swap in the new checkpoint ...").
    std::string what = "directory";
  };

  /// Prepares replacing `target` (a real path; its parent exists; an existing target must be a directory, not a
  /// symlink or anything else: an Error otherwise): removes stale TARGET.funnel-tmp and
  /// TARGET.funnel-old siblings through options.discard (an Error starting with `shown` when one may not be
  /// removed), creates TARGET.funnel-tmp and its marker (fsync'ed).
  AtomicDir(std::string target, std::string shown, Options options);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  /// The temporary sibling the new contents go to.
  const std::string& path() const { return tmp_; }
  /// The directory being replaced.
  const std::string& target() const { return target_; }
  /// Makes the new contents TARGET (see the class comment); throws funnel::Error and rolls back on failure.
  void commit();

 private:
  std::string target_, shown_, tmp_, old_;
  Options opt_;
  bool done_ = false;
};

}  // namespace funnel
