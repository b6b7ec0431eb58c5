#include "data/stream.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/error.hpp"
#include "core/hash.hpp"

namespace funnel {
namespace {
inline std::uint64_t mix64(std::uint64_t x) { return splitmix64_mix(x); }
}  // namespace

std::int64_t rows_in_chunks(const CacheFile& f, std::int64_t b, std::int64_t e, std::int64_t stride,
                            std::int64_t offset) {
  if (e < 0) e = f.num_chunks();
  if (b < 0 || b > e || e > f.num_chunks())
    throw Error("chunk range [" + std::to_string(b) + ", " + std::to_string(e) + ") outside the cache's " +
                std::to_string(f.num_chunks()) + " chunks");
  if (stride < 1 || offset < 0 || offset >= stride)
    throw Error("chunk stride " + std::to_string(stride) + " / offset " + std::to_string(offset) +
                ": expected stride >= 1 and 0 <= offset < stride");
  if (stride == 1) return b == e ? 0 : f.chunk_begin(e - 1) + f.chunk_size(e - 1) - f.chunk_begin(b);
  std::int64_t n = 0;
  for (std::int64_t c = b + offset; c < e; c += stride) n += f.chunk_size(c);
  return n;
}

std::int64_t tail_split_chunk(const CacheFile& f, double fraction) {
  const std::int64_t C = f.num_chunks();
  if (C < 2) throw Error("cache '" + f.path() + "' has a single chunk: too small to hold out a tail; give --eval-data");
  const auto cut_row = static_cast<std::int64_t>(static_cast<double>(f.rows()) * (1.0 - fraction));
  return std::clamp<std::int64_t>((cut_row + f.chunk_rows() / 2) / f.chunk_rows(), 1, C - 1);
}

EpochOrder::EpochOrder(const CacheFile& f, bool shuffle, std::int64_t window, std::uint64_t seed, std::int64_t epoch,
                       std::int64_t chunk_begin, std::int64_t chunk_end, std::int64_t stride, std::int64_t offset)
    : f_(f), shuffle_(shuffle), state_(mix64(seed * 0x9E3779B97F4A7C15ULL ^ mix64(static_cast<std::uint64_t>(epoch) + 0x5eed))) {
  if (shuffle && window < 1) throw Error("shuffle window must be at least 1 row, got " + std::to_string(window));
  const std::int64_t C = f.num_chunks();
  const std::int64_t in_range = rows_in_chunks(f, chunk_begin, chunk_end, stride, offset);  // checks the range
  if (chunk_end < 0) chunk_end = C;
  for (std::int64_t c = chunk_begin + offset; c < chunk_end; c += stride) chunk_order_.push_back(c);
  if (shuffle)
    for (std::int64_t i = static_cast<std::int64_t>(chunk_order_.size()) - 1; i > 0; --i)
      std::swap(chunk_order_[static_cast<std::size_t>(i)],
                chunk_order_[static_cast<std::size_t>(rand_below(static_cast<std::uint64_t>(i + 1)))]);
  left_.resize(static_cast<std::size_t>(C));
  finished_.reserve(chunk_order_.size());  // no allocation while streaming
  for (std::int64_t c = 0; c < C; ++c) left_[static_cast<std::size_t>(c)] = f.chunk_size(c);
  if (shuffle) {
    window_cap_ = static_cast<std::size_t>(std::min<std::int64_t>(window, in_range));
    window_.reserve(window_cap_);
  }
}

std::uint64_t EpochOrder::rand_below(std::uint64_t n) {
  const std::uint64_t r = mix64(state_ += 0x9E3779B97F4A7C15ULL);
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);
}

bool EpochOrder::pull(std::int64_t& row) {
  while (chunk_pos_ < chunk_order_.size()) {
    const std::int64_t c = chunk_order_[chunk_pos_];
    if (in_chunk_ < f_.chunk_size(c)) {
      row = f_.chunk_begin(c) + in_chunk_++;
      return true;
    }
    ++chunk_pos_;
    in_chunk_ = 0;
  }
  return false;
}

void EpochOrder::emitted(std::int64_t row) {
  const std::int64_t c = f_.chunk_of(row);
  if (--left_[static_cast<std::size_t>(c)] == 0) finished_.push_back(c);
}

std::size_t EpochOrder::next(std::int64_t* out, std::size_t n) {
  std::size_t k = 0;
  std::int64_t row;
  if (!shuffle_) {
    while (k < n && pull(row)) {
      out[k++] = row;
      emitted(row);
    }
    return k;
  }
  if (!filled_) {
    while (window_.size() < window_cap_ && pull(row)) window_.push_back(row);
    filled_ = true;
  }
  while (k < n && !window_.empty()) {
    const auto j = static_cast<std::size_t>(rand_below(window_.size()));
    const std::int64_t r = window_[j];
    if (pull(row)) {
      window_[j] = row;
    } else {
      window_[j] = window_.back();
      window_.pop_back();
    }
    out[k++] = r;
    emitted(r);
  }
  return k;
}

void EpochOrder::take_finished(std::vector<std::int64_t>& out) {
  out.clear();
  out.swap(finished_);
}

// ------------------------------------------------------------------------------------------------ BatchStream
BatchStream::BatchStream(const CacheFile& f, const StreamOptions& o) : f_(f), o_(o) {
  if (o.batch_size <= 0) throw Error("batch size must be positive, got " + std::to_string(o.batch_size));
  if (o.prefetch < 1) throw Error("prefetch must be at least 1 batch, got " + std::to_string(o.prefetch));
  if (o.shuffle && o.shuffle_window < 1) throw Error("--shuffle-window must be at least 1, got " + std::to_string(o.shuffle_window));
  rows_in_chunks(f, o.chunk_begin, o.chunk_end, o.chunk_stride, o.chunk_offset);  // checks the range
  slots_.resize(static_cast<std::size_t>(o.prefetch + 1));
  for (auto& s : slots_) {
    s.rows.reserve(static_cast<std::size_t>(o.batch_size));
    s.labels.reserve(static_cast<std::size_t>(o.batch_size * f.num_stages()));
    s.dense.reserve(static_cast<std::size_t>(o.batch_size * f.num_dense()));
  }
}

BatchStream::~BatchStream() { stop_reader(); }

void BatchStream::stop_reader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  head_ = count_ = 0;
  held_ = done_ = stop_ = false;
  error_ = nullptr;
}

void BatchStream::start_epoch(std::int64_t epoch) {
  stop_reader();
  thread_ = std::thread([this, epoch] { reader(epoch); });
}

void BatchStream::reader(std::int64_t epoch) {
  try {
    EpochOrder order(f_, o_.shuffle, o_.shuffle_window, o_.seed, epoch, o_.chunk_begin, o_.chunk_end,
                     o_.chunk_stride, o_.chunk_offset);
    std::vector<std::int64_t> finished;
    finished.reserve(static_cast<std::size_t>(f_.num_chunks()));
    const std::size_t K = slots_.size();
    for (;;) {
      std::size_t idx;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || count_ < K; });
        if (stop_) return;
        idx = (head_ + count_) % K;
      }
      StreamBatch& b = slots_[idx];
      b.rows.resize(static_cast<std::size_t>(o_.batch_size));
      const std::size_t n = order.next(b.rows.data(), b.rows.size());
      if (n == 0) {
        std::lock_guard<std::mutex> lk(mu_);
        done_ = true;
        cv_.notify_all();
        return;
      }
      b.rows.resize(n);
      b.size = static_cast<std::int64_t>(n);
      b.labels.resize(n * static_cast<std::size_t>(f_.num_stages()));
      b.dense.resize(n * static_cast<std::size_t>(f_.num_dense()));
      f_.gather(b.rows, b.ids, b.labels.data(), b.dense.data());
      if (o_.release_chunks) {
        order.take_finished(finished);
        for (const std::int64_t c : finished) f_.release_chunk(c);
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        ++count_;
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lk(mu_);
    error_ = std::current_exception();
    done_ = true;
    cv_.notify_all();
  }
}

StreamBatch* BatchStream::next() {
  std::unique_lock<std::mutex> lk(mu_);
  if (held_) {
    head_ = (head_ + 1) % slots_.size();
    --count_;
    held_ = false;
    cv_.notify_all();
  }
  if (count_ == 0 && !done_) {
    const auto t0 = std::chrono::steady_clock::now();
    cv_.wait(lk, [&] { return count_ > 0 || done_; });
    wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (error_) std::rethrow_exception(error_);
  if (count_ == 0) return nullptr;
  held_ = true;
  return &slots_[head_];
}

}  // namespace funnel
