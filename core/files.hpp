#pragma once
/// @file
/// Output safety: how funnel writes a file it is asked to write, and how it reads files it did not write.
///
/// Writing (write_output_file):
///   - a regular file, or a name that does not exist yet, is replaced atomically: the bytes go to a temporary file
///     in the same directory as the real target (symlinks resolved), which is fsync'ed and renamed over it; the
///     old file's permission bits are kept. A reader sees the old or the new file, never half of one.
///   - anything else that exists (a device such as /dev/null or /dev/full, a FIFO, a socket) is written in place
///     and never renamed over; /dev/stdout, /dev/stderr, /dev/fd/N and /proc/self/fd/N write to that descriptor.
///   - a directory, a target in a directory that does not exist or cannot be written, a read-only file, and a
///     target that is one of the command's inputs (same device and inode, or inside an input directory) are
///     errors. check_output_target runs these checks without writing, so tools call it before long work.
///   - every write, fsync, close and rename error throws funnel::Error naming the file.
/// Standard output: finish_stdout flushes it at exit and turns any write error (a full disk, /dev/full, a closed
/// or broken stdout) into a non-zero exit code.
/// Reading (read_regular_file): opened without blocking, refused unless it is a regular file, size-bounded.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/io.hpp"  // write_all, the atomic replace behind write_output_file

namespace funnel {

/// `s` with control bytes, bytes >= 0x7f and (unless `escape_quotes` is false) quotes and backslashes shown as
/// `\xNN`, cut to `max_len` bytes (then "..."). Every piece of untrusted input that goes into a message passes
/// through this.
std::string printable(std::string_view s, std::size_t max_len = 120, bool escape_quotes = true);

/// How a path would be written.
struct OutputPlan {
  /// Replace: atomic replacement through a temporary sibling; InPlace: written where it is (a device, FIFO or
  /// socket); Descriptor: written to an already open descriptor (/dev/stdout, /dev/fd/N).
  enum class Kind { Replace, InPlace, Descriptor };
  Kind kind = Kind::Replace;  ///< how the target is written
  std::string path;       ///< as given
  std::string real_path;  ///< Replace: the real file (symlinks resolved) that gets replaced; else `path`
  int fd = -1;            ///< Descriptor: the descriptor written to
};

/// Decides how `path` would be written and checks it (see above). `inputs` are files or directories the command
/// reads; `what` names the target in messages (e.g. "--out"). Throws funnel::Error.
OutputPlan check_output_target(const std::string& path, const std::vector<std::string>& inputs = {},
                               const std::string& what = "output");

/// Checks `path` like check_output_target and writes `bytes` to it.
void write_output_file(const std::string& path, std::string_view bytes, const std::vector<std::string>& inputs = {},
                       const std::string& what = "output");

/// True when both paths exist and are the same file (device and inode).
bool same_file(const std::string& a, const std::string& b);

/// The real path of `path`: symlinks resolved (also a dangling one, to where it points), relative paths made
/// absolute. The path need not exist, but its directory must.
std::string resolve_path(const std::string& path);

/// Copies the file `src` to a checked target (check_output_target), in 1 MiB pieces: for outputs produced as a
/// file first (e.g. a data cache) that must reach a device, FIFO or descriptor target in place.
void copy_to_output(const std::string& src, const OutputPlan& target);

/// Throws funnel::Error unless `path` is a regular file (opened with O_NONBLOCK and fstat'ed: never blocks on a
/// FIFO). `what` says what the file was expected to be, for the message.
void check_regular_file(const std::string& path, const std::string& what = "");

/// Reads a whole regular file of at most `max_bytes`. The file is opened with O_NONBLOCK and checked with fstat
/// before any read, so a FIFO or device in its place is refused at once instead of blocking or never ending.
std::string read_regular_file(const std::string& path, std::size_t max_bytes);

/// Flushes stdout; on any error (now or earlier) prints "funnel: error: cannot write to standard output: ..." to
/// stderr and returns a non-zero code (rc when rc is already non-zero, else 1). Returns rc otherwise.
int finish_stdout(int rc);

}  // namespace funnel
