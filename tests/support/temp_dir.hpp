#pragma once
// A fresh temporary directory for one test, removed with everything in it when the object goes out of scope.
// Unique per process and per object, so tests running in parallel (ctest -j) never share one.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace funnel::test {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "test") {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("funnel_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // The path of `name` inside the directory.
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Write `text` to `name` inside the directory (binary, replacing it).
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
  }
};

}  // namespace funnel::test
