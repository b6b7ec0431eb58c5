#pragma once
/// @file
/// Mapping of raw categorical values (strings) to embedding rows.
///
/// Every field f owns a contiguous block of rows [base(f), base(f) + size(f)); ids of different fields never collide.
///   * hash:  size(f) = buckets for every field; row = f·buckets + bucket(hash(value, seed)). No state beyond the
///            field list, so unseen values at predict time map exactly as in training.
///   * vocab: built while reading the training data. Values seen at least min_count times get their own row (ordered
///            by value string within a field, so the result does not depend on reading order); local row 0 of
///            every field is its out-of-vocabulary row (rare values at build time, unseen values later).
/// The map serialises to JSON (to_json / from_json) so it travels in a checkpoint and `predict` maps new data
/// identically. It also records the dense column names so a reader can check that new data has the same layout.
///
/// Life cycle used by the readers: a default-constructed map is empty (!ready()). A reader calls start(); a hash
/// map is ready at once, a vocab map is "building": the reader interns values (provisional ids), counts the values of
/// rows it keeps, and finish() turns provisional ids into final rows. A ready map is used as is (frozen).
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/hash.hpp"

namespace funnel {

/// How a FeatureMap assigns rows: by hashing values into buckets, or from a vocabulary built from the data.
enum class MapKind { Hash, Vocab };

/// How a FeatureMap is built (see the file's description).
struct FeatureMapConfig {
  MapKind kind = MapKind::Hash;  ///< hash buckets or a vocabulary
  std::int64_t buckets = 1 << 16;  ///< hash: rows per field
  std::int64_t min_count = 1;      ///< vocab: values seen fewer times go to the field's OOV row
  std::uint64_t seed = 0;          ///< hash: seed of the value hash
};

/// Stable 64-bit hash of a byte string (same value on every platform and build; part of the checkpoint format).
inline std::uint64_t feature_hash(std::string_view s, std::uint64_t seed) {
  const auto mix = splitmix64_mix;
  std::uint64_t h = seed ^ (0x9E3779B97F4A7C15ULL * (s.size() + 1));
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    h = mix(h ^ w);
    p += 8;
    n -= 8;
  }
  std::uint64_t w = 0;
  for (std::size_t i = 0; i < n; ++i) w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return mix(h ^ w ^ 0xA5A5A5A5A5A5A5A5ULL);
}

/// bucket in [0, buckets) from a 64-bit hash (multiply-high range reduction).
inline std::int64_t hash_bucket(std::uint64_t h, std::int64_t buckets) {
  return static_cast<std::int64_t>((static_cast<unsigned __int128>(h) * static_cast<std::uint64_t>(buckets)) >> 64);
}

/// Maps raw categorical values to embedding rows, field by field (see the file's description). Copyable and movable.
/// Const members (lookup(), to_json(), ...) may be called from several threads on a ready map; building (start,
/// map on a building map, count, finish) is single-threaded.
class FeatureMap {
 public:
  FeatureMap();
  ~FeatureMap();
  /// @{
  /// Copies and moves carry the whole state (fields, configuration, vocabulary tables).
  FeatureMap(const FeatureMap&);
  FeatureMap& operator=(const FeatureMap&);
  FeatureMap(FeatureMap&&) noexcept;
  FeatureMap& operator=(FeatureMap&&) noexcept;
  /// @}

  /// A ready hash map over `fields` (convenience for tools and tests).
  static FeatureMap hashed(std::vector<std::string> fields, std::int64_t buckets, std::uint64_t seed = 0);

  /// @{
  /// The life-cycle state: empty (default-constructed or cleared), building (a vocab map between start and finish),
  /// ready (usable for lookups and serialisation).
  bool empty() const { return state_ == State::Empty; }
  bool building() const { return state_ == State::Building; }
  bool ready() const { return state_ == State::Ready; }
  /// @}
  const FeatureMapConfig& config() const { return cfg_; }  ///< how the map was built
  /// The categorical fields, in the order of the Ids input's columns.
  const std::vector<std::string>& fields() const { return fields_; }
  /// The dense columns, in the order of the dense input.
  const std::vector<std::string>& dense_names() const { return dense_; }
  /// Number of categorical fields.
  std::int64_t num_fields() const { return static_cast<std::int64_t>(fields_.size()); }
  /// Index of a field name, -1 if unknown.
  std::int64_t field_index(std::string_view name) const;
  /// Rows owned by field f / first row of field f / total rows (the embedding table size). Ready maps only.
  /// @{
  std::int64_t field_size(std::int64_t f) const;
  std::int64_t field_base(std::int64_t f) const;
  std::int64_t vocab() const;
  /// @}
  std::int64_t oov_row(std::int64_t f) const { return field_base(f); }  ///< vocab maps

  // --- reader protocol -----------------------------------------------------------------------------------------
  /// Start building from an empty map. Throws funnel::Error if the map is not empty or the config is invalid.
  void start(const FeatureMapConfig& cfg, std::vector<std::string> fields, std::vector<std::string> dense_names);
  /// Row (ready map) or provisional id (building vocab map) of `value` in field f. Does not count.
  std::int64_t map(std::int64_t f, std::string_view value) {
    if (cfg_.kind == MapKind::Hash) return f * cfg_.buckets + hash_bucket(feature_hash(value, cfg_.seed), cfg_.buckets);
    return state_ == State::Building ? intern(f, value) : lookup_vocab(f, value);
  }
  /// Row of `value` in field f of a ready map (const; unseen vocab values -> OOV row).
  std::int64_t lookup(std::int64_t f, std::string_view value) const;
  /// Building vocab map: count one occurrence of each provisional id (the ids of a kept row). No-op otherwise.
  void count(std::span<const std::int64_t> ids) {
    if (state_ != State::Building) return;
    for (auto id : ids) ++counts_[static_cast<std::size_t>(id)];
  }
  /// Same as calling count(ids) `times` times (ids shared by several kept rows, e.g. a dataset's shared block).
  void count(std::span<const std::int64_t> ids, std::int64_t times) {
    if (state_ != State::Building) return;
    for (auto id : ids) counts_[static_cast<std::size_t>(id)] += times;
  }
  /// Finish building: rewrites provisional ids in `ids` and `more` (e.g. a dataset's shared block ids) to final
  /// rows; the map becomes ready. No-op if ready.
  void finish(std::span<std::int64_t> ids, std::span<std::int64_t> more = {});
  /// Forget everything (back to empty).
  void clear();

  /// Number of distinct values seen per field while building (vocab), or kept rows (ready vocab). Diagnostics.
  std::int64_t distinct_values(std::int64_t f) const;

  /// The map as JSON (kind, configuration, fields, dense names and, for a vocab map, the values of every row), as
  /// checkpoints store it. Ready maps only.
  nlohmann::json to_json() const;
  /// Throws funnel::Error naming the offending key on a malformed document.
  static FeatureMap from_json(const nlohmann::json& j);
  /// Same kind, configuration, fields, dense names and rows for every value.
  bool operator==(const FeatureMap& o) const;

 private:
  enum class State { Empty, Building, Ready };
  struct Table;  ///< value -> id hash table per field
  std::int64_t intern(std::int64_t f, std::string_view value);
  std::int64_t lookup_vocab(std::int64_t f, std::string_view value) const;

  State state_ = State::Empty;
  FeatureMapConfig cfg_;
  std::vector<std::string> fields_;
  std::vector<std::string> dense_;
  std::vector<std::int64_t> base_;          ///< fields + 1 (ready)
  std::vector<std::unique_ptr<Table>> tables_;  ///< vocab: one per field
  std::vector<std::int64_t> counts_;        ///< building: per provisional id
  std::vector<std::int32_t> prov_field_;    ///< building: field of each provisional id
};

/// "hash" or "vocab".
std::string to_string(MapKind k);
MapKind parse_map_kind(std::string_view s);  ///< "hash" | "vocab"; throws funnel::Error otherwise

}  // namespace funnel
