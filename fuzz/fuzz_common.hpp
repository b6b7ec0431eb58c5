#pragma once
// Shared by the libFuzzer targets: run a reader on the input with both bad-row policies and both map kinds.
// Any funnel::Error is an accepted outcome; anything else (crash, sanitizer report, other exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "data/readers.hpp"

namespace funnel::fuzz {

template <class Read>
void run_all_modes(Read&& read) {
  for (auto bad : {OnBadRow::Error, OnBadRow::Skip}) {
    for (auto kind : {MapKind::Hash, MapKind::Vocab}) {
      ReadOptions o;
      o.on_bad_row = bad;
      o.mapping.kind = kind;
      o.mapping.buckets = 97;
      o.weights = kind == MapKind::Vocab ? PoolWeights::Values : PoolWeights::Ones;
      FeatureMap map;
      ReadReport rep;
      try {
        const Dataset d = read(o, map, rep);
        // Invariants of every successful read (CSR sizes, ids in [0, vocab), shared block references).
        if (!dataset_problem(d).empty()) __builtin_trap();
        if (rep.rows_read != rep.rows_kept + rep.rows_skipped) __builtin_trap();
        std::int64_t row_reasons = 0, common_reasons = 0;
        for (const auto& [k, v] : rep.skipped_by_reason) (k.rfind("common:", 0) == 0 ? common_reasons : row_reasons) += v;
        if (row_reasons != rep.rows_skipped || common_reasons != rep.common_rows_skipped) __builtin_trap();
        if (rep.common_rows_unused > rep.common_rows_skipped || rep.common_rows_skipped > rep.common_rows) __builtin_trap();
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace funnel::fuzz
