#include "train/batch_source.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.hpp"

namespace funnel {

std::span<const std::int64_t> shard_of(std::span<const std::int64_t> rows, int r, int n) {
  const auto N = static_cast<std::size_t>(n), R = static_cast<std::size_t>(r);
  const std::size_t q = rows.size() / N, extra = rows.size() % N;
  const std::size_t begin = R * q + std::min(R, extra);
  const std::size_t len = q + (R < extra ? 1 : 0);
  return rows.subspan(begin, len);
}

// ------------------------------------------------------------------------------------------------ DatasetSource
DatasetSource::DatasetSource(const Dataset& d, std::int64_t batch_size, bool shuffle, std::uint64_t seed, int shard,
                             int shards)
    : d_(d), batch_(batch_size), shuffle_(shuffle), rng_(seed * 0x9E3779B97F4A7C15ull + 17), shard_(shard),
      shards_(shards) {
  if (batch_size <= 0) throw Error("batch size must be positive, got " + std::to_string(batch_size));
  if (shards < 1 || shard < 0 || shard >= shards)
    throw Error("shard " + std::to_string(shard) + " of " + std::to_string(shards) + ": out of range");
  order_.resize(static_cast<std::size_t>(d.rows()));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
}

DatasetSource::DatasetSource(const Dataset& d, std::span<const std::int64_t> rows, std::int64_t batch_size, int shard,
                             int shards)
    : DatasetSource(d, batch_size > 0 ? batch_size : std::max<std::int64_t>(static_cast<std::int64_t>(rows.size()), 1),
                    false, 1, shard, shards) {
  order_.assign(rows.begin(), rows.end());
}

const float* DatasetSource::entire(std::int64_t stage) const {
  if (!d_.has_truth() || stage < 0 || stage >= d_.num_stages) return nullptr;
  return entire_.data() + static_cast<std::size_t>(stage) * bound_;
}

void DatasetSource::check(const ModelConfig& cfg, const std::string& what) const { check_compatible(cfg, d_, what); }

void DatasetSource::start_epoch(std::int64_t) {
  if (shuffle_) std::shuffle(order_.begin(), order_.end(), rng_);
  pos_ = 0;
}

BatchRows DatasetSource::next(Model& m) {
  const auto n = static_cast<std::int64_t>(order_.size());
  if (pos_ >= n) return {};
  const std::int64_t end = std::min(n, pos_ + batch_);
  std::span<const std::int64_t> batch(order_.data() + pos_, static_cast<std::size_t>(end - pos_));
  pos_ = end;
  const auto mine = shards_ > 1 ? shard_of(batch, shard_, shards_) : batch;
  if (!mine.empty()) {
    m.bind(d_, mine);
    const std::size_t B = mine.size();
    if (d_.has_truth()) {
      const auto S = static_cast<std::size_t>(d_.num_stages);
      entire_.resize(S * B);
      for (std::size_t s = 0; s < S; ++s)
        for (std::size_t i = 0; i < B; ++i)
          entire_[s * B + i] = d_.entire_labels[static_cast<std::size_t>(mine[i]) * S + s];
    }
    if (d_.has_user_keys()) {
      users_.resize(B);
      for (std::size_t i = 0; i < B; ++i) users_[i] = d_.user_key(mine[i]);
    }
    bound_ = B;
  }
  return {static_cast<std::int64_t>(batch.size()), static_cast<std::int64_t>(mine.size())};
}

// ------------------------------------------------------------------------------------------------ CacheSource
namespace {
StreamOptions with_part(const CachePart& p, StreamOptions o) {
  if (!p.file) throw Error("CacheSource: no cache file");
  o.chunk_begin = p.chunk_begin;
  o.chunk_end = p.chunk_end;
  o.chunk_stride = p.stride;
  o.chunk_offset = p.offset;
  return o;
}
}  // namespace

CacheSource::CacheSource(const CachePart& part, StreamOptions o)
    : stream_(*part.file, with_part(part, o)), has_truth_(part.file->has_truth()),
      has_users_(part.file->has_user_keys()) {}

const float* CacheSource::entire(std::int64_t stage) const {
  const std::int64_t S = stream_.file().num_stages();
  if (!has_truth_ || stage < 0 || stage >= S) return nullptr;
  return entire_.data() + static_cast<std::size_t>(stage) * (entire_.size() / static_cast<std::size_t>(S));
}

void CacheSource::check(const ModelConfig& cfg, const std::string& what) const {
  check_compatible(cfg, stream_.file(), what);
}

BatchRows CacheSource::next(Model& m) {
  StreamBatch* b = stream_.next();  // waits for the reader thread when it is behind
  if (!b) return {};
  const auto B = static_cast<std::size_t>(b->size);
  if (has_truth_) {
    const auto S = static_cast<std::size_t>(stream_.file().num_stages());
    entire_.resize(S * B);
    for (std::size_t i = 0; i < B; ++i) {
      const std::uint8_t bits = stream_.file().entire_bits(b->rows[i]);
      for (std::size_t s = 0; s < S; ++s) entire_[s * B + i] = static_cast<float>((bits >> s) & 1);
    }
  }
  if (has_users_) {
    users_.resize(B);
    for (std::size_t i = 0; i < B; ++i) users_[i] = stream_.file().user_key(b->rows[i]);
  }
  bind_stream_batch(m, *b);
  return {b->size, b->size};
}

void bind_stream_batch(Model& m, StreamBatch& b) {
  const auto& h = m.handle();
  auto& ex = m.exec();
  const std::int64_t B = b.size;
  ex.set_batch(B);
  std::swap(ex.ids(h.ids), b.ids);
  const auto S = static_cast<std::int64_t>(b.labels.size()) / std::max<std::int64_t>(B, 1);
  for (std::int64_t s = 0; s < static_cast<std::int64_t>(h.labels.size()); ++s) {
    float* y = ex.input(h.labels[static_cast<std::size_t>(s)]).data();
    for (std::int64_t r = 0; r < B; ++r) y[r] = b.labels[static_cast<std::size_t>(r * S + s)];
  }
  if (!h.dense.empty() && !b.dense.empty())
    std::memcpy(ex.input(h.dense[0]).data(), b.dense.data(), b.dense.size() * sizeof(float));
}

void check_compatible(const ModelConfig& cfg, const CacheFile& f, const std::string& what) {
  auto bad = [&](const std::string& why) { throw Error(what + " does not fit the model: " + why); };
  if (f.num_fields() != cfg.num_fields)
    bad("it has " + std::to_string(f.num_fields()) + " fields, the model " + std::to_string(cfg.num_fields));
  if (f.vocab() > cfg.vocab)
    bad("its ids need " + std::to_string(f.vocab()) + " embedding rows, the model has " + std::to_string(cfg.vocab));
  if (f.num_dense() != cfg.num_dense)
    bad("it has " + std::to_string(f.num_dense()) + " dense columns, the model " + std::to_string(cfg.num_dense));
  if (f.num_stages() != cfg.num_stages)
    bad("it has " + std::to_string(f.num_stages()) + " funnel stages, the model " + std::to_string(cfg.num_stages));
}

}  // namespace funnel
