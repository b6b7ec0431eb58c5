#include "data/feature_map.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace funnel {

// Open-addressing table: value bytes (kept in an arena) -> id. Linear probing, power-of-two capacity.
struct FeatureMap::Table {
  struct Slot {
    std::uint64_t hash = 0;
    std::uint64_t off = 0;
    std::uint32_t len = 0;
    std::int64_t id = -1;  // -1 = empty slot
  };
  std::string arena;
  std::vector<Slot> slots = std::vector<Slot>(16);
  std::size_t used = 0;

  std::string_view key(const Slot& s) const { return {arena.data() + s.off, s.len}; }
  static std::uint64_t h(std::string_view v) { return feature_hash(v, 0x5eedULL); }

  const Slot* find(std::string_view v, std::uint64_t hv) const {
    const std::size_t mask = slots.size() - 1;
    for (std::size_t i = hv & mask;; i = (i + 1) & mask) {
      const Slot& s = slots[i];
      if (s.id < 0) return nullptr;
      if (s.hash == hv && key(s) == v) return &s;
    }
  }
  void grow() {
    std::vector<Slot> old(slots.size() * 2);
    old.swap(slots);
    const std::size_t mask = slots.size() - 1;
    for (const Slot& s : old) {
      if (s.id < 0) continue;
      std::size_t i = s.hash & mask;
      while (slots[i].id >= 0) i = (i + 1) & mask;
      slots[i] = s;
    }
  }
  // Returns the id of v, inserting it with `next_id` if absent (sets inserted).
  std::int64_t insert(std::string_view v, std::int64_t next_id, bool& inserted) {
    const std::uint64_t hv = h(v);
    if (const Slot* s = find(v, hv)) {
      inserted = false;
      return s->id;
    }
    if ((used + 1) * 4 > slots.size() * 3) grow();
    const std::size_t mask = slots.size() - 1;
    std::size_t i = hv & mask;
    while (slots[i].id >= 0) i = (i + 1) & mask;
    slots[i] = Slot{hv, arena.size(), static_cast<std::uint32_t>(v.size()), next_id};
    arena.append(v);
    ++used;
    inserted = true;
    return next_id;
  }
  std::int64_t get(std::string_view v) const {
    const Slot* s = find(v, h(v));
    return s ? s->id : -1;
  }
};

FeatureMap::FeatureMap() = default;
FeatureMap::~FeatureMap() = default;
FeatureMap::FeatureMap(FeatureMap&&) noexcept = default;
FeatureMap& FeatureMap::operator=(FeatureMap&&) noexcept = default;
FeatureMap::FeatureMap(const FeatureMap& o)
    : state_(o.state_), cfg_(o.cfg_), fields_(o.fields_), dense_(o.dense_), base_(o.base_), counts_(o.counts_),
      prov_field_(o.prov_field_) {
  for (const auto& t : o.tables_) tables_.push_back(std::make_unique<Table>(*t));
}
FeatureMap& FeatureMap::operator=(const FeatureMap& o) {
  if (this != &o) {
    FeatureMap tmp(o);
    *this = std::move(tmp);
  }
  return *this;
}

std::string to_string(MapKind k) { return k == MapKind::Hash ? "hash" : "vocab"; }

MapKind parse_map_kind(std::string_view s) {
  if (s == "hash") return MapKind::Hash;
  if (s == "vocab") return MapKind::Vocab;
  throw Error("feature map kind: expected 'hash' or 'vocab', got '" + std::string(s) + "'");
}

FeatureMap FeatureMap::hashed(std::vector<std::string> fields, std::int64_t buckets, std::uint64_t seed) {
  FeatureMap m;
  FeatureMapConfig c;
  c.kind = MapKind::Hash;
  c.buckets = buckets;
  c.seed = seed;
  m.start(c, std::move(fields), {});
  return m;
}

std::int64_t FeatureMap::field_index(std::string_view name) const {
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i] == name) return static_cast<std::int64_t>(i);
  return -1;
}

std::int64_t FeatureMap::field_size(std::int64_t f) const {
  if (state_ != State::Ready) throw Error("feature map: field_size() on a map that is not ready");
  return base_.at(static_cast<std::size_t>(f) + 1) - base_.at(static_cast<std::size_t>(f));
}
std::int64_t FeatureMap::field_base(std::int64_t f) const {
  if (state_ != State::Ready) throw Error("feature map: field_base() on a map that is not ready");
  return base_.at(static_cast<std::size_t>(f));
}
std::int64_t FeatureMap::vocab() const {
  if (state_ != State::Ready) throw Error("feature map: vocab() on a map that is not ready");
  return base_.back();
}

void FeatureMap::start(const FeatureMapConfig& cfg, std::vector<std::string> fields,
                       std::vector<std::string> dense_names) {
  if (state_ != State::Empty) throw Error("feature map: start() on a map that is already built");
  if (fields.empty()) throw Error("feature map: expected at least one categorical field, got none");
  for (std::size_t i = 0; i < fields.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (fields[i] == fields[j]) throw Error("feature map: field '" + fields[i] + "' appears twice");
  if (cfg.kind == MapKind::Hash && cfg.buckets < 1)
    throw Error("feature map: expected buckets >= 1, got " + std::to_string(cfg.buckets));
  if (cfg.kind == MapKind::Hash && cfg.buckets > (std::int64_t{1} << 40) / static_cast<std::int64_t>(fields.size()))
    throw Error("feature map: buckets " + std::to_string(cfg.buckets) + " x " + std::to_string(fields.size()) +
                " fields is too many embedding rows");
  if (cfg.kind == MapKind::Vocab && cfg.min_count < 1)
    throw Error("feature map: expected min_count >= 1, got " + std::to_string(cfg.min_count));
  cfg_ = cfg;
  fields_ = std::move(fields);
  dense_ = std::move(dense_names);
  const auto F = fields_.size();
  if (cfg_.kind == MapKind::Hash) {
    base_.resize(F + 1);
    for (std::size_t f = 0; f <= F; ++f) base_[f] = static_cast<std::int64_t>(f) * cfg_.buckets;
    state_ = State::Ready;
  } else {
    tables_.clear();
    for (std::size_t f = 0; f < F; ++f) tables_.push_back(std::make_unique<Table>());
    counts_.clear();
    prov_field_.clear();
    state_ = State::Building;
  }
}

std::int64_t FeatureMap::intern(std::int64_t f, std::string_view value) {
  bool inserted = false;
  const auto next = static_cast<std::int64_t>(counts_.size());
  const std::int64_t id = tables_[static_cast<std::size_t>(f)]->insert(value, next, inserted);
  if (inserted) {
    counts_.push_back(0);
    prov_field_.push_back(static_cast<std::int32_t>(f));
  }
  return id;
}

std::int64_t FeatureMap::lookup_vocab(std::int64_t f, std::string_view value) const {
  const std::int64_t local = tables_[static_cast<std::size_t>(f)]->get(value);
  return base_[static_cast<std::size_t>(f)] + (local < 0 ? 0 : local);
}

std::int64_t FeatureMap::lookup(std::int64_t f, std::string_view value) const {
  if (state_ != State::Ready) throw Error("feature map: lookup() on a map that is not ready");
  if (f < 0 || f >= num_fields()) throw Error("feature map: field index " + std::to_string(f) + " out of range");
  if (cfg_.kind == MapKind::Hash) return f * cfg_.buckets + hash_bucket(feature_hash(value, cfg_.seed), cfg_.buckets);
  return lookup_vocab(f, value);
}

void FeatureMap::finish(std::span<std::int64_t> ids, std::span<std::int64_t> more) {
  if (state_ == State::Ready) return;
  if (state_ != State::Building) throw Error("feature map: finish() on an empty map");
  const std::size_t F = fields_.size();
  // Per field: the values kept (count >= min_count), sorted by value, get local rows 1..n; row 0 is OOV.
  std::vector<std::int64_t> remap(counts_.size(), -1);
  std::vector<std::unique_ptr<Table>> kept(F);
  base_.assign(F + 1, 0);
  for (std::size_t f = 0; f < F; ++f) {
    const Table& t = *tables_[f];
    std::vector<std::pair<std::string_view, std::int64_t>> vals;  // value, provisional id
    for (const auto& s : t.slots)
      if (s.id >= 0 && counts_[static_cast<std::size_t>(s.id)] >= cfg_.min_count) vals.emplace_back(t.key(s), s.id);
    std::sort(vals.begin(), vals.end());
    auto nt = std::make_unique<Table>();
    for (std::size_t k = 0; k < vals.size(); ++k) {
      bool ins = false;
      nt->insert(vals[k].first, static_cast<std::int64_t>(k) + 1, ins);
    }
    base_[f + 1] = base_[f] + 1 + static_cast<std::int64_t>(vals.size());
    for (std::size_t k = 0; k < vals.size(); ++k)
      remap[static_cast<std::size_t>(vals[k].second)] = base_[f] + 1 + static_cast<std::int64_t>(k);
    kept[f] = std::move(nt);
  }
  for (std::size_t p = 0; p < remap.size(); ++p)
    if (remap[p] < 0) remap[p] = base_[static_cast<std::size_t>(prov_field_[p])];  // rare -> OOV
  for (auto span : {ids, more})
    for (auto& id : span) {
      if (id < 0 || static_cast<std::size_t>(id) >= remap.size())
        throw Error("feature map: finish() got an id that is not a provisional id: " + std::to_string(id));
      id = remap[static_cast<std::size_t>(id)];
    }
  tables_ = std::move(kept);
  counts_.clear();
  counts_.shrink_to_fit();
  prov_field_.clear();
  prov_field_.shrink_to_fit();
  state_ = State::Ready;
}

void FeatureMap::clear() { *this = FeatureMap(); }

std::int64_t FeatureMap::distinct_values(std::int64_t f) const {
  if (cfg_.kind == MapKind::Hash || f < 0 || f >= static_cast<std::int64_t>(tables_.size())) return 0;
  return static_cast<std::int64_t>(tables_[static_cast<std::size_t>(f)]->used);
}

nlohmann::json FeatureMap::to_json() const {
  if (state_ != State::Ready) throw Error("feature map: to_json() on a map that is not ready");
  nlohmann::json j;
  j["format"] = "funnel.feature_map";
  j["version"] = 1;
  j["kind"] = to_string(cfg_.kind);
  j["fields"] = fields_;
  j["dense"] = dense_;
  if (cfg_.kind == MapKind::Hash) {
    j["buckets"] = cfg_.buckets;
    j["seed"] = cfg_.seed;
  } else {
    j["min_count"] = cfg_.min_count;
    nlohmann::json values = nlohmann::json::array();
    for (const auto& t : tables_) {
      std::vector<std::string> v(t->used);
      for (const auto& s : t->slots)
        if (s.id >= 1) v[static_cast<std::size_t>(s.id) - 1] = std::string(t->key(s));
      values.push_back(std::move(v));
    }
    j["values"] = std::move(values);
  }
  return j;
}

FeatureMap FeatureMap::from_json(const nlohmann::json& j) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(key))
      throw Error(std::string("feature map JSON: expected key '") + key + "', got none");
    return j.at(key);
  };
  try {
    if (need("format").get<std::string>() != "funnel.feature_map")
      throw Error("feature map JSON: key 'format': expected 'funnel.feature_map', got '" +
                  j.at("format").get<std::string>() + "'");
    if (need("version").get<int>() != 1)
      throw Error("feature map JSON: key 'version': expected 1, got " + j.at("version").dump());
    FeatureMapConfig c;
    c.kind = parse_map_kind(need("kind").get<std::string>());
    auto fields = need("fields").get<std::vector<std::string>>();
    auto dense = need("dense").get<std::vector<std::string>>();
    FeatureMap m;
    if (c.kind == MapKind::Hash) {
      c.buckets = need("buckets").get<std::int64_t>();
      c.seed = need("seed").get<std::uint64_t>();
      m.start(c, std::move(fields), std::move(dense));
      return m;
    }
    c.min_count = need("min_count").get<std::int64_t>();
    const auto& values = need("values");
    if (!values.is_array() || values.size() != fields.size())
      throw Error("feature map JSON: key 'values': expected one list per field (" + std::to_string(fields.size()) +
                  "), got " + (values.is_array() ? std::to_string(values.size()) : std::string("a non-array")));
    m.start(c, std::move(fields), std::move(dense));
    m.base_.assign(m.fields_.size() + 1, 0);
    for (std::size_t f = 0; f < m.fields_.size(); ++f) {
      const auto v = values[f].get<std::vector<std::string>>();
      for (std::size_t k = 0; k < v.size(); ++k) {
        bool ins = false;
        m.tables_[f]->insert(v[k], static_cast<std::int64_t>(k) + 1, ins);
        if (!ins)
          throw Error("feature map JSON: field '" + m.fields_[f] + "': expected distinct values, got '" + v[k] +
                      "' twice");
      }
      m.base_[f + 1] = m.base_[f] + 1 + static_cast<std::int64_t>(v.size());
    }
    m.state_ = State::Ready;
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("feature map JSON: malformed document: ") + e.what());
  }
}

bool FeatureMap::operator==(const FeatureMap& o) const {
  if (state_ != o.state_) return false;
  if (state_ != State::Ready) return state_ == State::Empty;
  return to_json() == o.to_json();
}

}  // namespace funnel
