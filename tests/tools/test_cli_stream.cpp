// `funnel train / eval / predict --data cache:FILE` stream from the memory-mapped cache (train/batch_source.hpp):
// the loader path, results equal to the in-memory path with shuffling off, the
// streaming flags and their errors, a corrupt chunk found while streaming.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.hpp"
#include "data/aliccp_synth.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"
#include "support/files.hpp"

using namespace funnel;
using namespace funnel::test;
namespace fs = std::filesystem;

namespace {

Run run(const std::string& args) { return run_funnel(args, true); }

// A generated raw Ali-CCP training split of `rows` rows in d/raw and its cache d/c.cache in chunks of `chunk`
// rows, hashed into `buckets` per field.
struct Data {
  fs::path dir;
  std::string raw, cache;
  Data(const std::string& name, std::int64_t rows, std::int64_t chunk, std::int64_t buckets)
      : dir(fresh_temp_dir(name)), raw((dir / "raw").string()), cache((dir / "c.cache").string()) {
    fs::create_directories(raw);
    AliccpSynthConfig c;
    c.rows = rows;
    c.seed = 9;
    write_aliccp_synth(c, raw);
    ReadOptions o;
    o.mapping.buckets = buckets;
    FeatureMap map;
    convert_to_cache("aliccp:" + raw, o, map, cache, nullptr, chunk);
  }
  ~Data() { fs::remove_all(dir); }
  std::string out(const std::string& f) const { return (dir / f).string(); }
};

const std::string kSmall = " --embedding-dim 4 --hidden 8,4 --batch-size 64 --quiet --threads 1";

}  // namespace

TEST_CASE("CLI: train on a cache streams it: the description says so and the tail chunks are held out",
          "[cli][stream]") {
  const Data d("stream_path", 4000, 256, 64);
  const Run r = run("train --data cache:" + d.cache + kSmall + " --max-steps 5");
  INFO(r.out);
  CHECK(r.code == 0);
  // 16 chunks: the last fifth of the rows is the nearest chunk boundary to 3200 (chunk 13 starts at row 3328).
  CHECK_THAT(r.out, Catch::Contains("streamed, 16 chunk(s) of 256 rows") &&
                        Catch::Contains("training on the first 3328 rows, chunks 0-12") &&
                        Catch::Contains("last 672 rows held out (chunks 13-15)"));
}

TEST_CASE("CLI: unshuffled training streamed from a cache equals in-memory training on the raw data",
          "[cli][stream]") {
  const Data d("stream_same", 3000, 256, 128);
  // The same rows in the same order: the whole cache streamed vs the raw directory read into memory; one evaluation
  // set (the raw data, in memory) for both.
  const std::string common = " --eval-data aliccp:" + d.raw + " --no-shuffle --epochs 2" + kSmall;
  const Run a = run("train --data cache:" + d.cache + common + " --save " + d.out("ck_stream") +
                    " --metrics-json " + d.out("m_stream.json"));
  INFO(a.out);
  REQUIRE(a.code == 0);
  CHECK_THAT(a.out, Catch::Contains("streamed, 12 chunk(s)"));
  const Run b = run("train --data aliccp:" + d.raw + " --buckets 128" + common + " --save " + d.out("ck_mem") +
                    " --metrics-json " + d.out("m_mem.json"));
  INFO(b.out);
  REQUIRE(b.code == 0);
  auto epochs = [](const std::string& json) {
    auto j = nlohmann::json::parse(json)["epochs"];
    for (auto& e : j) e.erase("samples_per_sec");  // a time
    return j.dump();
  };
  CHECK(epochs(slurp(d.out("m_stream.json"))) == epochs(slurp(d.out("m_mem.json"))));
  // Streamed prediction and evaluation of the cache equal the in-memory ones on the raw data, for either checkpoint.
  for (const char* ck : {"ck_stream", "ck_mem"}) {
    const Run ps = run("predict --checkpoint " + d.out(ck) + " --data cache:" + d.cache + " --out " + d.out("ps.csv"));
    const Run pm = run("predict --checkpoint " + d.out(ck) + " --data aliccp:" + d.raw + " --out " + d.out("pm.csv"));
    REQUIRE(ps.code == 0);
    REQUIRE(pm.code == 0);
    CHECK(slurp(d.out("ps.csv")) == slurp(d.out("pm.csv")));
    CHECK_THAT(ps.out, Catch::Contains("wrote 3000 rows"));
    const Run es = run("eval --checkpoint " + d.out(ck) + " --data cache:" + d.cache + " --batch-size 500");
    const Run em = run("eval --checkpoint " + d.out(ck) + " --data aliccp:" + d.raw + " --batch-size 500");
    REQUIRE(es.code == 0);
    REQUIRE(em.code == 0);
    CHECK_THAT(es.out, Catch::Contains("streamed"));
    // The metrics are the same; the recorded configurations differ only in --data.
    const auto json_of = [](const std::string& out) {
      const auto b = out.find('{'), e = out.rfind('}');
      return nlohmann::json::parse(out.substr(b, e - b + 1));
    };
    nlohmann::json js = json_of(es.out), jm = json_of(em.out);
    CHECK(js["config"]["data"] == "cache:" + d.cache);
    CHECK(jm["config"]["data"] == "aliccp:" + d.raw);
    js.erase("config");
    jm.erase("config");
    CHECK(js == jm);
  }
  // The parameters themselves, bit for bit.
  int arrays = 0;
  for (const auto& e : fs::directory_iterator(d.out("ck_stream")))
    if (e.path().extension() == ".npy") {
      ++arrays;
      CHECK(slurp(e.path()) == slurp(fs::path(d.out("ck_mem")) / e.path().filename()));
    }
  CHECK(arrays > 0);
}

TEST_CASE("CLI: --shuffle-window and --prefetch shape the streamed order, bad values exit 2 naming the flag",
          "[cli][stream]") {
  const Data d("stream_flags", 2000, 256, 64);
  const std::string base = "train --data cache:" + d.cache + kSmall + " --epochs 1";
  const Run w1 = run(base + " --shuffle-window 50 --prefetch 1 --metrics-json " + d.out("a.json"));
  INFO(w1.out);
  REQUIRE(w1.code == 0);
  const Run w1again = run(base + " --shuffle-window 50 --prefetch 3 --metrics-json " + d.out("b.json"));
  REQUIRE(w1again.code == 0);
  const Run w2 = run(base + " --shuffle-window 1000 --metrics-json " + d.out("c.json"));
  REQUIRE(w2.code == 0);
  auto losses = [&](const std::string& f) { return nlohmann::json::parse(slurp(d.out(f)))["epochs"][0]["loss_ctr"].dump(); };
  CHECK(losses("a.json") == losses("b.json"));  // the queue depth does not change the order
  CHECK(losses("a.json") != losses("c.json"));  // the window does
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"shuffle-window", "0"}, {"shuffle-window", "x"}, {"prefetch", "0"}, {"prefetch", "5000"}}) {
    const Run r = run(base + " --" + flag + " " + value);
    INFO(r.out);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains("--" + flag));
  }
}

TEST_CASE("CLI: a corrupt chunk of a streamed cache stops training with the file and the chunk", "[cli][stream]") {
  const Data d("stream_corrupt", 2000, 256, 64);
  // Flip a byte inside the first chunk (the meta at the end stays intact: the file opens).
  funnel::test::flip_bits(d.cache, 300, 0x10);
  const Run r = run("train --data cache:" + d.cache + kSmall + " --no-shuffle");
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains(d.cache) && Catch::Contains("checksum mismatch in chunk 0"));
}

TEST_CASE("CLI: eval and predict on a cache honour --max-rows (the first N rows) and read every row without it",
          "[cli][stream]") {
  const Data d("stream_max_rows", 3000, 256, 128);
  REQUIRE(run("train --data cache:" + d.cache + kSmall + " --max-steps 5 --save " + d.out("ck")).code == 0);
  const auto json_of = [](const std::string& out) {
    const auto b = out.find('{'), e = out.rfind('}');
    return nlohmann::json::parse(out.substr(b, e - b + 1));
  };
  const std::string eval = "eval --checkpoint " + d.out("ck") + " --batch-size 500";
  const Run all = run(eval + " --data cache:" + d.cache);
  REQUIRE(all.code == 0);
  CHECK(json_of(all.out)["rows"] == 3000);
  // 1234 rows: a batch and a chunk cut in the middle. The same metrics as the raw data read with --max-rows.
  const Run first = run(eval + " --data cache:" + d.cache + " --max-rows 1234");
  const Run raw = run(eval + " --data aliccp:" + d.raw + " --max-rows 1234");
  INFO(first.out);
  REQUIRE(first.code == 0);
  REQUIRE(raw.code == 0);
  CHECK_THAT(first.out, Catch::Contains("the first 1234 rows (--max-rows)"));
  nlohmann::json jf = json_of(first.out), jr = json_of(raw.out);
  CHECK(jf["rows"] == 1234);
  jf.erase("config");
  jr.erase("config");
  CHECK(jf == jr);
  // More rows than the cache holds: all of them.
  const Run more = run(eval + " --data cache:" + d.cache + " --max-rows 5000");
  REQUIRE(more.code == 0);
  CHECK(json_of(more.out)["rows"] == 3000);
  // predict writes the first N rows, the lines of the raw data's first N.
  const Run ps = run("predict --checkpoint " + d.out("ck") + " --data cache:" + d.cache + " --max-rows 1234 --out " +
                     d.out("ps.csv"));
  const Run pm = run("predict --checkpoint " + d.out("ck") + " --data aliccp:" + d.raw + " --max-rows 1234 --out " +
                     d.out("pm.csv"));
  REQUIRE(ps.code == 0);
  REQUIRE(pm.code == 0);
  CHECK_THAT(ps.out, Catch::Contains("wrote 1234 rows"));
  CHECK(slurp(d.out("ps.csv")) == slurp(d.out("pm.csv")));
}

TEST_CASE("CLI: a damaged chunk of the evaluation cache stops the run before training", "[cli][stream]") {
  const Data d("stream_eval_corrupt", 2000, 256, 64);
  const std::string eval = d.out("e.cache");
  fs::copy_file(d.cache, eval);
  funnel::test::flip_bits(eval, 300, 0x10);
  const Run r = run("train --data cache:" + d.cache + " --eval-data cache:" + eval + kSmall + " --no-shuffle --save " +
                    d.out("ck"));
  INFO(r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains(eval) && Catch::Contains("checksum mismatch in chunk 0"));
  CHECK(r.out.find("step ") == std::string::npos);  // found before any training step
}
