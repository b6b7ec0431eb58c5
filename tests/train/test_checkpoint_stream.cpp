// Checkpoints of stores whose embedding table's storage keeps its rows outside the store (train/checkpoint.hpp:
// StreamedArray, read_checkpoint_rows): the table written from a stream in chunks gives the very files of an
// ordinary save, loads in an ordinary store, is skipped by load_checkpoint on such a store, and its rows come back
// by (first, stride) with the checksum checked; missing streams and non-finite chunks are refused.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "autodiff/executor.hpp"
#include "core/dsl.hpp"
#include "core/error.hpp"
#include "support/absent_table.hpp"
#include "support/temp_dir.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

namespace {

// A table of 11 rows × 3 read by an embedding, and a dense layer.
struct Net {
  Graph g;
  Var idv, loss, table;
  Net() {
    table = param(g, "emb/table", Shape{11, 3}, Init::normal(0.1));
    idv = ids(g, "ids", 2);
    Var out = dense(flatten(embedding(table, idv)), 1, "out");
    loss = mean(mul(out, out));
    g.mark_loss(loss.id);
  }
  void steps(ParamStore<float>& ps, Optimizer<float>& opt, int n) {
    Executor<float> ex(g, ps);
    for (int k = 0; k < n; ++k) {
      ex.set_batch(3);
      IdBatch& b = ex.ids(idv.id);
      b.reset(3, 2);
      for (int c = 0; c < 6; ++c) {
        b.push((3 * k + 2 * c) % 11);
        b.end_cell();
      }
      ex.forward();
      ex.backward(loss.id);
      opt.step(ps);
    }
  }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A stream over a full copy of an array, counting the rows it was asked for.
StreamedArray stream_of(const std::string& name, const float* data, std::int64_t rows, std::int64_t dim,
                        std::int64_t chunk, std::int64_t* asked) {
  StreamedArray a;
  a.name = name;
  a.shape = {rows, dim};
  a.chunk_rows = chunk;
  a.fill = [=](std::int64_t first, std::int64_t n, float* out) {
    CHECK(first == *asked);
    CHECK(n <= chunk);
    *asked += n;
    std::memcpy(out, data + first * dim, static_cast<std::size_t>(n * dim) * sizeof(float));
  };
  return a;
}

}  // namespace

TEST_CASE("a table held elsewhere is saved from a stream as an ordinary checkpoint and read back by rows",
          "[checkpoint][stream]") {
  funnel::test::TempDir tmp("ckstream");
  Net net;
  ParamStore<float> full(net.g);
  full.init(4);
  auto opt = make_optimizer<float>("adam", {});
  net.steps(full, *opt, 3);
  const NodeId t = net.table.id;
  save_checkpoint(tmp.file("plain"), full, opt.get(), {{"kind", "t"}}, nlohmann::json::object(), 3);

  // The same model with the table out of the store: its values and state come from streams, in chunks of 4 rows.
  ParamStore<float> held(net.g, test::absent_tables());
  for (NodeId p : full.ids())
    if (p != t) std::memcpy(held.value(p).data(), full.value(p).data(), full.numel(p) * sizeof(float));
  OptimizerState st = full.export_optimizer();
  opt->import_state(held, st);  // the table's arrays are accepted and not read
  std::int64_t a0 = 0, a1 = 0, a2 = 0;
  std::vector<StreamedArray> values{stream_of("emb/table", full.value(t).data(), 11, 3, 4, &a0)};
  std::vector<StreamedArray> state{stream_of("emb/table/adam_m", full.slot(t, 0), 11, 3, 4, &a1),
                                   stream_of("emb/table/adam_v", full.slot(t, 1), 11, 3, 4, &a2)};
  save_checkpoint(tmp.file("streamed"), held, opt.get(), values, state, {{"kind", "t"}}, nlohmann::json::object(), 3);
  CHECK(a0 == 11);
  CHECK(a1 == 11);
  CHECK(a2 == 11);
  // Every file and the manifest (checksums included) are the ordinary save's bytes.
  for (const char* f : {"manifest.json", "emb.table.npy", "out.w.npy", "optimizer/emb.table.adam_m.npy",
                        "optimizer/emb.table.adam_v.npy", "optimizer/out.w.adam_m.npy"}) {
    INFO(f);
    const std::string a = slurp(tmp.file(std::string("plain/") + f)), b = slurp(tmp.file(std::string("streamed/") + f));
    CHECK(!a.empty());
    CHECK(a == b);
  }

  // load_checkpoint on a store holding the table elsewhere reads the rest; the table's rows by (first, stride).
  ParamStore<float> back(net.g, test::absent_tables());
  auto opt2 = make_optimizer<float>("adam", {});
  const CheckpointInfo info = load_checkpoint(tmp.file("streamed"), back, opt2.get());
  CHECK(back.value(t).size() == 0);
  CHECK(back.optimizer_steps() == 3);
  const NodeId w = net.g.at("out/w");
  CHECK(std::memcmp(back.value(w).data(), full.value(w).data(), full.numel(w) * sizeof(float)) == 0);
  CHECK(std::memcmp(back.slot(w, 1), full.slot(w, 1), full.numel(w) * sizeof(float)) == 0);
  const CheckpointParam* tab = nullptr;
  for (const auto& p : info.params)
    if (p.name == "emb/table") tab = &p;
  REQUIRE(tab);
  for (std::int64_t stride : {1, 2, 3, 5})
    for (std::int64_t first = 0; first < stride; ++first) {
      INFO("stride " << stride << " first " << first);
      const std::int64_t n = (11 - first + stride - 1) / stride;
      std::vector<float> rows(static_cast<std::size_t>(n * 3), -1.0f);
      read_checkpoint_rows(tmp.file("streamed"), *tab, first, stride, rows.data());
      for (std::int64_t i = 0; i < n; ++i)
        CHECK(std::memcmp(rows.data() + i * 3, full.value(t).data() + (first + i * stride) * 3, 3 * sizeof(float)) ==
              0);
    }
  // A flipped byte in the table's file: the streamed read finds the checksum wrong.
  {
    std::fstream f(tmp.file("streamed/emb.table.npy"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  std::vector<float> rows(11 * 3);
  CHECK_THROWS_WITH(read_checkpoint_rows(tmp.file("streamed"), *tab, 0, 1, rows.data()),
                    Contains("emb.table.npy") && Contains("checksum mismatch"));
  // The wrong shape in the manifest's entry.
  CheckpointParam other = *tab;
  other.shape = {12, 3};
  CHECK_THROWS_WITH(read_checkpoint_rows(tmp.file("plain"), other, 0, 1, rows.data()), Contains("shape"));
}

TEST_CASE("a streamed save refuses missing or extra streams and non-finite rows, leaving the old checkpoint",
          "[checkpoint][stream]") {
  funnel::test::TempDir tmp("ckstream_bad");
  Net net;
  ParamStore<float> full(net.g);
  full.init(4);
  ParamStore<float> held(net.g, test::absent_tables());
  held.init(4);
  const NodeId t = net.table.id;
  const nlohmann::json m{{"kind", "t"}}, d = nlohmann::json::object();
  // Without a stream for the held table (the ordinary save too).
  CHECK_THROWS_WITH(save_checkpoint(tmp.file("a"), held, nullptr, m, d, 1),
                    Contains("'emb/table'") && Contains("stream"));
  std::int64_t asked = 0;
  std::vector<StreamedArray> s{stream_of("emb/table", full.value(t).data(), 11, 3, 5, &asked)};
  // A stream for a parameter the store holds itself.
  CHECK_THROWS_WITH(save_checkpoint(tmp.file("a"), full, nullptr, s, {}, m, d, 1), Contains("streams"));
  save_checkpoint(tmp.file("a"), held, nullptr, s, {}, m, d, 1);
  const std::string before = slurp(tmp.file("a/emb.table.npy"));
  // A NaN in the last chunk: refused after the first chunks were written, the old checkpoint stays.
  full.value(t).data()[10 * 3 + 1] = std::numeric_limits<float>::quiet_NaN();
  asked = 0;
  CHECK_THROWS_WITH(save_checkpoint(tmp.file("a"), held, nullptr, s, {}, m, d, 2),
                    Contains("'emb/table'") && Contains("NaN") && Contains("element 31"));
  CHECK(asked == 11);
  CHECK(slurp(tmp.file("a/emb.table.npy")) == before);
  CHECK(read_checkpoint_info(tmp.file("a")).step == 1);
  CHECK_FALSE(std::filesystem::exists(tmp.file("a.funnel-tmp")));
}
