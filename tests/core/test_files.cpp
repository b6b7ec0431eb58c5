// Output safety (core/files): atomic replacement of regular files, in-place writes to FIFOs and devices, symlinks
// resolved, outputs that are inputs refused, write errors reported, non-regular files refused by the reader
// without blocking; stop signals (core/signals).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/signals.hpp"
#include "support/files.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;
using Catch::Matchers::Contains;
using funnel::test::TempDir;
namespace fs = std::filesystem;

using funnel::test::slurp;
namespace {
ino_t inode(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}
}  // namespace

TEST_CASE("write_output_file replaces a regular file atomically, keeping its mode") {
  TempDir t("files");
  const std::string p = t.file("out.csv");
  t.write("out.csv", "old contents\n");
  ::chmod(p.c_str(), 0640);
  // A second name for the old file: an atomic replace leaves it untouched, an in-place rewrite would change it.
  REQUIRE(::link(p.c_str(), t.file("old-link").c_str()) == 0);
  const ino_t before = inode(p);
  write_output_file(p, "new\n");
  CHECK(slurp(p) == "new\n");
  CHECK(slurp(t.file("old-link")) == "old contents\n");
  CHECK(inode(p) != before);
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  // No temporary file is left behind.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(t.path)) {
    CHECK(e.path().filename().string().find("funnel-tmp") == std::string::npos);
    ++entries;
  }
  CHECK(entries == 2);
}

TEST_CASE("write_output_file through a symlink replaces the real file and keeps the link") {
  TempDir t("files");
  fs::create_directories(t.path / "real");
  t.write("real/target.json", "{}");
  fs::create_symlink(t.path / "real" / "target.json", t.path / "link.json");
  write_output_file(t.file("link.json"), "[1]");
  CHECK(fs::is_symlink(t.path / "link.json"));
  CHECK(slurp(t.file("real/target.json")) == "[1]");
  // A dangling link: the file it points to is created, the link stays.
  fs::create_symlink(t.path / "real" / "new.json", t.path / "dangling.json");
  write_output_file(t.file("dangling.json"), "x");
  CHECK(fs::is_symlink(t.path / "dangling.json"));
  CHECK(slurp(t.file("real/new.json")) == "x");
}

TEST_CASE("write_output_file writes a FIFO in place and never replaces it") {
  TempDir t("files");
  const std::string fifo = t.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  write_output_file(fifo, "through the pipe\n");
  reader.join();
  CHECK(got == "through the pipe\n");
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
}

TEST_CASE("device and descriptor targets are written in place") {
  CHECK(check_output_target("/dev/null").kind == OutputPlan::Kind::InPlace);
  const auto out = check_output_target("/dev/stdout");
  CHECK(out.kind == OutputPlan::Kind::Descriptor);
  CHECK(out.fd == 1);
  CHECK(check_output_target("-").fd == 1);
  CHECK(check_output_target("/dev/fd/2").fd == 2);
  write_output_file("/dev/null", "discarded");  // in place: /dev/null is still a device afterwards
  struct stat st {};
  REQUIRE(::lstat("/dev/null", &st) == 0);
  CHECK(S_ISCHR(st.st_mode));
}

TEST_CASE("a write error is an error: /dev/full") {
  CHECK_THROWS_WITH(write_output_file("/dev/full", std::string(100, 'x')), Contains("/dev/full") && Contains("No space"));
}

TEST_CASE("an output that is one of the inputs is refused before anything is written") {
  TempDir t("files");
  t.write("data.csv", "click,purchase,a\n1,0,x\n");
  const std::string data = t.file("data.csv");
  CHECK_THROWS_WITH(write_output_file(data, "oops", {data}, "--out"), Contains("--out") && Contains("input"));
  CHECK(slurp(data) == "click,purchase,a\n1,0,x\n");
  // The same file under another name: a hard link, a symlink, a relative path.
  REQUIRE(::link(data.c_str(), t.file("hard.csv").c_str()) == 0);
  fs::create_symlink(data, t.path / "soft.csv");
  CHECK_THROWS_WITH(check_output_target(t.file("hard.csv"), {data}), Contains("input"));
  CHECK_THROWS_WITH(check_output_target(t.file("soft.csv"), {data}), Contains("input"));
  CHECK_THROWS_WITH(check_output_target(t.file("./data.csv"), {t.file("soft.csv")}), Contains("input"));
  // Inside an input directory (e.g. a checkpoint's manifest.json).
  fs::create_directories(t.path / "ckpt");
  t.write("ckpt/manifest.json", "{}");
  CHECK_THROWS_WITH(check_output_target(t.file("ckpt/manifest.json"), {t.file("ckpt")}), Contains("inside"));
  CHECK_THROWS_WITH(check_output_target(t.file("ckpt/new.csv"), {t.file("ckpt")}), Contains("inside"));
  CHECK(slurp(t.file("ckpt/manifest.json")) == "{}");
  // Another file is fine.
  CHECK_NOTHROW(check_output_target(t.file("other.csv"), {data, t.file("ckpt")}));
}

TEST_CASE("bad targets are refused by the check, before any work") {
  TempDir t("files");
  CHECK_THROWS_WITH(check_output_target(t.path.string()), Contains("is a directory"));
  CHECK_THROWS_WITH(check_output_target(t.file("no/such/dir/out.csv")), Contains("does not exist"));
  CHECK_THROWS_WITH(check_output_target(""), Contains("empty"));
  CHECK_FALSE(fs::exists(t.path / "no"));
}

TEST_CASE("read_regular_file refuses FIFOs, devices and directories at once, and bounds the size") {
  TempDir t("files");
  const std::string fifo = t.file("manifest.json");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Nobody writes the FIFO: a blocking open or read would hang here.
  CHECK_THROWS_WITH(read_regular_file(fifo, 1000), Contains("FIFO"));
  CHECK_THROWS_WITH(read_regular_file("/dev/zero", 1000), Contains("character device"));
  CHECK_THROWS_WITH(read_regular_file(t.path.string(), 1000), Contains("directory"));
  t.write("big", std::string(2000, 'a'));
  CHECK_THROWS_WITH(read_regular_file(t.file("big"), 1000), Contains("1000"));
  CHECK(read_regular_file(t.file("big"), 2000).size() == 2000);
}

TEST_CASE("printable escapes control bytes, quotes and non-ASCII bytes and cuts long text") {
  CHECK(printable("ab\x01\xff'c") == "ab\\x01\\xff\\x27c");
  CHECK(printable(std::string(10, 'x'), 4) == "xxxx...");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  // Quotes and backslashes kept as they are when asked (the data readers' messages), other bytes still escaped.
  CHECK(printable("a'\"\\\x01\xff", 120, false) == "a'\"\\\\x01\\xff");
  CHECK(printable("a'\"\\\x01\xff", 3, false) == "a'\"...");
}

TEST_CASE("finish_stdout turns a failed stdout write into a non-zero code") {
  std::fflush(stdout);
  const int saved = ::dup(1);
  REQUIRE(saved >= 0);
  const int full = ::open("/dev/full", O_WRONLY);
  REQUIRE(full >= 0);
  ::dup2(full, 1);
  ::close(full);
  std::printf("this cannot be written\n");
  const int rc = finish_stdout(0);
  std::clearerr(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  CHECK(rc == 1);
  CHECK(finish_stdout(0) == 0);
  CHECK(finish_stdout(3) == 3);
}

TEST_CASE("stop signals set the flag instead of ending the process") {
  install_stop_signals();
  stop_requested().store(false);
  for (int s : {SIGHUP, SIGPIPE, SIGTERM, SIGINT}) {
    stop_requested().store(false);
    std::raise(s);
    CHECK(stop_requested().load());
    CHECK(stop_signal() == s);
    CHECK(stop_exit_code() == 128 + s);
  }
  stop_requested().store(false);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGHUP, SIG_DFL);
  std::signal(SIGPIPE, SIG_DFL);
}
