// The embedding op's SIMD kernels (ops/embedding_kernels.hpp): every ISA's pool and scatter give exactly the bits of
// a scalar reference written here (same operations, same order: fused multiply-adds), over row widths that cover
// full registers, masked tails and more than one 32-column pass; an ISA this CPU lacks is skipped with the reason.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/simd.hpp"
#include "ops/embedding_kernels.hpp"
#include "support/isa_cases.hpp"

using namespace funnel;

namespace {

struct Bags {
  std::vector<std::int64_t> off{0}, ids;
  std::vector<float> weights;
};

// Cells with 0..12 ids each (some empty), random weights; with `zero_sum`, some cells whose weights sum to 0.
Bags make_bags(std::size_t cells, std::int64_t V, std::mt19937& rng, bool zero_sum) {
  Bags b;
  std::uniform_int_distribution<int> len(0, 12);
  std::uniform_int_distribution<std::int64_t> id(0, V - 1);
  std::uniform_real_distribution<float> w(-1.5f, 2.0f);
  for (std::size_t c = 0; c < cells; ++c) {
    const int n = len(rng);
    if (zero_sum && c % 7 == 3) {  // +x and -x: Σw = 0 exactly
      const float x = w(rng);
      b.ids.push_back(id(rng));
      b.weights.push_back(x);
      b.ids.push_back(id(rng));
      b.weights.push_back(-x);
    } else {
      for (int k = 0; k < n; ++k) {
        b.ids.push_back(id(rng));
        b.weights.push_back(w(rng));
      }
    }
    b.off.push_back(static_cast<std::int64_t>(b.ids.size()));
  }
  return b;
}

std::vector<float> ref_pool(const Bags& b, const std::vector<float>& table, std::size_t D, bool mean) {
  const std::size_t cells = b.off.size() - 1;
  std::vector<float> y(cells * D, -7.0f);
  for (std::size_t c = 0; c < cells; ++c) {
    float wsum = 0.0f;
    for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) wsum += b.weights[k];
    for (std::size_t j = 0; j < D; ++j) {
      float o = 0.0f;
      for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) {
        const float r = table[static_cast<std::size_t>(b.ids[k]) * D + j];
        o = k == b.off[c] ? b.weights[k] * r : std::fma(b.weights[k], r, o);
      }
      if (mean) o = wsum != 0.0f ? o * (1.0f / wsum) : 0.0f;
      y[c * D + j] = o;
    }
  }
  return y;
}

void check_isa(SimdIsa isa) {
  const EmbeddingKernels& kern = embedding_kernels(isa);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const std::int64_t V = 64;
  for (std::size_t D : {1u, 7u, 8u, 16u, 18u, 31u, 33u, 40u}) {
    for (bool mean : {false, true}) {
      INFO("D=" << D << " mean=" << mean);
      const std::size_t cells = 90;
      const Bags b = make_bags(cells, V, rng, mean);
      std::vector<float> table(static_cast<std::size_t>(V) * D);
      for (float& x : table) x = nd(rng);

      // Pool, in two ranges of cells (as two threads would).
      std::vector<float> y(cells * D, 123.0f);
      const EmbeddingPoolArgs pa{y.data(), table.data(), D, b.off.data(), b.ids.data(), b.weights.data(),
                                 b.ids.size(), mean};
      kern.pool(pa, 0, 37);
      kern.pool(pa, 37, cells);
      CHECK(y == ref_pool(b, table, D, mean));

      // Scatter: slots in first-touch order, -1 for the ids of cells without gradient (empty, or Σw = 0 in mean).
      std::vector<std::int32_t> slot_of_row(static_cast<std::size_t>(V), -1), slot(b.ids.size(), -1);
      std::int32_t nslots = 0;
      std::vector<float> scale(cells, 1.0f);
      for (std::size_t c = 0; c < cells; ++c) {
        float wsum = 0.0f;
        for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) wsum += b.weights[k];
        if (mean) scale[c] = wsum != 0.0f ? 1.0f / wsum : 0.0f;
        if (b.off[c] == b.off[c + 1] || scale[c] == 0.0f) continue;
        for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) {
          std::int32_t& s = slot_of_row[static_cast<std::size_t>(b.ids[k])];
          if (s < 0) s = nslots++;
          slot[static_cast<std::size_t>(k)] = s;
        }
      }
      std::vector<float> gy(cells * D);
      for (float& x : gy) x = nd(rng);
      std::vector<float> expect(static_cast<std::size_t>(nslots) * D, 0.0f);
      for (std::size_t c = 0; c < cells; ++c)
        for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) {
          const std::int32_t s = slot[static_cast<std::size_t>(k)];
          if (s < 0) continue;
          const float w = scale[c] * b.weights[k];
          for (std::size_t j = 0; j < D; ++j)
            expect[static_cast<std::size_t>(s) * D + j] =
                std::fma(w, gy[c * D + j], expect[static_cast<std::size_t>(s) * D + j]);
        }
      std::vector<float> vals(static_cast<std::size_t>(nslots) * D, 0.0f);
      const EmbeddingScatterArgs sa{vals.data(), D, gy.data(), b.off.data(), slot.data(), b.weights.data(),
                                    cells, mean};
      REQUIRE(nslots > 3);
      kern.scatter(sa, 0, nslots / 3);  // slot ranges as threads split them
      kern.scatter(sa, nslots / 3, nslots);
      CHECK(vals == expect);

      // Rows: the same sums from the ids grouped by slot (in id order within a slot), written in two slot ranges.
      std::vector<std::int64_t> start(static_cast<std::size_t>(nslots) + 1, 0);
      for (std::int32_t s : slot)
        if (s >= 0) ++start[static_cast<std::size_t>(s) + 1];
      for (std::size_t s = 0; s < static_cast<std::size_t>(nslots); ++s) start[s + 1] += start[s];
      std::vector<std::int32_t> ecell(static_cast<std::size_t>(start.back()));
      std::vector<float> ew(ecell.size());
      std::vector<std::int64_t> fill(start.begin(), start.end() - 1);
      for (std::size_t c = 0; c < cells; ++c)
        for (std::int64_t k = b.off[c]; k < b.off[c + 1]; ++k) {
          const std::int32_t s = slot[static_cast<std::size_t>(k)];
          if (s < 0) continue;
          const auto e = static_cast<std::size_t>(fill[static_cast<std::size_t>(s)]++);
          ecell[e] = static_cast<std::int32_t>(c);
          ew[e] = scale[c] * b.weights[k];
        }
      std::vector<float> rows(static_cast<std::size_t>(nslots) * D, 99.0f);  // every value is written
      const EmbeddingRowsArgs ra{rows.data(), D, gy.data(), start.data(), ecell.data(), ew.data(), ecell.size()};
      kern.rows(ra, 0, static_cast<std::size_t>(nslots) / 2);
      kern.rows(ra, static_cast<std::size_t>(nslots) / 2, static_cast<std::size_t>(nslots));
      CHECK(rows == expect);
    }
  }
}

}  // namespace

FUNNEL_ISA_TEST_CASES("embedding kernels", "pool, scatter and rows equal the scalar reference exactly", "[ops][simd]",
                      check_isa)
