// .npy files: byte layout of the header (against a file numpy 1.x writes for np.arange(6, dtype='<f4').reshape(2,3)),
// round trips of every dtype and rank, and every kind of bad input.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "support/files.hpp"
#include "core/error.hpp"
#include "support/temp_dir.hpp"
#include "train/npy.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

using funnel::test::TempDir;

using funnel::test::slurp;
using funnel::test::spit;

}  // namespace

TEST_CASE("npy header layout matches numpy's", "[npy]") {
  const float data[6] = {0, 1, 2, 3, 4, 5};
  const std::string b = npy_encode(NpyDtype::F4, {2, 3}, data);
  // numpy: b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + spaces + "\n"
  REQUIRE(b.size() == 128 + 24);
  CHECK(b.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(static_cast<unsigned char>(b[8]) == 118);
  CHECK(b[9] == 0);
  CHECK(b.substr(10, 59) == "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  CHECK(b[127] == '\n');
  CHECK(b.substr(69, 58) == std::string(58, ' '));
  CHECK(std::memcmp(b.data() + 128, data, 24) == 0);
}

TEST_CASE("npy header of 1-d and 0-d arrays", "[npy]") {
  const double one[1] = {4.5};
  std::string b = npy_encode(NpyDtype::F8, {1}, one);
  CHECK(b.find("'shape': (1,)") != std::string::npos);
  CHECK(b.size() % 64 == 8);
  b = npy_encode(NpyDtype::I8, {}, std::vector<std::int64_t>{7}.data());
  CHECK(b.find("'shape': ()") != std::string::npos);
  CHECK(b.find("'descr': '<i8'") != std::string::npos);
  NpyHeader h = npy_parse_header(b, "mem");
  CHECK(h.shape.empty());
  CHECK(h.count() == 1);
  CHECK(h.data_offset == 128);  // 10 + 55 + 1 > 64
}

TEST_CASE("npy round trips", "[npy]") {
  TempDir t;
  SECTION("float32, 2-d") {
    std::vector<float> v{1.5f, -0.0f, 3.25e-38f, 7.0f, 1e30f, -2.0f};
    write_npy(t.file("a.npy"), {3, 2}, v.data());
    auto a = read_npy<float>(t.file("a.npy"));
    CHECK(a.shape == std::vector<std::int64_t>{3, 2});
    CHECK(std::memcmp(a.data.data(), v.data(), v.size() * 4) == 0);
  }
  SECTION("float64, 3-d, synced") {
    std::vector<double> v(24);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1 * static_cast<double>(i) - 1.0;
    write_npy(t.file("b.npy"), {2, 3, 4}, v.data(), true);
    auto a = read_npy<double>(t.file("b.npy"));
    CHECK(a.shape == std::vector<std::int64_t>{2, 3, 4});
    CHECK(a.data == v);
  }
  SECTION("int64 ids and an empty array") {
    std::vector<std::int64_t> v{0, -1, 1LL << 40};
    write_npy(t.file("c.npy"), {3}, v.data());
    CHECK(read_npy<std::int64_t>(t.file("c.npy")).data == v);
    write_npy<float>(t.file("e.npy"), {0, 4}, nullptr);
    auto e = read_npy<float>(t.file("e.npy"));
    CHECK(e.shape == std::vector<std::int64_t>{0, 4});
    CHECK(e.data.empty());
  }
}

TEST_CASE("npy reader rejects bad files with the file name and the reason", "[npy]") {
  TempDir t;
  const std::string p = t.file("x.npy");
  std::vector<float> v(12, 1.0f);
  write_npy(p, {3, 4}, v.data());
  const std::string good = slurp(p);
  // Writes `good` with the first `from` in its header replaced by `to`.
  auto spit_with = [&](const std::string& from, const std::string& to) {
    std::string b = good;
    const std::size_t at = b.find(from);
    REQUIRE(at != std::string::npos);
    b.replace(at, from.size(), to);
    spit(p, b);
  };

  SECTION("truncated data") {
    spit(p, good.substr(0, good.size() - 5));
    CHECK_THROWS_WITH(read_npy<float>(p), Contains(p) && Contains("truncated") && Contains("48 data bytes") &&
                                              Contains("holds 43"));
  }
  SECTION("trailing bytes") {
    spit(p, good + "xx");
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("oversized") && Contains("holds 50"));
  }
  SECTION("truncated header") {
    spit(p, good.substr(0, 40));
    CHECK_THROWS_WITH(read_npy<float>(p), Contains(p) && Contains("truncated .npy header"));
  }
  SECTION("bad magic") {
    std::string b = good;
    b[1] = 'X';
    spit(p, b);
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("not a .npy file"));
  }
  SECTION("bad version") {
    std::string b = good;
    b[6] = 9;
    spit(p, b);
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("version 9.0"));
  }
  SECTION("wrong dtype for the caller") {
    CHECK_THROWS_WITH(read_npy<double>(p), Contains("'<f4'") && Contains("expected '<f8'"));
  }
  SECTION("big-endian dtype") {
    spit_with("<f4", ">f4");
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("unsupported .npy dtype '>f4'"));
  }
  SECTION("fortran order") {
    spit_with("False", "True ");
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("fortran_order True"));
  }
  SECTION("shape that disagrees with the data") {
    spit_with("(3, 4)", "(3, 5)");
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("truncated") && Contains("(3, 5)") && Contains("60 data bytes"));
  }
  SECTION("garbled dict") {
    spit_with("'shape'", "'shope'");
    CHECK_THROWS_WITH(read_npy<float>(p), Contains("unknown key 'shope'"));
  }
  SECTION("raw bytes in a damaged header are shown escaped") {
    spit_with("'shape'", "'sh\x01\xff" "e'");
    try {
      (void)read_npy<float>(p);
      FAIL("a damaged header was read");
    } catch (const Error& e) {
      const std::string m = e.what();
      CHECK_THAT(m, Contains("unknown key 'sh\\x01\\xffe'"));
      for (char c : m) CHECK(static_cast<unsigned char>(c) >= 0x20);
      CHECK(m.find('\xff') == std::string::npos);
    }
  }
  SECTION("missing file") {
    CHECK_THROWS_WITH(read_npy<float>(t.file("nope.npy")), Contains("nope.npy") && Contains("cannot open"));
  }
  SECTION("a version 2.0 header is read") {
    // Same dict, 4-byte length; the dict must be re-padded so that 12 + len is a multiple of 64.
    std::string dict = good.substr(10, 118);
    dict.erase(dict.size() - 1);  // '\n'
    while ((12 + dict.size() + 1) % 64) dict.pop_back();
    dict.push_back('\n');
    std::string b = std::string("\x93NUMPY\x02\x00", 8);
    const auto n = static_cast<std::uint32_t>(dict.size());
    for (int k = 0; k < 4; ++k) b.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
    b += dict + good.substr(128);
    spit(p, b);
    auto a = read_npy<float>(p);
    CHECK(a.shape == std::vector<std::int64_t>{3, 4});
    CHECK(a.data == v);
  }
}

TEST_CASE("npy writer reports unwritable paths", "[npy]") {
  const float x = 1;
  CHECK_THROWS_WITH(write_npy("/nonexistent-dir/x.npy", {1}, &x), Contains("/nonexistent-dir/x.npy") &&
                                                                       Contains("cannot create"));
}
