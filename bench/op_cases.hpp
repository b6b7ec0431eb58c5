#pragma once
// The op benchmark cases and the harness that runs one op alone, shared by bench/bench_ops.cpp and the test that
// checks every registered op has a case (tests/ops/test_bench_cases.cpp). Header-only and free of Google
// Benchmark, so the test binary needs nothing extra.
//
// OpRun builds a one-op graph (so the op's shape rule runs and its Node carries the attributes), then holds the
// op's input values, output, output gradient, input gradients and sparse-row accumulators itself and calls the
// op's forward/backward through a Ctx exactly as Executor<float> does (autodiff/executor.cpp), minus the
// executor's bookkeeping (plan walk, finite check): what is timed is the op.
//
// Shapes are those of ESMM (20 fields × dim 18 -> 360 -> 200 -> 80 -> 1, embedding 100,000 × 18) plus a few wider
// ones for the elementwise ops; the batch size is a benchmark argument.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/graph.hpp"
#include "core/ids.hpp"
#include "ops/gemm_backend.hpp"
#include "ops/op.hpp"

namespace funnel::bench {

struct InputSpec {
  enum class Kind { Value, Ids };
  Kind kind = Kind::Value;
  Shape shape;            // may start with kBatch (fed per batch); fixed shapes become parameters
  float lo = -1.0f;       // values drawn uniformly from [lo, hi]
  float hi = 1.0f;
  bool binary = false;    // 0/1 labels instead
  std::int64_t fields = 0;          // Ids: fields per row (one id per cell)
  std::int64_t vocab_per_field = 0;  // Ids: field f draws from [f·vpf, (f+1)·vpf)
  double mean_bag = 1.0;             // Ids: ids per cell, 1 + Poisson(mean_bag - 1) (1: one id per cell)

  static InputSpec value(Shape s, float lo = -1.0f, float hi = 1.0f) {
    InputSpec i;
    i.shape = std::move(s);
    i.lo = lo;
    i.hi = hi;
    return i;
  }
  static InputSpec labels(Shape s) {
    InputSpec i = value(std::move(s), 0.0f, 1.0f);
    i.binary = true;
    return i;
  }
  static InputSpec ids(std::int64_t fields, std::int64_t vocab_per_field) {
    InputSpec i;
    i.kind = Kind::Ids;
    i.shape = Shape{kBatch, fields};
    i.fields = fields;
    i.vocab_per_field = vocab_per_field;
    return i;
  }
  // Multi-valued cells (bags) of mean size mean_bag, as in Ali-CCP's rows.
  static InputSpec bags(std::int64_t fields, std::int64_t vocab_per_field, double mean_bag) {
    InputSpec i = ids(fields, vocab_per_field);
    i.mean_bag = mean_bag;
    return i;
  }
};

struct OpCase {
  std::string op;
  std::string label;  // the shapes, e.g. "B×360·360×200"
  std::vector<InputSpec> inputs;
  Attrs attrs;
  // FLOPs of one forward / backward call at batch B (0: the op is counted in bytes only).
  std::function<double(std::int64_t)> fwd_flops;
  std::function<double(std::int64_t)> bwd_flops;
  // Input i takes a sparse gradient (an embedding table read through ids).
  bool sparse_input(std::size_t i) const {
    const Op& o = get_op(op);
    return o.differentiable(i) && inputs[i].kind != InputSpec::Kind::Ids && o.sparse_grad(i);
  }
  // Some input takes a sparse gradient: the case also gets a /fwd+bwd benchmark.
  bool has_sparse() const {
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (sparse_input(i)) return true;
    return false;
  }
};

// One op with its buffers, ready to run forward and backward at a fixed batch size.
class OpRun {
 public:
  OpRun(const OpCase& oc, std::int64_t batch, std::uint64_t seed = 1) : batch_(batch) {
    std::vector<NodeId> in_nodes;
    for (std::size_t i = 0; i < oc.inputs.size(); ++i) {
      const InputSpec& s = oc.inputs[i];
      const std::string nm = "in" + std::to_string(i);
      if (s.kind == InputSpec::Kind::Ids) in_nodes.push_back(g_.add_ids(nm, s.fields));
      else if (s.shape.has_batch()) in_nodes.push_back(g_.add_input(nm, s.shape));
      else in_nodes.push_back(g_.add_param(nm, s.shape, Init::zeros()));
    }
    node_ = g_.add_op(oc.op, in_nodes, oc.attrs, "op");
    op_ = &get_op(oc.op);
    const Node& nd = g_.node(node_);
    const std::size_t k = oc.inputs.size();
    values_.resize(k);
    grads_.resize(k);
    ids_.resize(k);
    sparse_.resize(k);
    in_ptrs_.assign(k, nullptr);
    param_.assign(k, 0);
    id_ptrs_.assign(k, nullptr);
    gin_ptrs_.assign(k, nullptr);
    sparse_ptrs_.assign(k, nullptr);
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i < k; ++i) {
      const InputSpec& s = oc.inputs[i];
      if (s.kind == InputSpec::Kind::Ids) {
        IdBatch& b = ids_[i];
        b.reset(batch, s.fields);
        std::poisson_distribution<int> extra(std::max(s.mean_bag - 1.0, 1e-9));
        for (std::int64_t r = 0; r < batch; ++r)
          for (std::int64_t f = 0; f < s.fields; ++f) {
            std::uniform_int_distribution<std::int64_t> d(0, s.vocab_per_field - 1);
            const int n = s.mean_bag > 1.0 ? 1 + extra(rng) : 1;
            for (int j = 0; j < n; ++j) b.push(f * s.vocab_per_field + d(rng));
            b.end_cell();
          }
        id_ptrs_[i] = &b;
        continue;
      }
      values_[i] = Tensor<float>::from_shape(s.shape.concrete(batch));
      std::uniform_real_distribution<float> u(s.lo, s.hi);
      for (auto& v : values_[i]) v = s.binary ? (u(rng) < 0.3f ? 1.0f : 0.0f) : u(rng);
      in_ptrs_[i] = &values_[i];
      param_[i] = !s.shape.has_batch();
    }
    for (std::size_t i = 0; i < k; ++i)  // tables read through ids: the rows gathered
      if (in_ptrs_[i] && values_[i].dimension() == 2)
        for (auto& ib : ids_)
          gathered_ += static_cast<double>(ib.ids.size()) * static_cast<double>(values_[i].shape()[1]) * 4.0;
    out_ = Tensor<float>::from_shape(nd.shape.concrete(batch));
    out_.fill(0.0f);
    gout_ = Tensor<float>::from_shape(nd.shape.concrete(batch));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto& v : gout_) v = u(rng);
    for (std::size_t i = 0; i < k; ++i) {
      if (!op_->differentiable(i) || oc.inputs[i].kind == InputSpec::Kind::Ids) continue;
      if (oc.sparse_input(i)) {
        sparse_[i] = std::make_unique<SparseRows<float>>();
        sparse_[i]->init(static_cast<std::int64_t>(values_[i].shape()[0]),
                         static_cast<std::int64_t>(values_[i].shape()[1]));
        std::size_t total = 0;
        for (auto& b : ids_) total += b.ids.size();
        sparse_[i]->rows.reserve(total);
        sparse_[i]->values.reserve(total * values_[i].shape()[1]);
        sparse_ptrs_[i] = sparse_[i].get();
        has_sparse_ = true;
      } else {
        grads_[i] = Tensor<float>::from_shape(values_[i].shape());
        grads_[i].fill(0.0f);
        gin_ptrs_[i] = &grads_[i];
      }
    }
    c_.node = &g_.node(node_);
    c_.batch = batch;
    c_.in = std::span<const Tensor<float>* const>(in_ptrs_);
    c_.ids = std::span<const IdBatch* const>(id_ptrs_);
    c_.out = &out_;
    c_.gout = &gout_;
    c_.gin = std::span<Tensor<float>* const>(gin_ptrs_);
    c_.sparse = std::span<SparseRows<float>* const>(sparse_ptrs_);
  }
  OpRun(const OpRun&) = delete;
  OpRun& operator=(const OpRun&) = delete;

  // As the executor does once per step under --precision bf16: the fixed-shape inputs (parameters) in the op's
  // gemm_operand() slots rounded to bf16 into copies handed over as Ctx::rounded (sized once; no-op without any).
  // `off` hands none over again (the per-call rounding path).
  void round_params_bf16(bool on = true) {
    rounded_.resize(values_.size());
    rnd_ptrs_.assign(values_.size(), nullptr);
    bool any = false;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      if (!on || !in_ptrs_[i] || !param_[i] || !op_->gemm_operand(i)) continue;
      rounded_[i].resize(values_[i].shape());
      round_weights_bf16(values_[i].data(), values_[i].size(), rounded_[i].data());
      rnd_ptrs_[i] = &rounded_[i];
      any = true;
    }
    c_.rounded = any ? std::span<const Tensor<float>* const>(rnd_ptrs_) : std::span<const Tensor<float>* const>();
  }

  // A forward pass as evaluation and serving run it: no sparse gradient is prepared.
  void forward() {
    c_.sparse = {};
    op_->forward(c_);
    c_.sparse = std::span<SparseRows<float>* const>(sparse_ptrs_);
  }
  // The executor clears sparse accumulators before each backward; so does this (O(rows touched)).
  void backward() {
    for (auto& s : sparse_)
      if (s) s->clear();
    op_->backward(c_);
  }
  // A training step's forward and backward, as Executor::forward_for_backward and backward run them: an op that
  // prepares_sparse() lays out its sparse gradient rows in the forward pass.
  void forward_backward() {
    for (auto& s : sparse_)
      if (s) s->clear();
    op_->forward(c_);
    op_->backward(c_);
  }

  const Tensor<float>& out() const { return out_; }
  // Bytes an ideal implementation moves. Forward reads the inputs and writes the output; with ids, a table is not
  // streamed: only the gathered rows count, plus the ids and weights. Backward reads the output gradient and the
  // inputs and writes the input gradients (for a sparse table, the touched rows).
  double fwd_bytes() const { return in_bytes() + static_cast<double>(out_.size()) * 4.0; }
  double bwd_bytes() const {
    double b = static_cast<double>(gout_.size()) * 4.0 + in_bytes();
    for (std::size_t i = 0; i < grads_.size(); ++i)
      if (gin_ptrs_[i]) b += static_cast<double>(grads_[i].size()) * 4.0;
    return b + (has_sparse_ ? gathered_ : 0.0);
  }
  std::int64_t batch() const { return batch_; }

 private:
  double in_bytes() const {
    double b = 0;
    for (std::size_t i = 0; i < values_.size(); ++i) {
      if (id_ptrs_[i]) b += static_cast<double>(ids_[i].ids.size()) * 12.0;  // id + weight
      else if (!(gathered_ > 0 && values_[i].dimension() == 2)) b += static_cast<double>(values_[i].size()) * 4.0;
    }
    return b + gathered_;
  }

  std::int64_t batch_;
  Graph g_;
  NodeId node_ = 0;
  const Op* op_ = nullptr;
  std::vector<Tensor<float>> values_, grads_;
  std::vector<IdBatch> ids_;
  std::vector<std::unique_ptr<SparseRows<float>>> sparse_;
  std::vector<const Tensor<float>*> in_ptrs_;
  std::vector<char> param_;  // per input: a fixed shape (a parameter in the one-op graph)
  std::vector<Tensor<float>> rounded_;
  std::vector<const Tensor<float>*> rnd_ptrs_;
  std::vector<const IdBatch*> id_ptrs_;
  std::vector<Tensor<float>*> gin_ptrs_;
  std::vector<SparseRows<float>*> sparse_ptrs_;
  Tensor<float> out_, gout_;
  double gathered_ = 0.0;  // bytes of table rows read through ids
  bool has_sparse_ = false;
  Ctx<float> c_;
};

// ESMM's dimensions.
inline constexpr std::int64_t kFields = 20;
inline constexpr std::int64_t kDim = 18;
inline constexpr std::int64_t kVocab = 100000;
inline constexpr std::int64_t kConcat = kFields * kDim;  // 360
// Ali-CCP's rows (as funnel-synth writes them): 23 fields, bags of 10.6 ids on average (~244 ids a row).
inline constexpr std::int64_t kAliFields = 23;
inline constexpr double kAliMeanBag = 10.6;
inline constexpr std::int64_t kAliVocab = kAliFields * 65536;  // funnel-synth's hashed vocabulary (1,507,328)
// The dense layers of one tower: K -> N.
struct Layer {
  std::int64_t k, n;
};
inline const std::vector<Layer>& esmm_layers() {
  static const std::vector<Layer> l{{kConcat, 200}, {200, 80}, {80, 1}};
  return l;
}

// The batch sizes every benchmark runs at.
inline const std::vector<std::int64_t> kBatches{128, 1024};

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A dense layer's operands and gradients for a batch of m rows, K -> N, filled with values in [-1, 1) (seed 7):
// x (m×K), W (K×N) and its bf16-rounded copy w16, y, gy, z (m×N), gx (m×K), gW (K×N), bias b and gb (N).
struct Buffers {
  std::vector<float> x, w, w16, y, gy, gx, gw, b, gb, z;
  Buffers(std::int64_t m, std::int64_t k, std::int64_t n) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto fill = [&](std::vector<float>& v, std::int64_t size) {
      v.resize(static_cast<std::size_t>(size));
      for (auto& e : v) e = u(rng);
    };
    fill(x, m * k);
    fill(w, k * n);
    w16.resize(w.size());
    round_weights_bf16(w.data(), w.size(), w16.data());
    fill(y, m * n);
    fill(gy, m * n);
    fill(gx, m * k);
    fill(gw, k * n);
    fill(b, n);
    fill(gb, n);
    fill(z, m * n);
  }
};

inline std::string dims_str(const std::vector<std::int64_t>& d) {
  std::string s;
  for (std::size_t i = 0; i < d.size(); ++i) {  // appended piece by piece (GCC 12 warns on "lit" + to_string)
    if (i) s += 'x';
    if (d[i] == kBatch) s += 'B';
    else s += std::to_string(d[i]);
  }
  return s;
}

// Every benchmark case, by op. Elementwise ops run at the ESMM widths they see (B×1 heads, B×80, B×200) and
// at B×360 (the embedding width).
inline std::vector<OpCase> op_cases() {
  using IS = InputSpec;
  std::vector<OpCase> cs;
  auto add = [&](std::string op, std::vector<IS> in, Attrs at = {}, std::function<double(std::int64_t)> ff = nullptr,
                 std::function<double(std::int64_t)> bf = nullptr) {
    std::string label;
    for (auto& i : in) {
      if (!label.empty()) label += ',';
      label += dims_str(i.shape.dims);
    }
    cs.push_back(OpCase{std::move(op), label, std::move(in), std::move(at), std::move(ff), std::move(bf)});
  };
  for (const Layer& l : esmm_layers()) {
    const double kn = static_cast<double>(l.k * l.n);
    add("matmul", {IS::value({kBatch, l.k}), IS::value({l.k, l.n}, -0.1f, 0.1f)}, {},
        [kn](std::int64_t b) { return 2.0 * kn * static_cast<double>(b); },
        [kn](std::int64_t b) { return 4.0 * kn * static_cast<double>(b); });
    add("bias_add", {IS::value({kBatch, l.n}), IS::value({l.n})});
  }
  for (std::int64_t w : {std::int64_t{200}, std::int64_t{80}}) add("relu", {IS::value({kBatch, w})});
  for (std::int64_t w : {std::int64_t{1}, std::int64_t{200}}) add("sigmoid", {IS::value({kBatch, w}, -4.0f, 4.0f)});
  for (std::int64_t w : {std::int64_t{1}, kConcat}) {
    add("mul", {IS::value({kBatch, w}), IS::value({kBatch, w})});
    add("add", {IS::value({kBatch, w}), IS::value({kBatch, w})});
    Attrs sc;
    sc.num["w"] = 0.5;
    add("scale", {IS::value({kBatch, w})}, sc);
    add("sum", {IS::value({kBatch, w})});
    add("mean", {IS::value({kBatch, w})});
  }
  {
    Attrs dv;
    dv.num["lo"] = 0.0;
    dv.num["hi"] = 1.0;
    add("divide", {IS::value({kBatch, 1}, 0.0f, 0.05f), IS::value({kBatch, 1}, 0.05f, 0.5f)}, dv);
  }
  add("bce", {IS::value({kBatch, 1}, 0.001f, 0.999f), IS::labels({kBatch, 1})});
  add("bce", {IS::value({kBatch, 1}, 0.001f, 0.999f), IS::labels({kBatch, 1}), IS::labels({kBatch, 1})});
  add("bce_logits", {IS::value({kBatch, 1}, -5.0f, 5.0f), IS::labels({kBatch, 1})});
  // The funnel losses in log space: log σ of each stage logit, then the BCE of the (summed) log-probability.
  add("log_sigmoid", {IS::value({kBatch, 1}, -8.0f, 8.0f)});
  add("bce_logprob", {IS::value({kBatch, 1}, -12.0f, -0.001f), IS::labels({kBatch, 1})});
  add("bce_logprob", {IS::value({kBatch, 1}, -12.0f, -0.001f), IS::labels({kBatch, 1}), IS::labels({kBatch, 1})});
  for (const char* pool : {"sum", "mean"}) {
    Attrs at;
    at.str["pool"] = pool;
    add("embedding", {IS::value({kVocab, kDim}, -0.05f, 0.05f), IS::ids(kFields, kVocab / kFields)}, at);
    cs.back().label += std::string(",pool=") + pool;
    add("embedding", {IS::value({kAliVocab, kDim}, -0.05f, 0.05f), IS::bags(kAliFields, kAliVocab / kAliFields,
                                                                            kAliMeanBag)}, at);
    cs.back().label += std::string(",aliccp_bags=10.6,pool=") + pool;
  }
  {
    Attrs at;
    at.ints["shape"] = {kBatch, kConcat};
    add("reshape", {IS::value({kBatch, kFields, kDim})}, at);  // ESMM's flatten
  }
  {
    Attrs at;
    at.num["axis"] = 1;
    add("concat", {IS::value({kBatch, kConcat}), IS::value({kBatch, 13})}, at);  // embeddings + dense features
  }
  // The ops of the later funnel models at their shapes: MMoE/PLE gates over 8 experts of width 64 and AITM's
  // attention over 2 candidates of width 64; the counterfactual risks' per-row pieces on B×1.
  add("softmax", {IS::value({kBatch, 8}, -3.0f, 3.0f)});
  add("tanh", {IS::value({kBatch, 200}, -3.0f, 3.0f)});
  add("stop_gradient", {IS::value({kBatch, 1})});
  {
    Attrs at;
    at.num["lo"] = 0.05;
    at.num["hi"] = 1.0;
    add("clip", {IS::value({kBatch, 1}, 0.0f, 0.5f)}, at);
  }
  {
    Attrs at;
    at.num["c"] = 1.0;
    add("shift", {IS::value({kBatch, 1})}, at);
  }
  add("dot", {IS::value({kBatch, 2, 64}), IS::value({kBatch, 2, 64})}, {},
      [](std::int64_t b) { return 2.0 * 2 * 64 * static_cast<double>(b); },
      [](std::int64_t b) { return 4.0 * 2 * 64 * static_cast<double>(b); });
  add("weighted_sum", {IS::value({kBatch, 8}, 0.0f, 0.25f), IS::value({kBatch, 8, 64})}, {},
      [](std::int64_t b) { return 2.0 * 8 * 64 * static_cast<double>(b); },
      [](std::int64_t b) { return 4.0 * 8 * 64 * static_cast<double>(b); });
  add("bce_rows", {IS::value({kBatch, 1}, 0.001f, 0.999f), IS::labels({kBatch, 1})});
  add("bce_rows", {IS::value({kBatch, 1}, 0.001f, 0.999f), IS::value({kBatch, 1}, 0.0f, 1.0f)});
  add("bce_logprob_rows", {IS::value({kBatch, 1}, -12.0f, -0.001f), IS::labels({kBatch, 1})});
  add("bce_logprob_rows", {IS::value({kBatch, 1}, -12.0f, -0.001f), IS::value({kBatch, 1}, 0.0f, 1.0f)});
  return cs;
}

}  // namespace funnel::bench
