#pragma once
// Small file helpers shared by the tests: read a whole file, write one, damage one in place, the path of a
// checked-in fixture, an Ali-CCP field's index.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "data/readers.hpp"

namespace funnel::test {

// The whole content of `p` (empty when it cannot be opened).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Writes `text` to `p` (binary, replacing it).
inline void spit(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Flips the bits `mask` of the byte at `offset` of `p`, in place (the file keeps its size).
inline void flip_bits(const std::filesystem::path& p, std::streamoff offset, char mask) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.read(&c, 1);
  c ^= mask;
  f.seekp(offset);
  f.write(&c, 1);
}

// A file of tests/data/fixtures (the real Ali-CCP samples).
inline std::string fixture(const std::string& name) {
  return std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/" + name;
}

// The index of Ali-CCP field `name` in data/readers.hpp's aliccp_fields() (its size when absent).
inline std::int64_t aliccp_field(const std::string& name) {
  const auto& f = aliccp_fields();
  return std::find(f.begin(), f.end(), name) - f.begin();
}

}  // namespace funnel::test
