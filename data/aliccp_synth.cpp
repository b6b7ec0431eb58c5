#include "data/aliccp_synth.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/io.hpp"
#include "core/hash.hpp"

namespace funnel {
namespace {

// splitmix64 finalizer: a bijection on 64-bit words (so distinct users get distinct keys).
inline std::uint64_t mix(std::uint64_t x) { return splitmix64_mix(x); }

struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed) {}
  std::uint64_t next() { return mix(s += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// Approximately standard normal from a hash (sum of four uniforms, centred and scaled).
inline double normal_of(std::uint64_t h) {
  double s = 0;
  for (int i = 0; i < 4; ++i) s += static_cast<double>((h >> (16 * i)) & 0xffff) / 65536.0;
  return (s - 2.0) * 1.7320508;
}

inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Output file: written through a large buffer to DIR/.name.tmp.PID, renamed to DIR/name by commit().
class Out {
 public:
  Out(const std::string& dir, const std::string& name) : final_(dir + "/" + name) {
    tmp_ = dir + "/." + name + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("funnel-synth: cannot create '" + tmp_ + "': " + std::strerror(errno));
    buf_.resize(1 << 22);
  }
  ~Out() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(tmp_.c_str());
    }
  }
  char* room(std::size_t n) {  // a pointer with at least n free bytes
    if (len_ + n > buf_.size()) flush();
    return buf_.data() + len_;
  }
  void used(std::size_t n) { len_ += n; }
  void put(char c) { *room(1) = c, ++len_; }
  void put(std::string_view s) {
    std::memcpy(room(s.size()), s.data(), s.size());
    len_ += s.size();
  }
  void num(std::uint64_t v) {
    char t[24];
    int n = 0;
    do {
      t[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    char* p = room(24);
    for (int i = 0; i < n; ++i) p[i] = t[n - 1 - i];
    len_ += static_cast<std::size_t>(n);
  }
  void hex16(std::uint64_t v) {
    static const char* d = "0123456789abcdef";
    char* p = room(16);
    for (int i = 15; i >= 0; --i, v >>= 4) p[i] = d[v & 15];
    len_ += 16;
  }
  void flush() {
    if (const WriteResult r = write_fully(fd_, buf_.data(), len_); r.error)
      throw Error("funnel-synth: cannot write '" + tmp_ + "': " + std::strerror(r.error));
    bytes_ += static_cast<std::int64_t>(len_);
    len_ = 0;
  }
  std::int64_t commit() {
    flush();
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      fd_ = -1;
      throw Error("funnel-synth: cannot write '" + tmp_ + "': " + std::strerror(errno));
    }
    fd_ = -1;
    if (std::filesystem::exists(std::filesystem::symlink_status(final_)))
      throw Error("funnel-synth: '" + final_ + "' appeared while writing; not replacing it");
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp_.c_str());
      throw Error("funnel-synth: cannot rename '" + tmp_ + "' to '" + final_ + "': " + std::strerror(e));
    }
    return bytes_;
  }

 private:
  std::string final_, tmp_;
  int fd_ = -1;
  std::vector<char> buf_;
  std::size_t len_ = 0;
  std::int64_t bytes_ = 0;
};

// Feature values of counting features: log(1 + count) as the release writes them.
const char* const kLogCounts[8] = {"0.693147", "1.098612", "1.386294", "1.609438",
                                   "1.791759", "1.945910", "2.079442", "2.197225"};

// One feature `field \x02 id \x03 value`, preceded by \x01 unless it is the first of its list.
inline void feature(Out& o, bool& first, std::string_view field, std::uint64_t id, std::string_view value) {
  if (!first) o.put('\x01');
  first = false;
  o.put(field);
  o.put('\x02');
  o.num(id);
  o.put('\x03');
  o.put(value);
}

// Skewed id in [0, n): popular ids come up much more often (square of a uniform).
inline std::uint64_t skewed(Rng& r, std::uint64_t n) {
  const double u = r.unit();
  return static_cast<std::uint64_t>(u * u * static_cast<double>(n));
}

struct UserTraits {
  double click_bias, conv_bias;
  std::uint64_t interest;  // seeds the user's behaviour lists and combination features
};

UserTraits traits(std::uint64_t seed, std::uint64_t u) {
  const std::uint64_t h = mix(seed ^ mix(u + 0x51ed270b));
  return {0.6 * normal_of(h), 0.5 * normal_of(mix(h)), mix(h ^ 0xabcdef)};
}

}  // namespace

AliccpSynthReport write_aliccp_synth(const AliccpSynthConfig& c, const std::string& dir) {
  if (c.rows <= 0) throw Error("funnel-synth: rows must be positive, got " + std::to_string(c.rows));
  if (c.split != "train" && c.split != "test") throw Error("funnel-synth: split must be train or test");
  const std::int64_t users =
      c.users > 0 ? c.users : std::max<std::int64_t>(1, static_cast<std::int64_t>(std::llround(c.rows * 0.73 / 42.0)));
  if (users > c.rows) throw Error("funnel-synth: more users than rows");
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec))
    throw Error("funnel-synth: the output directory '" + printable(dir) + "' does not exist (create it first)");
  if (!std::filesystem::is_directory(dir, ec))
    throw Error("funnel-synth: '" + printable(dir) + "' exists and is not a directory");
  const std::string names[2] = {"common_features_" + c.split + ".csv", "sample_skeleton_" + c.split + ".csv"};
  for (const auto& n : names)
    if (std::filesystem::exists(std::filesystem::symlink_status(dir + "/" + n)))
      throw Error("funnel-synth: '" + dir + "/" + n + "' exists; not replacing it (choose an empty directory)");

  AliccpSynthReport rep;
  rep.rows = c.rows;
  rep.users = users;
  // One world for both splits, as in the Ali-CCP release: user u's traits and features, its key, and an item's
  // quality and attributes depend on the seed only; the split draws its own impressions (which items a user sees,
  // contexts, labels) from a stream of its own.
  const std::uint64_t seed = mix(c.seed * 0x9E3779B97F4A7C15ULL + 11);
  const std::uint64_t impressions = c.split == "test" ? mix(seed ^ 0x7e57ULL) : seed;
  const std::uint64_t key_salt = mix(seed ^ 0x1234567);
  // Vocabulary sizes of the item side (scaled with the data, bounded).
  const std::uint64_t items = static_cast<std::uint64_t>(std::clamp<std::int64_t>(c.rows / 10, 1000, 4000000));

  // --- common features: one row per user --------------------------------------------------------------------
  {
    Out o(dir, names[0]);
    static const char* const single[8] = {"121", "122", "124", "125", "126", "127", "128", "129"};
    static const std::uint64_t single_n[8] = {97, 13, 2, 7, 3, 3, 2, 4};
    struct Multi {
      const char* field;
      std::uint64_t vocab, lo, hi;
    };
    static const Multi multi[4] = {{"109_14", 10000, 5, 100}, {"110_14", 500000, 10, 200},
                                   {"127_14", 200000, 5, 80}, {"150_14", 50000, 2, 40}};
    for (std::int64_t u = 0; u < users; ++u) {
      const UserTraits t = traits(seed, static_cast<std::uint64_t>(u));
      Rng r(t.interest);
      std::uint64_t counts[4];
      std::uint64_t total = 1 + 8;
      for (int m = 0; m < 4; ++m) total += counts[m] = multi[m].lo + r.below(multi[m].hi - multi[m].lo + 1);
      o.hex16(mix(static_cast<std::uint64_t>(u) ^ key_salt));
      o.put(',');
      o.num(total);
      o.put(',');
      bool first = true;
      feature(o, first, "101", static_cast<std::uint64_t>(u) + 1, "1.0");
      for (int k = 0; k < 8; ++k) feature(o, first, single[k], mix(t.interest + static_cast<std::uint64_t>(k)) % single_n[k], "1.0");
      for (int m = 0; m < 4; ++m)
        for (std::uint64_t k = 0; k < counts[m]; ++k)
          feature(o, first, multi[m].field, skewed(r, multi[m].vocab), kLogCounts[r.below(8)]);
      o.put('\n');
    }
    rep.common_bytes = o.commit();
  }

  // --- skeleton: runs of impressions per user -----------------------------------------------------------------
  {
    Out o(dir, names[1]);
    Rng r(mix(impressions ^ 0x5eed));
    const double mean_run = static_cast<double>(c.rows) / static_cast<double>(users);
    std::int64_t row = 0;
    const std::uint64_t id_base = c.split == "test" ? 1000000000ULL : 1;
    for (std::int64_t u = 0; u < users; ++u) {
      // Run length: uniform in [1, 2*mean-1]; the last user takes what is left, every user at least one row.
      const std::int64_t left_users = users - u - 1;
      std::int64_t run = 1 + static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(std::max(1.0, 2 * mean_run - 1))));
      run = std::min(run, c.rows - row - left_users);
      if (u == users - 1) run = c.rows - row;
      const UserTraits t = traits(seed, static_cast<std::uint64_t>(u));
      const std::uint64_t key = mix(static_cast<std::uint64_t>(u) ^ key_salt);
      for (std::int64_t k = 0; k < run; ++k, ++row) {
        const std::uint64_t item = skewed(r, items);
        const std::uint64_t ih = mix(item ^ seed);
        const std::uint64_t cat = ih % 10000, shop = (ih >> 14) % 300000, brand = (ih >> 33) % 100000;
        const std::uint64_t ctx = r.below(3) + 1;
        const std::uint64_t n_int = 1 + r.below(10);
        const double q = normal_of(mix(ih));
        const double p_click = sigmoid(-3.58 + t.click_bias + 0.7 * q + 0.25 * (2.0 - static_cast<double>(ctx)));
        const bool click = r.unit() < p_click;
        const bool conv = click && r.unit() < sigmoid(-6.25 + t.conv_bias + 0.8 * q);
        rep.clicks += click;
        rep.conversions += conv;
        o.num(id_base + static_cast<std::uint64_t>(row));
        o.put(click ? ",1" : ",0");
        o.put(conv ? ",1," : ",0,");
        o.hex16(key);
        o.put(',');
        o.num(9 + n_int);
        o.put(',');
        bool first = true;
        feature(o, first, "205", item, "1.0");
        feature(o, first, "206", cat, "1.0");
        feature(o, first, "207", shop, "1.0");
        for (std::uint64_t i = 0; i < n_int; ++i) feature(o, first, "210", (cat * 7 + r.below(64)) % 50000, "1.0");
        feature(o, first, "216", brand, "1.0");
        feature(o, first, "508", mix(t.interest ^ cat) % 1000000, kLogCounts[r.below(8)]);
        feature(o, first, "509", mix(t.interest ^ (shop << 1)) % 1000000, kLogCounts[r.below(8)]);
        feature(o, first, "702", mix(t.interest ^ (brand << 2)) % 1000000, kLogCounts[r.below(8)]);
        feature(o, first, "853", mix(t.interest ^ (cat << 3) ^ ctx) % 1000000, kLogCounts[r.below(8)]);
        feature(o, first, "301", ctx, "1.0");
        o.put('\n');
      }
    }
    rep.skeleton_bytes = o.commit();
  }
  return rep;
}

}  // namespace funnel
