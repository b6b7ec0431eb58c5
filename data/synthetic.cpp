#include "data/synthetic.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.hpp"

namespace funnel {
namespace {

// SplitMix64 finaliser: turns (seed, stream) into well-spread engine seeds.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// mt19937_64 with hand-written transforms, so the numbers depend only on the engine (fully specified by the
// standard) and on libm, not on the standard library's distribution implementations.
class Rng {
 public:
  Rng(std::uint64_t seed, std::uint64_t stream) : eng_(splitmix64(seed ^ splitmix64(stream))) {}
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }
  // Standard normal (Box-Muller, both values used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = static_cast<double>((eng_() >> 11) + 1) * 0x1.0p-53;  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 2.0 * 3.14159265358979323846 * u2;
    spare_ = r * std::sin(t);
    has_spare_ = true;
    return r * std::cos(t);
  }
  // Uniform integer in [0, n) (multiply-shift; bias < n / 2^64).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(eng_()) * n) >> 64);
  }

 private:
  std::mt19937_64 eng_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Find b with mean_r(weight[r] · sigmoid(b + logit[r·S + s])) = target. The left side increases in b; safeguarded
// Newton inside a bisection bracket. `weight` empty means all ones.
double calibrate_intercept(const std::vector<double>& logit, std::int64_t S, std::int64_t s,
                           const std::vector<double>& weight, double target) {
  const std::size_t n = weight.empty() ? logit.size() / static_cast<std::size_t>(S) : weight.size();
  auto eval = [&](double b, double& deriv) {
    double m = 0, d = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const double p = sigmoid(b + logit[r * static_cast<std::size_t>(S) + static_cast<std::size_t>(s)]);
      const double w = weight.empty() ? 1.0 : weight[r];
      m += w * p;
      d += w * p * (1.0 - p);
    }
    deriv = d / static_cast<double>(n);
    return m / static_cast<double>(n) - target;
  };
  double lo = -20, hi = 20, dd = 0;
  while (eval(lo, dd) > 0 && lo > -1e4) lo *= 2;
  while (eval(hi, dd) < 0 && hi < 1e4) hi *= 2;
  double b = 0.5 * (lo + hi);
  for (int it = 0; it < 200; ++it) {
    const double f = eval(b, dd);
    if (std::fabs(f) <= 1e-12 * target) break;
    if (f > 0) hi = b; else lo = b;
    double next = dd > 0 ? b - f / dd : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (hi - lo < 1e-13) break;
    b = next;
  }
  return b;
}

const char* kSpecForm =
    "synthetic or synthetic:key=value,... with keys rows=N, fields=F, vocab=V (per field), seed=S, stages=K (>= 2), "
    "ctr=P, ctcvr=P, ratio=P, zipf=A, logit_std=X, shared=R, interaction=X, coupling=X, bias=R (in [-1, 1], "
    "not with shared or coupling)";

[[noreturn]] void spec_error(const std::string& spec, const std::string& what) {
  throw Error("data spec \"" + spec + "\": " + what + " (expected " + kSpecForm + ")");
}

}  // namespace

void validate(const SyntheticConfig& c) {
  auto fail = [](const std::string& field, const std::string& range, const std::string& got) {
    throw Error("synthetic config: " + field + " must be " + range + ", got " + got);
  };
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  if (c.rows < 1 || c.rows > 1'000'000'000) fail("rows", "in [1, 1e9]", std::to_string(c.rows));
  if (c.fields < 1 || c.fields > 10'000) fail("fields", "in [1, 10000]", std::to_string(c.fields));
  if (c.vocab_per_field < 1 || c.vocab_per_field > 100'000'000)
    fail("vocab_per_field (key vocab)", "in [1, 1e8]", std::to_string(c.vocab_per_field));
  if (c.stages < 2 || c.stages > 16) fail("stages", "in [2, 16]", std::to_string(c.stages));
  if (c.rows > (std::int64_t{1} << 36) / c.fields)
    fail("rows·fields", "at most 2^36", std::to_string(c.rows) + "·" + std::to_string(c.fields));
  if (!(c.ctr > 0 && c.ctr < 1)) fail("ctr", "in (0, 1)", num(c.ctr));
  if (!(c.ctcvr > 0 && c.ctcvr < c.ctr)) fail("ctcvr", "in (0, ctr=" + num(c.ctr) + ")", num(c.ctcvr));
  if (!(c.later_stage_ratio > 0 && c.later_stage_ratio < 1))
    fail("later_stage_ratio (key ratio)", "in (0, 1)", num(c.later_stage_ratio));
  if (!(c.zipf_exponent >= 0 && c.zipf_exponent <= 10)) fail("zipf_exponent (key zipf)", "in [0, 10]", num(c.zipf_exponent));
  if (!(c.logit_std >= 0 && c.logit_std <= 10)) fail("logit_std", "in [0, 10]", num(c.logit_std));
  if (!(c.shared >= 0 && c.shared <= 1)) fail("shared", "in [0, 1]", num(c.shared));
  if (!(c.interaction >= 0 && c.interaction <= 10)) fail("interaction", "in [0, 10]", num(c.interaction));
  if (!(c.click_coupling >= 0 && c.click_coupling <= 10))
    fail("click_coupling (key coupling)", "in [0, 10]", num(c.click_coupling));
  if (c.has_selection_bias() && !(c.selection_bias >= -1 && c.selection_bias <= 1))
    fail("selection_bias (key bias)", "in [-1, 1]", num(c.selection_bias));
}

Dataset make_synthetic(const SyntheticConfig& c) {
  validate(c);
  const std::int64_t N = c.rows, F = c.fields, V = c.vocab_per_field, S = c.stages;
  const auto uN = static_cast<std::size_t>(N), uF = static_cast<std::size_t>(F), uV = static_cast<std::size_t>(V),
             uS = static_cast<std::size_t>(S);

  // --- Latent effects: effect[s][f·V + v] = σ_f (√shared · z + √(1-shared) · u_s). Field scales decay
  // geometrically and are normalised so that Σ σ_f² = logit_std².
  // Separate streams for the shared component and for every stage, so that adding stages leaves the earlier
  // stages (and the features) unchanged.
  Rng shared_rng(c.seed, 1);
  std::vector<double> sigma(uF);
  {
    double tot = 0;
    for (std::size_t f = 0; f < uF; ++f) tot += (sigma[f] = std::pow(0.85, static_cast<double>(f))) * sigma[f];
    for (auto& x : sigma) x *= c.logit_std / std::sqrt(tot);
  }
  // Weights of the shared component z and of the stage's own draw: (a0, b0) for stage 0, (a, b) for later stages.
  // Without the bias knob both are (√shared, √(1 − shared)), so corr(effect_0, effect_s) = shared. With it, the
  // click effects are z alone (the same for every bias) and the later stages take (ρ, √(1 − ρ²)), so the
  // correlation is exactly ρ = selection_bias, and the click coupling is off.
  const bool knob = c.has_selection_bias();
  const double a = knob ? c.selection_bias : std::sqrt(c.shared), b = knob ? std::sqrt(1.0 - a * a) : std::sqrt(1.0 - c.shared);
  const double a0 = knob ? 1.0 : a, b0 = knob ? 0.0 : b;
  const double coupling = knob ? 0.0 : c.click_coupling;
  std::vector<std::vector<double>> effect(uS, std::vector<double>(uF * uV));
  for (std::size_t f = 0; f < uF; ++f)
    for (std::size_t v = 0; v < uV; ++v) effect[0][f * uV + v] = shared_rng.normal();  // z, scaled below
  for (std::size_t s = uS; s-- > 0;) {
    Rng stage_rng(c.seed, 100 + s);
    for (std::size_t f = 0; f < uF; ++f)
      for (std::size_t v = 0; v < uV; ++v)
        effect[s][f * uV + v] = sigma[f] * ((s ? a : a0) * effect[0][f * uV + v] + (s ? b : b0) * stage_rng.normal());
  }
  // Pairwise interactions for stages ≥ 1 on field pairs (0,1), (2,3), (4,5): inter[s][f·V + v] ~ N(0, 1), term =
  // interaction / √pairs · Σ_pairs inter[s](f, v_f) · inter[s](f+1, v_{f+1}).
  const std::size_t pairs = std::min<std::size_t>(3, uF / 2);
  std::vector<std::vector<double>> inter(uS);
  for (std::size_t s = 1; s < uS && pairs > 0; ++s) {
    Rng inter_rng(c.seed, 200 + s);
    inter[s].resize(2 * pairs * uV);
    for (auto& x : inter[s]) x = inter_rng.normal();
  }
  const double inter_scale = pairs ? c.interaction / std::sqrt(static_cast<double>(pairs)) : 0.0;

  // --- Features: per field a Zipf-like law over ranks, mapped to values by a random permutation.
  Dataset d;
  d.num_fields = F;
  d.num_stages = S;
  d.num_dense = 0;
  d.vocab = F * V;
  d.field_names.reserve(uF);
  for (std::int64_t f = 0; f < F; ++f) {
    std::string name = "f";  // appended, not "f" + to_string(f): GCC 12 warns falsely (-Wstringop-overflow) on that
    name += std::to_string(f);
    d.field_names.push_back(std::move(name));
  }
  std::vector<double> cdf(uV);
  {
    double acc = 0;
    for (std::size_t k = 0; k < uV; ++k) cdf[k] = (acc += std::pow(static_cast<double>(k + 1), -c.zipf_exponent));
    for (auto& x : cdf) x /= acc;
    cdf[uV - 1] = 1.0;
  }
  // guide[j] = first k with cdf[k] > j / V, so sampling is a short forward scan instead of a binary search.
  std::vector<std::size_t> guide(uV);
  for (std::size_t j = 0, k = 0; j < uV; ++j) {
    while (k + 1 < uV && cdf[k] <= static_cast<double>(j) / static_cast<double>(uV)) ++k;
    guide[j] = k;
  }
  Rng feat_rng(c.seed, 2);
  std::vector<std::vector<std::int64_t>> rank_to_value(uF, std::vector<std::int64_t>(uV));
  for (auto& perm : rank_to_value) {
    for (std::size_t k = 0; k < uV; ++k) perm[k] = static_cast<std::int64_t>(k);
    for (std::size_t k = uV; k > 1; --k) std::swap(perm[k - 1], perm[feat_rng.below(k)]);
  }
  d.offsets.resize(uN * uF + 1);
  d.ids.resize(uN * uF);
  d.weights.assign(uN * uF, 1.0f);
  for (std::size_t i = 0; i <= uN * uF; ++i) d.offsets[i] = static_cast<std::int64_t>(i);
  for (std::size_t r = 0; r < uN; ++r)
    for (std::size_t f = 0; f < uF; ++f) {
      const double u = feat_rng.uniform();
      // First k with cdf[k] > u, starting from the guide entry of u's bucket (exactly std::upper_bound's answer).
      std::size_t k = guide[std::min(uV - 1, static_cast<std::size_t>(u * static_cast<double>(uV)))];
      while (k + 1 < uV && cdf[k] <= u) ++k;
      d.ids[r * uF + f] = static_cast<std::int64_t>(f) * V + rank_to_value[f][k];
    }

  // --- Logits without intercepts.
  std::vector<double> logit(uN * uS);
  for (std::size_t r = 0; r < uN; ++r) {
    const std::int64_t* row = &d.ids[r * uF];
    double click_sum = 0;
    for (std::size_t s = 0; s < uS; ++s) {
      double m = 0;
      for (std::size_t f = 0; f < uF; ++f) m += effect[s][static_cast<std::size_t>(row[f])];
      if (s == 0) {
        click_sum = m;
      } else {
        for (std::size_t p = 0; p < pairs; ++p) {
          const auto v0 = static_cast<std::size_t>(row[2 * p] - static_cast<std::int64_t>(2 * p) * V);
          const auto v1 = static_cast<std::size_t>(row[2 * p + 1] - static_cast<std::int64_t>(2 * p + 1) * V);
          m += inter_scale * inter[s][(2 * p) * uV + v0] * inter[s][(2 * p + 1) * uV + v1];
        }
        if (c.logit_std > 0) m += coupling * click_sum * click_sum / c.logit_std;
      }
      logit[r * uS + s] = m;
    }
  }

  // --- Intercepts: expected cumulative rate of stage s = target_s; reach[r] = Π_{k<s} p_k(r).
  std::vector<double> reach;  // empty = all ones (before stage 0)
  double target = c.ctr;
  d.true_prob.resize(uN * uS);
  for (std::size_t s = 0; s < uS; ++s) {
    if (s == 1) target = c.ctcvr;
    else if (s > 1) target *= c.later_stage_ratio;
    const double icpt = calibrate_intercept(logit, S, static_cast<std::int64_t>(s), reach, target);
    if (reach.empty()) reach.assign(uN, 1.0);
    for (std::size_t r = 0; r < uN; ++r) {
      const double p = std::clamp(sigmoid(icpt + logit[r * uS + s]), 1e-9, 1.0 - 1e-7);
      d.true_prob[r * uS + s] = static_cast<float>(p);
      reach[r] *= p;
    }
  }

  // --- Labels: potential outcomes for every stage, then the cumulative observed labels.
  // One stream per stage, so that adding stages leaves the earlier stages' labels unchanged.
  d.entire_labels.resize(uN * uS);
  d.labels.resize(uN * uS);
  for (std::size_t s = 0; s < uS; ++s) {
    Rng label_rng(c.seed, 300 + s);
    for (std::size_t r = 0; r < uN; ++r) {
      const std::uint8_t y = label_rng.uniform() < static_cast<double>(d.true_prob[r * uS + s]) ? 1 : 0;
      d.entire_labels[r * uS + s] = y;
      d.labels[r * uS + s] = static_cast<std::uint8_t>(y & (s == 0 ? 1 : d.labels[r * uS + s - 1]));
    }
  }
  return d;
}

bool is_synthetic_spec(const std::string& spec) {
  return spec == "synthetic" || spec.rfind("synthetic:", 0) == 0;
}

SyntheticConfig parse_synthetic_spec(const std::string& spec) {
  SyntheticConfig c;
  if (spec == "synthetic") return c;
  if (!is_synthetic_spec(spec)) spec_error(spec, "not a synthetic spec");
  const std::string body = spec.substr(std::string("synthetic:").size());
  if (body.empty()) spec_error(spec, "no key=value pairs after ':'");
  std::set<std::string> seen;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    const std::size_t comma = std::min(body.find(',', pos), body.size());
    const std::string item = body.substr(pos, comma - pos);
    pos = comma + 1;
    const std::size_t eq = item.find('=');
    if (item.empty()) spec_error(spec, "empty item");
    if (eq == std::string::npos) spec_error(spec, "item \"" + item + "\" is not key=value");
    const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    if (!seen.insert(key).second) spec_error(spec, "key '" + key + "' given twice");
    auto as_int = [&](std::int64_t& out) {
      const char* e = val.data() + val.size();
      auto [p, ec] = std::from_chars(val.data(), e, out);
      if (val.empty() || ec != std::errc() || p != e)
        spec_error(spec, "bad value \"" + val + "\" for key '" + key + "' (expected an integer)");
    };
    auto as_real = [&](double& out) {
      const char* e = val.data() + val.size();
      auto [p, ec] = std::from_chars(val.data(), e, out);
      if (val.empty() || ec != std::errc() || p != e || !std::isfinite(out))
        spec_error(spec, "bad value \"" + val + "\" for key '" + key + "' (expected a number)");
    };
    if (key == "rows") as_int(c.rows);
    else if (key == "fields") as_int(c.fields);
    else if (key == "vocab") as_int(c.vocab_per_field);
    else if (key == "stages") as_int(c.stages);
    else if (key == "seed") {
      const char* e = val.data() + val.size();
      auto [p, ec] = std::from_chars(val.data(), e, c.seed);
      if (val.empty() || ec != std::errc() || p != e)
        spec_error(spec, "bad value \"" + val + "\" for key 'seed' (expected a non-negative integer)");
    } else if (key == "ctr") as_real(c.ctr);
    else if (key == "ctcvr") as_real(c.ctcvr);
    else if (key == "ratio") as_real(c.later_stage_ratio);
    else if (key == "zipf") as_real(c.zipf_exponent);
    else if (key == "logit_std") as_real(c.logit_std);
    else if (key == "shared") as_real(c.shared);
    else if (key == "interaction") as_real(c.interaction);
    else if (key == "coupling") as_real(c.click_coupling);
    else if (key == "bias") as_real(c.selection_bias);
    else spec_error(spec, "unknown key '" + key + "'");
  }
  if (seen.count("bias") && (seen.count("shared") || seen.count("coupling")))
    spec_error(spec, "key 'bias' sets shared and coupling itself; give either bias or shared/coupling");
  try {
    validate(c);
  } catch (const Error& e) {
    spec_error(spec, e.what());
  }
  return c;
}

}  // namespace funnel
