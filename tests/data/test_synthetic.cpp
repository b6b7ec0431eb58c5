// The synthetic funnel generator: determinism, structure, calibrated rates, label consistency, the
// click-selection bias it is built to have, and the CLI spec parser.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "data/synthetic.hpp"
#include "train/metrics.hpp"

using namespace funnel;

namespace {

SyntheticConfig small_config(std::int64_t rows = 40000) {
  SyntheticConfig c;
  c.rows = rows;
  c.fields = 8;
  c.vocab_per_field = 300;
  return c;
}

// Column s of a rows × S table, as floats.
template <class T>
std::vector<float> column(const std::vector<T>& table, std::int64_t S, std::int64_t s) {
  std::vector<float> out(table.size() / static_cast<std::size_t>(S));
  for (std::size_t r = 0; r < out.size(); ++r) out[r] = static_cast<float>(table[r * S + s]);
  return out;
}

// Expected cumulative rate of stage s: mean over rows of Π_{k<=s} true_prob[r, k].
double expected_rate(const Dataset& d, std::int64_t s) {
  const auto S = static_cast<std::size_t>(d.num_stages);
  double sum = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    double p = 1;
    for (std::int64_t k = 0; k <= s; ++k) p *= d.true_prob[static_cast<std::size_t>(r) * S + k];
    sum += p;
  }
  return sum / static_cast<double>(d.rows());
}

double observed_rate(const Dataset& d, std::int64_t s) {
  double n = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) n += d.label(r, s);
  return n / static_cast<double>(d.rows());
}

// Mean true CVR among clicked rows divided by its mean over all rows.
double clicked_cvr_ratio(const Dataset& d) {
  const auto pcvr = column(d.true_prob, d.num_stages, 1);
  const auto click = column(d.labels, d.num_stages, 0);
  std::vector<std::uint8_t> clicked(click.begin(), click.end());
  return mean_of(pcvr, clicked) / mean_of(pcvr);
}

void require_message(const std::string& spec, std::initializer_list<const char*> parts) {
  INFO("spec " << spec);
  try {
    parse_synthetic_spec(spec);
    FAIL("no error thrown");
  } catch (const Error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("synthetic data has the documented layout", "[data][synthetic]") {
  const auto c = small_config(5000);
  const Dataset d = make_synthetic(c);
  REQUIRE(d.rows() == c.rows);
  CHECK(d.num_fields == c.fields);
  CHECK(d.num_stages == 2);
  CHECK(d.num_dense == 0);
  CHECK(d.vocab == c.fields * c.vocab_per_field);
  CHECK(d.field_names.size() == static_cast<std::size_t>(c.fields));
  REQUIRE(d.offsets.size() == static_cast<std::size_t>(c.rows * c.fields + 1));
  REQUIRE(d.ids.size() == static_cast<std::size_t>(c.rows * c.fields));
  REQUIRE(d.weights.size() == d.ids.size());
  REQUIRE(d.true_prob.size() == d.labels.size());
  REQUIRE(d.entire_labels.size() == d.labels.size());
  CHECK(d.has_truth());
  for (std::size_t i = 0; i < d.offsets.size(); ++i) REQUIRE(d.offsets[i] == static_cast<std::int64_t>(i));
  for (std::int64_t r = 0; r < d.rows(); ++r)
    for (std::int64_t f = 0; f < d.num_fields; ++f) {
      const auto id = d.ids[static_cast<std::size_t>(r * d.num_fields + f)];
      INFO("row " << r << " field " << f);
      REQUIRE(id >= f * c.vocab_per_field);
      REQUIRE(id < (f + 1) * c.vocab_per_field);
    }
  CHECK(std::all_of(d.weights.begin(), d.weights.end(), [](float w) { return w == 1.0f; }));
}

TEST_CASE("synthetic data is a function of the seed", "[data][synthetic]") {
  auto c = small_config(5000);
  const Dataset a = make_synthetic(c), b = make_synthetic(c);
  CHECK(a.ids == b.ids);
  CHECK(a.labels == b.labels);
  CHECK(a.true_prob == b.true_prob);
  CHECK(a.entire_labels == b.entire_labels);

  c.seed = 2;
  const Dataset other = make_synthetic(c);
  CHECK(other.ids != a.ids);
  CHECK(other.true_prob != a.true_prob);
  CHECK(other.labels != a.labels);
}

TEST_CASE("synthetic rates hit the Ali-CCP-like targets", "[data][synthetic]") {
  auto c = small_config(100000);
  const Dataset d = make_synthetic(c);
  // The intercepts are calibrated on the expected rates: tight.
  CHECK(expected_rate(d, 0) == Approx(c.ctr).epsilon(1e-3));
  CHECK(expected_rate(d, 1) == Approx(c.ctcvr).epsilon(1e-3));
  // Observed rates are Bernoulli draws: within 5 binomial standard deviations.
  const double n = static_cast<double>(c.rows);
  CHECK(std::fabs(observed_rate(d, 0) - c.ctr) < 5 * std::sqrt(c.ctr * (1 - c.ctr) / n));
  CHECK(std::fabs(observed_rate(d, 1) - c.ctcvr) < 5 * std::sqrt(c.ctcvr * (1 - c.ctcvr) / n));

  SECTION("other targets") {
    c.ctr = 0.1;
    c.ctcvr = 0.01;
    c.seed = 9;
    const Dataset e = make_synthetic(c);
    CHECK(expected_rate(e, 0) == Approx(0.1).epsilon(1e-3));
    CHECK(expected_rate(e, 1) == Approx(0.01).epsilon(1e-3));
  }
}

TEST_CASE("synthetic labels are cumulative and consistent with the entire-space labels", "[data][synthetic]") {
  auto c = small_config(20000);
  c.stages = 3;
  c.ctcvr = 0.01;  // enough conversions that every stage has positives
  const Dataset d = make_synthetic(c);
  const std::int64_t S = d.num_stages;
  std::int64_t unclicked_conversions = 0, positives_last = 0;
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    INFO("row " << r);
    const auto at = [&](std::int64_t s) { return static_cast<std::size_t>(r * S + s); };
    REQUIRE(d.labels[at(0)] == d.entire_labels[at(0)]);
    for (std::int64_t s = 0; s < S; ++s) {
      const float p = d.true_prob[at(s)];
      REQUIRE(std::isfinite(p));
      REQUIRE(p > 0.0f);
      REQUIRE(p < 1.0f);
      REQUIRE(d.labels[at(s)] <= 1);
      REQUIRE(d.entire_labels[at(s)] <= 1);
      if (s > 0) {
        REQUIRE(d.labels[at(s)] <= d.labels[at(s - 1)]);
        REQUIRE(d.labels[at(s)] == (d.labels[at(s - 1)] & d.entire_labels[at(s)]));
      }
    }
    unclicked_conversions += d.labels[at(0)] == 0 && d.entire_labels[at(1)] == 1;
    positives_last += d.labels[at(S - 1)];
  }
  // Entire-space conversion labels exist for rows that were never clicked (the counterfactual outcome).
  CHECK(unclicked_conversions > 0);
  CHECK(positives_last > 0);
}

TEST_CASE("clicked impressions are a biased sample for conversion", "[data][synthetic]") {
  auto c = small_config(60000);
  const Dataset d = make_synthetic(c);
  const double ratio = clicked_cvr_ratio(d);
  INFO("mean true CVR among clicked rows / over all rows = " << ratio);
  CHECK(ratio > 1.5);

  // The oracle CVR ranks conversions differently inside the click population than over the entire space, and
  // the entire space is where the model is applied.
  const auto pcvr = column(d.true_prob, 2, 1);
  const auto click = column(d.labels, 2, 0);
  const auto conv_entire = column(d.entire_labels, 2, 1);
  std::vector<std::uint8_t> clicked(click.begin(), click.end());
  const double auc_clicked = roc_auc(pcvr, conv_entire, clicked);
  const double auc_entire = roc_auc(pcvr, conv_entire);
  CHECK(auc_clicked > 0.6);
  CHECK(auc_entire > 0.6);

  SECTION("the bias comes from the knobs: without shared effects, coupling and interactions it mostly vanishes") {
    c.shared = 0;
    c.click_coupling = 0;
    c.interaction = 0;
    const double unbiased = clicked_cvr_ratio(make_synthetic(c));
    INFO("without correlation: ratio = " << unbiased);
    CHECK(unbiased < 1.3);
    CHECK(unbiased < ratio - 0.5);
  }
}

TEST_CASE("oracle predictions evaluate well and are calibrated", "[data][synthetic][metrics]") {
  const Dataset d = make_synthetic(small_config(50000));
  const auto pctr = column(d.true_prob, 2, 0), pcvr = column(d.true_prob, 2, 1);
  std::vector<float> pctcvr(pctr.size());
  for (std::size_t r = 0; r < pctr.size(); ++r) pctcvr[r] = pctr[r] * pcvr[r];
  const auto click = column(d.labels, 2, 0), ctcvr = column(d.labels, 2, 1);
  const auto conv = column(d.entire_labels, 2, 1);
  const FunnelMetrics m = evaluate_funnel({pctr, pcvr, pctcvr, click, ctcvr, conv});
  CHECK(m.ctr_auc > 0.7);
  CHECK(m.cvr_auc > 0.6);
  CHECK(m.ctcvr_auc > 0.8);
  CHECK(m.cvr_auc_entire_space > 0.6);
  CHECK(m.mean_pctr == Approx(0.04).epsilon(1e-3));
  CHECK(m.mean_pctcvr == Approx(0.002).epsilon(1e-3));
  CHECK(m.mean_pcvr_clicked == Approx(m.cvr_rate).epsilon(0.25));
}

TEST_CASE("synthetic field values follow a skewed law", "[data][synthetic]") {
  const auto c = small_config(20000);
  const Dataset d = make_synthetic(c);
  for (std::int64_t f : {std::int64_t{0}, c.fields - 1}) {
    std::map<std::int64_t, std::int64_t> count;
    for (std::int64_t r = 0; r < d.rows(); ++r) ++count[d.ids[static_cast<std::size_t>(r * c.fields + f)]];
    std::int64_t top = 0;
    for (auto& [id, n] : count) top = std::max(top, n);
    INFO("field " << f << ": " << count.size() << " distinct values, top value in " << top << " rows");
    CHECK(static_cast<double>(top) / static_cast<double>(c.rows) > 5.0 / static_cast<double>(c.vocab_per_field));
    CHECK(static_cast<double>(top) / static_cast<double>(c.rows) > 0.05);
    CHECK(count.size() > static_cast<std::size_t>(c.vocab_per_field / 2));  // a long tail, still sampled
  }
}

TEST_CASE("more stages leave the earlier stages unchanged and have decreasing rates", "[data][synthetic]") {
  auto c = small_config(30000);
  const Dataset two = make_synthetic(c);
  c.stages = 4;
  const Dataset four = make_synthetic(c);
  REQUIRE(four.num_stages == 4);
  CHECK(four.ids == two.ids);
  for (std::int64_t s = 0; s < 2; ++s) {
    CHECK(column(four.true_prob, 4, s) == column(two.true_prob, 2, s));
    CHECK(column(four.labels, 4, s) == column(two.labels, 2, s));
    CHECK(column(four.entire_labels, 4, s) == column(two.entire_labels, 2, s));
  }
  double prev = 1;
  for (std::int64_t s = 0; s < 4; ++s) {
    const double e = expected_rate(four, s);
    INFO("stage " << s);
    CHECK(e < prev);
    prev = e;
  }
  CHECK(expected_rate(four, 2) == Approx(c.ctcvr * c.later_stage_ratio).epsilon(1e-3));
  CHECK(expected_rate(four, 3) == Approx(c.ctcvr * c.later_stage_ratio * c.later_stage_ratio).epsilon(1e-3));
}

TEST_CASE("degenerate but valid synthetic configs", "[data][synthetic]") {
  SyntheticConfig c;
  c.rows = 2000;
  c.fields = 1;
  c.vocab_per_field = 1;  // every row identical
  const Dataset d = make_synthetic(c);
  CHECK(std::all_of(d.ids.begin(), d.ids.end(), [](std::int64_t id) { return id == 0; }));
  CHECK(expected_rate(d, 0) == Approx(c.ctr).epsilon(1e-3));
  CHECK(expected_rate(d, 1) == Approx(c.ctcvr).epsilon(1e-3));
}

TEST_CASE("invalid synthetic configs are rejected with the field name", "[data][synthetic]") {
  SyntheticConfig c;
  c.stages = 1;
  CHECK_THROWS_WITH(make_synthetic(c), Catch::Contains("stages"));
  c = {};
  c.rows = 0;
  CHECK_THROWS_WITH(make_synthetic(c), Catch::Contains("rows"));
  c = {};
  c.ctcvr = 0.05;  // above ctr
  CHECK_THROWS_WITH(make_synthetic(c), Catch::Contains("ctcvr"));
  c = {};
  c.shared = 1.5;
  CHECK_THROWS_WITH(make_synthetic(c), Catch::Contains("shared"));
  c = {};
  c.ctr = std::nan("");
  CHECK_THROWS_WITH(make_synthetic(c), Catch::Contains("ctr"));
}

TEST_CASE("synthetic spec parsing", "[data][synthetic]") {
  CHECK(is_synthetic_spec("synthetic"));
  CHECK(is_synthetic_spec("synthetic:rows=5"));
  CHECK_FALSE(is_synthetic_spec("synthetics"));
  CHECK_FALSE(is_synthetic_spec("data/train.csv"));

  const SyntheticConfig dflt = parse_synthetic_spec("synthetic");
  CHECK(dflt.rows == SyntheticConfig{}.rows);
  CHECK(dflt.fields == SyntheticConfig{}.fields);
  CHECK(dflt.seed == SyntheticConfig{}.seed);

  const SyntheticConfig c = parse_synthetic_spec("synthetic:rows=1000,fields=4,vocab=50,seed=7,stages=3");
  CHECK(c.rows == 1000);
  CHECK(c.fields == 4);
  CHECK(c.vocab_per_field == 50);
  CHECK(c.seed == 7);
  CHECK(c.stages == 3);
  CHECK(c.ctr == SyntheticConfig{}.ctr);

  const SyntheticConfig r = parse_synthetic_spec("synthetic:ctr=0.1,ctcvr=0.02,shared=0,coupling=0,interaction=0.25");
  CHECK(r.ctr == 0.1);
  CHECK(r.ctcvr == 0.02);
  CHECK(r.shared == 0.0);
  CHECK(r.click_coupling == 0.0);
  CHECK(r.interaction == 0.25);
  CHECK(parse_synthetic_spec("synthetic:seed=18446744073709551615").seed == 18446744073709551615ull);
}

TEST_CASE("synthetic spec errors name the key and the expected form", "[data][synthetic]") {
  require_message("synthetic:rowz=5", {"rowz", "unknown key", "synthetic:key=value"});
  require_message("synthetic:rows=abc", {"rows", "abc", "integer"});
  require_message("synthetic:rows=12x", {"rows", "12x"});
  require_message("synthetic:rows=1.5", {"rows", "integer"});
  require_message("synthetic:rows=", {"rows"});
  require_message("synthetic:rows=-5", {"rows", "[1, 1e9]"});
  require_message("synthetic:stages=1", {"stages", "[2, 16]"});
  require_message("synthetic:vocab=0", {"vocab"});
  require_message("synthetic:seed=-1", {"seed", "non-negative integer"});
  require_message("synthetic:ctr=zero", {"ctr", "number"});
  require_message("synthetic:ctr=nan", {"ctr"});
  require_message("synthetic:ctcvr=0.5", {"ctcvr", "ctr"});
  require_message("synthetic:rows=10,rows=20", {"rows", "twice"});
  require_message("synthetic:", {"no key=value"});
  require_message("synthetic:rows", {"rows", "key=value"});
  require_message("synthetic:rows=10,", {"empty item"});
  require_message("synthetic:rows=10,,fields=2", {"empty item"});
  require_message("csv:foo", {"not a synthetic spec"});
}

namespace {

// Pearson correlation of the click and conversion logits of the true probabilities over all rows.
double logit_correlation(const Dataset& d) {
  const auto S = static_cast<std::size_t>(d.num_stages);
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  const auto n = static_cast<double>(d.rows());
  for (std::int64_t r = 0; r < d.rows(); ++r) {
    const double p0 = d.true_prob[static_cast<std::size_t>(r) * S], p1 = d.true_prob[static_cast<std::size_t>(r) * S + 1];
    const double x = std::log(p0 / (1 - p0)), y = std::log(p1 / (1 - p1));
    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
  }
  const double cov = sxy / n - sx / n * sy / n;
  return cov / std::sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n));
}

}  // namespace

TEST_CASE("the selection-bias knob sets how click and conversion propensities are related", "[data][synthetic]") {
  auto c = small_config(60000);
  c.interaction = 0;  // the main effects alone: the logit correlation is then the knob (up to sampling)
  std::map<double, double> corr, ratio;
  for (double b : {-0.9, 0.0, 0.5, 0.9}) {
    c.selection_bias = b;
    const Dataset d = make_synthetic(c);
    corr[b] = logit_correlation(d);
    ratio[b] = clicked_cvr_ratio(d);
    INFO("bias " << b << ": logit correlation " << corr[b] << ", clicked/all true CVR " << ratio[b]);
    CHECK(std::fabs(corr[b] - b) < 0.1);
  }
  // No bias: clicked rows have the population's conversion rate; the bias grows with the knob and reverses sign.
  CHECK(std::fabs(ratio[0.0] - 1.0) < 0.1);
  CHECK(ratio[0.5] > ratio[0.0] + 0.2);
  CHECK(ratio[0.9] > ratio[0.5] + 0.2);
  CHECK(ratio[-0.9] < 0.8);

  SECTION("with interactions the knob still orders the bias, and the rates stay calibrated") {
    c.interaction = 0.5;
    c.selection_bias = 0.0;
    const Dataset d0 = make_synthetic(c);
    c.selection_bias = 0.9;
    const Dataset d9 = make_synthetic(c);
    CHECK(std::fabs(logit_correlation(d0)) < 0.1);  // finite vocabularies: sampled effects
    CHECK(logit_correlation(d9) > 0.6);
    CHECK(clicked_cvr_ratio(d9) > clicked_cvr_ratio(d0) + 0.5);
    CHECK(expected_rate(d9, 1) == Approx(c.ctcvr).epsilon(1e-3));
    CHECK(expected_rate(d0, 1) == Approx(c.ctcvr).epsilon(1e-3));
  }
}

TEST_CASE("the bias knob leaves features and click propensities alone", "[data][synthetic]") {
  auto c = small_config(5000);
  c.selection_bias = 0.2;
  const Dataset a = make_synthetic(c);
  c.selection_bias = 0.8;
  const Dataset b = make_synthetic(c);
  CHECK(a.ids == b.ids);
  CHECK(column(a.true_prob, 2, 0) == column(b.true_prob, 2, 0));
  CHECK(column(a.labels, 2, 0) == column(b.labels, 2, 0));
  CHECK(column(a.true_prob, 2, 1) != column(b.true_prob, 2, 1));
  c.selection_bias = 0.8;
  const Dataset b2 = make_synthetic(c);
  CHECK(b2.true_prob == b.true_prob);
}

TEST_CASE("the bias spec key", "[data][synthetic]") {
  const auto c = parse_synthetic_spec("synthetic:rows=100,bias=-0.25");
  CHECK(c.has_selection_bias());
  CHECK(c.selection_bias == -0.25);
  CHECK_FALSE(parse_synthetic_spec("synthetic:rows=100").has_selection_bias());
  require_message("synthetic:bias=1.5", {"bias", "[-1, 1]", "1.5"});
  require_message("synthetic:bias=x", {"bias", "number"});
  require_message("synthetic:bias=0.5,shared=0.3", {"bias", "shared"});
  require_message("synthetic:coupling=0.1,bias=0.5", {"bias", "coupling"});
}
