// Input edge cases of the readers (data/csv_reader.cpp, slots_reader.cpp, aliccp_reader.cpp, readers.cpp):
// RFC 4180 quoting, byte order marks, CRLF and CR-only line ends, headerless CSV, truncated last rows, bounded line
// length, unknown fields, and files that change while they are read.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "data/reader_util.hpp"
#include "data/readers.hpp"
#include "support/temp_dir.hpp"

using namespace funnel;
using Catch::Contains;
using funnel::test::TempDir;

namespace {
Dataset csv(const std::string& text, ReadOptions o = {}, ReadReport* rep = nullptr) {
  FeatureMap m;
  o.mapping.kind = MapKind::Vocab;
  return read_csv_buffer(text, "t.csv", o, m, rep);
}
std::string fixture(const char* name) { return std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fixtures/" + name; }
}  // namespace

TEST_CASE("csv: quoted cells are unquoted (RFC 4180)", "[csv][edges]") {
  const Dataset plain = csv("click,purchase,u,Dx\n1,0,a b,1.5\n0,0,c,2\n");
  const Dataset quoted = csv("\"click\",\"purchase\",\"u\",\"Dx\"\n\"1\",\"0\",\"a b\",\"1.5\"\n0,\"0\",\"c\",2\n");
  CHECK(quoted.labels == plain.labels);
  CHECK(quoted.dense == plain.dense);
  CHECK(quoted.ids == plain.ids);
  // Embedded commas, doubled quotes and a line end inside quotes are one value; line numbers stay right.
  FeatureMap m;
  ReadOptions o;
  o.mapping.kind = MapKind::Vocab;
  const Dataset d = read_csv_buffer("click,purchase,u\n1,0,\"x,y\"\n1,0,\"say \"\"hi\"\"\"\n0,0,\"two\nlines\"\n1,0,\"x,y\"\n",
                                    "t.csv", o, m);
  REQUIRE(d.rows() == 4);
  CHECK(d.ids[0] == d.ids[3]);  // "x,y" twice: one value
  CHECK(m.vocab() == 1 + 3);    // OOV + "x,y", say "hi", "two\nlines"
  CHECK_THROWS_WITH(read_csv_buffer("click,purchase,u\n1,0,a\n1,0,\"open\n1,x,a\n", "q.csv", o, m),
                    Contains("q.csv:3") && Contains("closing quote"));
  CHECK_THROWS_WITH(csv("click,purchase,u\n1,0,a\"b\n"), Contains("t.csv:2") && Contains("quotes only around a whole cell"));
  CHECK_THROWS_WITH(csv("click,purchase,u\n1,0,\"a\"b\n"), Contains("t.csv:2") && Contains("after the closing quote"));
}

TEST_CASE("a UTF-8 byte order mark and CRLF or CR-only line ends read like plain text", "[csv][slots][edges]") {
  const std::string rows[] = {"click,purchase,u,Dx", "1,0,a,1", "0,0,b,2", "1,1,a,3"};
  auto join = [&](const std::string& eol) {
    std::string s;
    for (const auto& r : rows) s += r + eol;
    return s;
  };
  const Dataset want = csv(join("\n"));
  for (const std::string& text : {"\xEF\xBB\xBF" + join("\n"), join("\r\n"), join("\r"), "\xEF\xBB\xBF" + join("\r\n")}) {
    CAPTURE(text);
    const Dataset d = csv(text);
    CHECK(d.labels == want.labels);
    CHECK(d.dense == want.dense);
    CHECK(d.ids == want.ids);
    CHECK(d.field_names == want.field_names);
  }
  // Slots too.
  FeatureMap a, b;
  ReadOptions o;
  const Dataset s1 = read_slots_buffer("1,1,0,u:a,i:b\n2,0,0,u:c\n", "s.txt", o, a);
  const Dataset s2 = read_slots_buffer("\xEF\xBB\xBF" "1,1,0,u:a,i:b\r2,0,0,u:c\r", "s.txt", o, b);
  CHECK(s1.ids == s2.ids);
  CHECK(s2.field_names == std::vector<std::string>{"i", "u"});
}

TEST_CASE("csv: a file without a header is named as such, and can be read with given columns", "[csv][edges]") {
  CHECK_THROWS_WITH(csv("1,0,0,5\n0,0,1,5\n"), Contains("t.csv:1") && Contains("looks like a data row, not a header"));
  ReadOptions o;
  o.csv_columns = {"click", "purchase", "u", "i"};
  ReadReport rep;
  const Dataset d = csv("1,0,0,5\n0,0,1,5\n", o, &rep);
  CHECK(d.rows() == 2);
  CHECK(rep.rows_read == 2);
  // The same columns given for a file that has the header: the header line is recognised and skipped.
  const Dataset h = csv("click,purchase,u,i\n1,0,0,5\n0,0,1,5\n", o);
  CHECK(h.ids == d.ids);
}

TEST_CASE("a last row without a line end is valid, a row really cut short fails its checks", "[csv][slots][aliccp][edges]") {
  // RFC 4180 §2.2: the last record may end without a line break.
  ReadReport rep;
  const Dataset d = csv("click,purchase,u,Dx\n1,0,a,1\n1,0,a,12", {}, &rep);
  CHECK(d.rows() == 2);
  CHECK(d.dense == std::vector<float>{1.0f, 12.0f});
  CHECK(rep.unterminated_last_line);
  CHECK(rep.rows_skipped == 0);
  CHECK_THAT(read_summary(rep), Contains("the last line has no line end"));
  // Cut short inside the row: the column count catches it, and the message says it may have been cut.
  CHECK_THROWS_WITH(csv("click,purchase,u,Dx\n1,0,a,1\n1,0,"), Contains("t.csv:3") && Contains("columns") &&
                                                                     Contains("cut short"));
  ReadOptions skip;
  skip.on_bad_row = OnBadRow::Skip;
  ReadReport rs;
  CHECK(csv("click,purchase,u,Dx\n1,0,a,1\n1,0,", skip, &rs).rows() == 1);
  CHECK(rs.skipped_by_reason.at("column_count") == 1);
  CHECK(rs.rows_read == rs.rows_kept + rs.rows_skipped);
  // Slots: a complete last line is read; one cut inside its label or its field:feature token is not.
  FeatureMap m;
  ReadReport r2;
  CHECK(read_slots_buffer("1,1,0,u:a\n2,0,0,u:ab", "s.txt", {}, m, &r2).rows() == 2);
  CHECK(r2.unterminated_last_line);
  FeatureMap m2;
  CHECK_THROWS_WITH(read_slots_buffer("1,1,0,u:a\n2,0,0,u", "s.txt", {}, m2), Contains("s.txt:2") && Contains("field:feature"));
  FeatureMap m3;
  CHECK_THROWS_WITH(read_slots_buffer("1,1,0,u:a\n2,0", "s.txt", {}, m3), Contains("s.txt:2") && Contains("cut short"));
  // The upstream rechub sample lacks its final newline (the fixture copy has it appended): it reads the same.
  TempDir t("edges");
  std::ifstream in(fixture("rechub_train_sample.csv"), std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  REQUIRE(text.back() == '\n');
  t.write("full.csv", text);
  text.pop_back();
  t.write("cut.csv", text);
  FeatureMap fa, fb;
  const Dataset full = read_dataset("csv:" + t.file("full.csv"), {}, fa);
  const Dataset cut = read_dataset("csv:" + t.file("cut.csv"), {}, fb);
  CHECK(cut.rows() == 100);
  CHECK(cut.ids == full.ids);
  CHECK(cut.dense == full.dense);
}

TEST_CASE("line length is bounded without reading the whole line", "[csv][slots][aliccp][edges]") {
  // 20 MiB without a line end (as a 2 GB one would be): an error naming the line, after 16 MiB at most.
  const std::string header = "click,purchase,u\n";
  std::string text = header + std::string(20u << 20, 'x');
  CHECK_THROWS_WITH(csv(text), Contains("t.csv:2") && Contains("line longer than 16 MiB"));
  FeatureMap m;
  CHECK_THROWS_WITH(read_slots_buffer(std::string(20u << 20, ','), "s.txt", {}, m), Contains("s.txt:1") && Contains("longer"));
  // A long line of commas costs no per-cell memory beyond the expected column count.
  ReadOptions skip;
  skip.on_bad_row = OnBadRow::Skip;
  ReadReport rep;
  const Dataset d = csv(header + "1,0,a\n" + std::string(8u << 20, ',') + "\n", skip, &rep);
  CHECK(d.rows() == 1);
  CHECK(rep.skipped_by_reason.at("column_count") == 1);
  CHECK_THAT(rep.first_errors.at(0), Contains("found 8388609"));
  // detail::LineCursor directly: a small bound.
  detail::LineCursor cur("abcdef\nxy\n", "f");
  cur.max_line = 4;
  std::string_view line;
  CHECK_THROWS_WITH(cur.next(line), Contains("f:1"));
}

TEST_CASE("slots: a file none of whose fields the map knows is an error, some unknown ones are counted", "[slots][edges]") {
  FeatureMap map;
  ReadOptions o;
  read_slots_buffer("1,1,0,u:a,i:b\n2,0,0,u:c\n", "train.txt", o, map);
  ReadReport rep;
  const Dataset d = read_slots_buffer("1,1,0,u:a,zz:q\n", "new.txt", o, map, &rep);
  CHECK(d.rows() == 1);
  CHECK(rep.dropped_features.at("unknown_field:zz") == 1);
  CHECK_THAT(read_summary(rep), Contains("dropped 1 feature(s)") && Contains("unknown_field:zz=1"));
  CHECK_THROWS_WITH(read_slots_buffer("1,1,0,x:a,y:b\n", "other.txt", o, map, &rep),
                    Contains("other.txt") && Contains("none of the file's fields"));
}

TEST_CASE("a mapped file truncated while it is read is an error naming it, not SIGBUS", "[readers][edges]") {
  TempDir t("edges");
  const std::string path = t.file("big.csv");
  t.write("big.csv", std::string(1 << 20, 'a'));
  detail::MappedFile mf(path);
  CHECK_NOTHROW(mf.check_unchanged());
  REQUIRE(::truncate(path.c_str(), 100) == 0);
  // Touch every page, as a reader would: past the new end the kernel raises SIGBUS, which the guard absorbs.
  const std::string_view v = mf.view();
  std::size_t sum = 0;
  for (std::size_t i = 0; i < v.size(); i += 4096) sum += static_cast<unsigned char>(v[i]);
  CHECK(sum > 0);
  CHECK_THROWS_WITH(mf.check_unchanged(), Contains(path) && Contains("changed while it was read"));
}

TEST_CASE("a file rewritten while it is read is an error naming it", "[readers][edges]") {
  TempDir t("edges");
  const std::string path = t.file("d.csv");
  t.write("d.csv", "click,purchase,u\n1,0,a\n");
  detail::MappedFile mf(path);
  ::usleep(20000);
  {
    std::ofstream f(path, std::ios::binary | std::ios::in);
    f.seekp(18);
    f << "0";  // same size, other contents
  }
  CHECK_THROWS_WITH(mf.check_unchanged(), Contains(path) && Contains("modified while it was read"));
}
