// The I/O module (core/io): every byte written through short writes and EINTR, errors naming the path, the atomic
// file replace refusing what is not a regular file, and the atomic directory's commit and rollback.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "core/error.hpp"
#include "core/io.hpp"
#include "support/files.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;
using Catch::Matchers::Contains;
using funnel::test::slurp;
using funnel::test::TempDir;
namespace fs = std::filesystem;

namespace {

// A write(2) that writes at most 3 bytes per call and fails every other call with EINTR.
int g_calls = 0;
long short_and_interrupted(int fd, const void* p, std::size_t n) {
  if (++g_calls % 2 == 0) {
    errno = EINTR;
    return -1;
  }
  return ::write(fd, p, n < 3 ? n : 3);
}
// A write(2) on a full disk.
long disk_full(int, const void*, std::size_t) {
  errno = ENOSPC;
  return -1;
}

// Puts the module's write function back when the test ends (also on a failed REQUIRE).
struct WriteFnGuard {
  explicit WriteFnGuard(io_testing::WriteFn fn) { io_testing::set_write_function(fn); }
  ~WriteFnGuard() { io_testing::set_write_function(nullptr); }
};

}  // namespace

TEST_CASE("write_file_synced writes every byte through short writes and EINTR") {
  TempDir t("io");
  std::string text;
  for (int i = 0; i < 200; ++i) text += std::to_string(i) + ",";
  {
    g_calls = 0;
    WriteFnGuard g(&short_and_interrupted);
    write_file_synced(t.file("a.txt"), text);
  }
  // It really went in pieces of 3 bytes, with an EINTR between any two.
  CHECK(g_calls == 2 * static_cast<int>((text.size() + 2) / 3) - 1);
  CHECK(slurp(t.file("a.txt")) == text);
}

TEST_CASE("a failed write is an error naming the path, and an atomic replace leaves the old file") {
  TempDir t("io");
  t.write("keep.txt", "old\n");
  WriteFnGuard g(&disk_full);
  CHECK_THROWS_WITH(write_file_synced(t.file("new.txt"), "x"),
                    Contains(t.file("new.txt")) && Contains("write failed") && Contains("No space left"));
  CHECK_THROWS_WITH(replace_file_atomically(t.file("keep.txt"), "new\n", "out.txt"),
                    Contains("out.txt") && Contains("No space left"));
  CHECK(slurp(t.file("keep.txt")) == "old\n");
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(t.path)) ++n;
  CHECK(n == 2);  // keep.txt, new.txt: no temporary file left
}

TEST_CASE("replace_file_atomically replaces a regular file and refuses a symlink or FIFO in its place") {
  TempDir t("io");
  t.write("f.txt", "old\n");
  ::chmod(t.file("f.txt").c_str(), 0600);
  replace_file_atomically(t.file("f.txt"), "new\n", "f.txt");
  CHECK(slurp(t.file("f.txt")) == "new\n");
  struct stat st {};
  REQUIRE(::stat(t.file("f.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  replace_file_atomically(t.file("fresh.txt"), "x", "fresh.txt");
  CHECK(slurp(t.file("fresh.txt")) == "x");

  fs::create_symlink(t.file("f.txt"), t.path / "link.txt");
  CHECK_THROWS_WITH(replace_file_atomically(t.file("link.txt"), "y", "link.txt"),
                    Contains("link.txt") && Contains("refusing to replace"));
  CHECK(fs::is_symlink(t.path / "link.txt"));
  CHECK(slurp(t.file("f.txt")) == "new\n");
  REQUIRE(::mkfifo(t.file("fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(replace_file_atomically(t.file("fifo"), "y", "fifo"), Contains("refusing to replace"));
  REQUIRE(::lstat(t.file("fifo").c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
}

TEST_CASE("fsync_dir names a directory it cannot open unless told it need not") {
  TempDir t("io");
  CHECK_THROWS_WITH(fsync_dir(t.file("missing")), Contains("missing") && Contains("cannot open directory"));
  CHECK_NOTHROW(fsync_dir(t.file("missing"), /*must_open=*/false));
  CHECK_NOTHROW(fsync_dir(t.path.string()));
}

namespace {
AtomicDir::Options options(std::function<void(std::string_view)> stage = {}, bool no_exchange = false) {
  AtomicDir::Options o;
  o.discard = [](const std::string& d) {
    std::error_code ec;
    fs::remove_all(d, ec);
    return !ec;
  };
  o.stage = std::move(stage);
  o.no_exchange = no_exchange;
  return o;
}
}  // namespace

TEST_CASE("AtomicDir replaces a directory as a whole, with and without RENAME_EXCHANGE") {
  for (const bool no_exchange : {false, true}) {
    TempDir t("io");
    const std::string target = t.file("out");
    fs::create_directory(target);
    t.write("out/old.txt", "old");
    {
      AtomicDir d(target, "out", options({}, no_exchange));
      CHECK(fs::exists(fs::path(d.path()) / "funnel-save-in-progress"));
      write_file_synced(d.path() + "/new.txt", "new");
      d.commit();
    }
    CHECK(slurp(target + "/new.txt") == "new");
    CHECK_FALSE(fs::exists(target + "/old.txt"));
    CHECK_FALSE(fs::exists(target + "/funnel-save-in-progress"));
    CHECK_FALSE(fs::exists(target + AtomicDir::kTmpSuffix));
    CHECK_FALSE(fs::exists(target + AtomicDir::kOldSuffix));
  }
  TempDir t("io");  // a target that does not exist yet
  AtomicDir d(t.file("fresh"), "fresh", options());
  write_file_synced(d.path() + "/a", "a");
  d.commit();
  CHECK(slurp(t.file("fresh/a")) == "a");
}

TEST_CASE("AtomicDir rolls back a failed commit: the old directory stays, the temporary one goes") {
  for (const char* failing : {"swap", "aside"}) {
    const bool no_exchange = std::string(failing) == "aside";
    TempDir t("io");
    const std::string target = t.file("out");
    fs::create_directory(target);
    t.write("out/old.txt", "old");
    {
      AtomicDir d(target, "out", options(
                                     [&](std::string_view s) {
                                       if (s == failing) throw Error("simulated failure at " + std::string(s));
                                     },
                                     no_exchange));
      write_file_synced(d.path() + "/new.txt", "new");
      CHECK_THROWS_WITH(d.commit(), Contains("simulated failure"));
    }
    CHECK(slurp(target + "/old.txt") == "old");
    CHECK_FALSE(fs::exists(target + "/new.txt"));
    CHECK_FALSE(fs::exists(target + AtomicDir::kTmpSuffix));
    CHECK_FALSE(fs::exists(target + AtomicDir::kOldSuffix));
  }
}

TEST_CASE("AtomicDir refuses a symlink or file target and a leftover its owner will not discard") {
  TempDir t("io");
  fs::create_directory(t.path / "real");
  fs::create_directory_symlink(t.path / "real", t.path / "link");
  CHECK_THROWS_WITH(AtomicDir(t.file("link"), "link", options()), Contains("link") && Contains("refusing"));
  t.write("file", "x");
  CHECK_THROWS_WITH(AtomicDir(t.file("file"), "file", options()), Contains("not a directory"));
  CHECK(slurp(t.file("file")) == "x");

  fs::create_directory(t.path / "out");
  fs::create_directory(t.path / "out.funnel-tmp");
  t.write("out.funnel-tmp/theirs.txt", "keep");
  AtomicDir::Options keep = options();
  keep.discard = [](const std::string&) { return false; };
  CHECK_THROWS_WITH(AtomicDir(t.file("out"), "out", keep), Contains("in the way"));
  CHECK(slurp(t.file("out.funnel-tmp/theirs.txt")) == "keep");
  // A leftover its owner may discard is removed, and the new save goes ahead.
  AtomicDir d(t.file("out"), "out", options());
  CHECK_FALSE(fs::exists(t.file("out.funnel-tmp/theirs.txt")));
}
