#include "core/files.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/io.hpp"

namespace funnel {

namespace {

std::string err_str(int e) { return std::strerror(e); }

std::string dir_of(const std::string& p) {
  const auto slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string base_of(const std::string& p) {
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// The descriptor a path like /dev/stdout or /proc/self/fd/3 stands for, or -1.
int descriptor_of(const std::string& path) {
  if (path == "-" || path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (const char* prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    const std::size_t n = std::strlen(prefix);
    if (path.compare(0, n, prefix) == 0 && path.size() > n && path.size() < n + 6) {
      int fd = 0;
      for (std::size_t i = n; i < path.size(); ++i) {
        if (path[i] < '0' || path[i] > '9') return -1;
        fd = fd * 10 + (path[i] - '0');
      }
      return fd;
    }
  }
  return -1;
}

// True if `inner` (a real path) is `outer` or lies inside it (`outer` a real path too).
bool inside(const std::string& inner, const std::string& outer) {
  if (outer == "/") return true;
  return inner == outer || (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                            inner[outer.size()] == '/');
}

}  // namespace

std::string printable(std::string_view s, std::size_t max_len, bool escape_quotes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  const std::size_t n = std::min(s.size(), max_len);
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || (escape_quotes && (c == '\'' || c == '"' || c == '\\'))) {
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

std::string resolve_path(const std::string& path_in) {
  if (path_in.empty()) throw Error("empty file name");
  std::string path = path_in;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      char real[PATH_MAX];
      if (::realpath(path.c_str(), real)) return real;  // the symlink chain ends in something that exists
      // Dangling: follow one link by hand.
      char buf[PATH_MAX];
      const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
      if (n < 0) throw Error(printable(path_in) + ": cannot read the symbolic link: " + err_str(errno));
      const std::string to(buf, static_cast<std::size_t>(n));
      path = to.front() == '/' ? to : join(dir_of(path), to);
      continue;
    }
    const std::string dir = dir_of(path), name = base_of(path);
    if (name.empty() || name == "." || name == "..") {
      char real[PATH_MAX];
      if (!::realpath(path.c_str(), real)) throw Error(printable(path_in) + ": " + err_str(errno));
      return real;
    }
    char real[PATH_MAX];
    if (!::realpath(dir.c_str(), real))
      throw Error(printable(path_in) + ": the directory " + printable(dir) + " " +
                  (errno == ENOENT ? std::string("does not exist") : "cannot be used: " + err_str(errno)));
    return join(real, name);
  }
  throw Error(printable(path_in) + ": too many levels of symbolic links");
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

OutputPlan check_output_target(const std::string& path, const std::vector<std::string>& inputs,
                               const std::string& what) {
  const std::string shown = what + " " + printable(path);
  if (path.empty()) throw Error(what + ": empty file name");
  OutputPlan plan;
  plan.path = path;
  plan.real_path = path;
  if (const int fd = descriptor_of(path); fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(shown + ": descriptor " + std::to_string(fd) + " is not open");
    plan.kind = OutputPlan::Kind::Descriptor;
    plan.fd = fd;
    for (const auto& in : inputs) {
      struct stat si {};
      if (::stat(in.c_str(), &si) == 0 && S_ISREG(st.st_mode) && si.st_dev == st.st_dev && si.st_ino == st.st_ino)
        throw Error(shown + ": is the input " + printable(in) + "; refusing to overwrite an input");
    }
    return plan;
  }
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw Error(shown + ": cannot use it: " + err_str(errno));
  if (exists && S_ISDIR(st.st_mode)) throw Error(shown + ": is a directory, expected a file name");
  if (exists && !S_ISREG(st.st_mode)) {
    // Devices, FIFOs, sockets: written in place, never replaced.
    plan.kind = OutputPlan::Kind::InPlace;
    if (::access(path.c_str(), W_OK) != 0) throw Error(shown + ": cannot write to it: " + err_str(errno));
    return plan;
  }
  plan.kind = OutputPlan::Kind::Replace;
  try {
    plan.real_path = resolve_path(path);
  } catch (const Error& e) {
    throw Error(what + " " + e.what());
  }
  const std::string dir = dir_of(plan.real_path);
  struct stat sd {};
  if (::stat(dir.c_str(), &sd) != 0 || !S_ISDIR(sd.st_mode))
    throw Error(shown + ": the directory " + printable(dir) + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(shown + ": cannot create files in " + printable(dir) + ": " + err_str(errno));
  if (exists && ::access(plan.real_path.c_str(), W_OK) != 0)
    throw Error(shown + ": the file is not writable (" + err_str(errno) + "); refusing to replace it");
  for (const auto& in : inputs) {
    struct stat si {};
    if (::stat(in.c_str(), &si) != 0) continue;
    if (S_ISDIR(si.st_mode)) {
      char real[PATH_MAX];
      if (::realpath(in.c_str(), real) && inside(plan.real_path, real))
        throw Error(shown + ": lies inside the input directory " + printable(in) +
                    "; refusing to write into an input");
    } else if (exists && si.st_dev == st.st_dev && si.st_ino == st.st_ino) {
      throw Error(shown + ": is the input " + printable(in) + "; refusing to overwrite an input");
    }
  }
  return plan;
}

void write_output_file(const std::string& path, std::string_view bytes, const std::vector<std::string>& inputs,
                       const std::string& what) {
  const OutputPlan plan = check_output_target(path, inputs, what);
  const std::string shown = printable(path);
  if (plan.kind == OutputPlan::Kind::Descriptor) {
    if (plan.fd == 1) std::fflush(stdout);
    if (plan.fd == 2) std::fflush(stderr);
    write_all(plan.fd, bytes, shown);
    return;
  }
  if (plan.kind == OutputPlan::Kind::InPlace) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) throw Error(shown + ": cannot open for writing: " + err_str(errno));
    try {
      write_all(fd, bytes, shown);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) throw Error(shown + ": close failed: " + err_str(errno));
    return;
  }
  replace_file_atomically(plan.real_path, bytes, shown);
}

namespace {
// Opens `path` for reading without blocking and checks that it is a regular file; returns the descriptor.
int open_regular(const std::string& path, struct stat& st, const std::string& what) {
  const std::string shown = printable(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw Error(shown + ": cannot open: " + err_str(errno) + (what.empty() ? "" : " (" + what + ")"));
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(shown + ": cannot stat: " + err_str(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw Error(shown + ": is " + std::string(kind) + ", expected a regular file" +
                (what.empty() ? "" : " (" + what + ")"));
  }
  return fd;
}
}  // namespace

void check_regular_file(const std::string& path, const std::string& what) {
  struct stat st {};
  ::close(open_regular(path, st, what));
}

void copy_to_output(const std::string& src, const OutputPlan& target) {
  struct stat st {};
  const int in = open_regular(src, st, "");
  const std::string shown = printable(target.path);
  int out = target.fd;
  if (target.kind == OutputPlan::Kind::Descriptor) {
    if (out == 1) std::fflush(stdout);
  } else {
    out = ::open(target.kind == OutputPlan::Kind::Replace ? target.real_path.c_str() : target.path.c_str(),
                 O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (out < 0) {
      const int e = errno;
      ::close(in);
      throw Error(shown + ": cannot open for writing: " + err_str(e));
    }
  }
  std::string buf(1 << 20, '\0');
  try {
    for (;;) {
      const ssize_t n = ::read(in, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error(printable(src) + ": read failed: " + err_str(errno));
      }
      if (n == 0) break;
      write_all(out, {buf.data(), static_cast<std::size_t>(n)}, shown);
    }
  } catch (...) {
    ::close(in);
    if (target.kind != OutputPlan::Kind::Descriptor) ::close(out);
    throw;
  }
  ::close(in);
  if (target.kind != OutputPlan::Kind::Descriptor && ::close(out) != 0)
    throw Error(shown + ": close failed: " + err_str(errno));
}

std::string read_regular_file(const std::string& path, std::size_t max_bytes) {
  const std::string shown = printable(path);
  struct stat st {};
  const int fd = open_regular(path, st, "");
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(shown + ": is " + std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max_bytes) +
                " bytes expected at most");
  }
  std::string out;
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  for (;;) {
    if (done == out.size()) {
      if (out.size() >= max_bytes + 1) break;
      out.resize(std::min(max_bytes + 1, out.size() + 4096));  // the file may have grown: read on to EOF
    }
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw Error(shown + ": read failed: " + err_str(e));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  if (done > max_bytes) throw Error(shown + ": more than the " + std::to_string(max_bytes) + " bytes expected at most");
  return out;
}

int finish_stdout(int rc) {
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int e = errno;
  if (flush_failed || std::ferror(stdout)) {
    std::fprintf(stderr, "funnel: error: cannot write to standard output: %s\n",
                 e ? std::strerror(e) : "an earlier write failed");
    return rc ? rc : 1;
  }
  return rc;
}

}  // namespace funnel
