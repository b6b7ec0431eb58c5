#pragma once
/// @file
/// The op interface and the op registry. They sit in core so that graph code (shape rules in Graph::add_op) can use
/// them without depending on the ops layer. Each op lives in one small file (`ops/<name>.cpp`, see ops/op.hpp) with
/// its shape rule, forward and vector-Jacobian product side by side, and registers itself with FUNNEL_REGISTER_OP.
///
/// Forward writes `out` (already sized to the node's concrete shape). Backward reads `gout` (dL/d out) and
/// writes dL/d input i into `gin[i]` for each input with gin[i] != nullptr, overwriting every element (the buffer
/// may hold garbage). Accumulating is the engine's rule, not the op's: where an input already holds a gradient from
/// another consumer, or one node feeds two slots (x * x), the executor hands the op a scratch buffer and adds it in
/// afterwards, so each VJP loop is written once and the gin[i] of one call never alias each other.
/// The one exception is opt-in: an op whose kernel adds for free (a gemm's beta) may declare
/// accumulates_into(i); then gin[i] may already hold a gradient and c.beta(i) is 1 (else 0) — it computes
/// gin[i] = beta(i) · gin[i] + (its VJP).
/// For an embedding table whose gradient is sparse, `sparse[i]` is set instead of gin[i]; the op adds its rows into
/// it (the executor clears it before each backward pass).
///
/// Attributes are parsed once, when the node is added: an op with attributes declares
///   struct Params {...};  static Params parse(const Node&);
/// (called after its shape rule accepted the node; the result is kept in Node::params) and reads them in a step with
/// c.params<Params>(), with no map lookup.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "core/error.hpp"
#include "core/graph.hpp"
#include "core/ids.hpp"
#include "core/parallel.hpp"
#include "core/shape.hpp"

namespace funnel {

template <class T>
/// A dense row-major tensor of float (training, serving) or double (gradient checks), as ops read and write values.
using Tensor = xt::xarray<T>;

/// Sparse gradient of a (rows × dim) table: the rows touched and one value row each.
template <class T>
struct SparseRows {
  std::int64_t num_rows = 0;  ///< rows of the table (the parameter's first dimension)
  std::int64_t dim = 0;  ///< width of one row (the parameter's second dimension)
  std::vector<std::int64_t> rows;  ///< touched rows, in first-touch order
  std::vector<T> values;           ///< rows.size() * dim, row-major
  std::vector<std::int32_t> slot;  ///< num_rows entries: index into rows, or -1
  std::vector<std::int32_t> id_slot;  ///< scratch for ops: per id of the batch, the index of its row (or -1)
  /// The ids grouped by slot, for an op that lays them out ahead (prepares_sparse): slot s's ids are entries
  /// [by_slot[s], by_slot[s + 1]), each with its cell (entry_cell) and its weight times the cell's pooling scale
  /// (entry_w).
  std::vector<std::int64_t> by_slot;
  std::vector<std::int32_t> entry_cell;  ///< per entry: the cell (batch row × field) of its id
  std::vector<T> entry_w;                ///< per entry: its id's weight times the cell's pooling scale
  /// Set by an op that laid out `rows`, `slot`, `id_slot`, the zeroed `values` and the entries for the batch in
  /// its forward pass (prepares_sparse); its backward then writes the values. Reset by clear().
  bool slots_ready = false;

  /// Sizes the accumulator for an `n` × `d` table and forgets every touched row (O(n): call once per table, then clear()).
  void init(std::int64_t n, std::int64_t d) {
    num_rows = n;
    dim = d;
    rows.clear();
    values.clear();
    slot.assign(static_cast<std::size_t>(n), -1);
    slots_ready = false;
  }
  /// Forget the touched rows (only those are reset, so this costs O(touched), split over the threads).
  void clear() {
    const std::int64_t* r = rows.data();
    std::int32_t* sl = slot.data();
    parallel_for(static_cast<std::int64_t>(rows.size()), 16384, [r, sl](std::int64_t b, std::int64_t e) {
      for (std::int64_t k = b; k < e; ++k) sl[static_cast<std::size_t>(r[k])] = -1;
    });
    rows.clear();
    values.clear();
    slots_ready = false;
  }
  /// The index of table row r's accumulator, which is zero-filled on first touch.
  std::int32_t index(std::int64_t r) {
    std::int32_t& s = slot[static_cast<std::size_t>(r)];
    if (s < 0) {
      s = static_cast<std::int32_t>(rows.size());
      rows.push_back(r);
      values.resize(values.size() + static_cast<std::size_t>(dim), T(0));
    }
    return s;
  }
  /// The accumulator row for table row r, zero-filled on first touch.
  T* row(std::int64_t r) { return values.data() + static_cast<std::size_t>(index(r)) * static_cast<std::size_t>(dim); }
  /// The k-th touched row's values (k < size(), in the order of `rows`).
  const T* row_at(std::size_t k) const { return values.data() + k * static_cast<std::size_t>(dim); }
  /// Number of touched rows.
  std::size_t size() const { return rows.size(); }
};

template <class T>
/// What an op's forward and backward see for one node and one batch: the node, its input values, its output buffer
/// and, in backward, the output's gradient and the buffers for the inputs' gradients. The executor owns every buffer
/// and fills the context; an op only reads and writes through it. One context per node, used by one thread at a time.
struct Ctx {
  const Node* node = nullptr;  ///< the node being run (its attributes, shape and name)
  std::int64_t batch = 0;  ///< rows in this batch (what the node's kBatch dimension stands for)
  std::span<const Tensor<T>* const> in;   ///< input values; nullptr for Ids inputs
  std::span<const IdBatch* const> ids;    ///< Ids inputs; nullptr for others
  Tensor<T>* out = nullptr;  ///< the node's value, already sized: forward writes it, backward reads it
  /// Backward only:
  const Tensor<T>* gout = nullptr;
  std::span<Tensor<T>* const> gin;  ///< per input: where to write dL/d input, or nullptr when none is needed
  /// Per input: the sparse row gradient to add into (embedding tables), or nullptr.
  /// In a forward pass, set only for an op that prepares_sparse() that input, when a backward will follow.
  std::span<SparseRows<T>* const> sparse;
  std::span<const char> add;  ///< only for slots the op accumulates_into(): gin[i] holds a gradient to add to
  /// Per input, or empty: the input's value already rounded to bf16 (float, under --precision bf16, for a parameter
  /// in a slot the op declares gemm_operand(); the executor rounds it once per forward pass), else nullptr.
  std::span<const Tensor<T>* const> rounded;

  /// Input i's value (i < arity; not for Ids inputs, which are in `ids`).
  const Tensor<T>& x(std::size_t i) const { return *in[i]; }
  /// Input i rounded to bf16 when the executor holds such a copy (see `rounded`), else nullptr.
  const Tensor<T>* x_rounded(std::size_t i) const { return i < rounded.size() ? rounded[i] : nullptr; }
  /// The node's attributes as given to Graph::add_op (prefer params(), parsed once).
  const Attrs& attrs() const { return node->attrs; }
  /// The node's attributes as the op's parse() made them when the node was added.
  template <class P>
  const P& params() const { return *static_cast<const P*>(node->params.get()); }
  /// Element k of input i's gradient is v.
  void put(std::size_t i, std::size_t k, T v) const { gin[i]->data()[k] = v; }
  /// For ops that accumulates_into(i): the factor on what gin[i] holds (1 to add to it, 0 to overwrite it).
  T beta(std::size_t i) const { return !add.empty() && add[i] ? T(1) : T(0); }
};

/// One operation of the graph: its name and help, its shape rule, and its forward and vector-Jacobian product in float
/// and double. An op holds no state: one instance per op serves every node and thread, so every member is const and
/// may be called concurrently. Write one by deriving from OpT (see the file's description and ops/op.hpp).
class Op {
 public:
  virtual ~Op() = default;
  /// The registry name, as written in Graph::add_op and the DSL ("matmul").
  virtual const char* name() const = 0;
  /// One line of help: what the op computes and its attributes (`funnel ops` lists them).
  virtual const char* doc() const = 0;
  /// Number of inputs, or -1 for "one or more".
  virtual int arity() const = 0;
  /// Shape rule. Throws ShapeError (use shape_error below) when the inputs do not fit.
  virtual Shape infer(const Node& n, const std::vector<Shape>& in) const = 0;
  /// False for inputs that get no gradient (labels, ids).
  virtual bool differentiable(std::size_t /*input*/) const { return true; }
  /// True when input i receives a sparse (row) gradient when it is a parameter (embedding tables).
  virtual bool sparse_grad(std::size_t /*input*/) const { return false; }
  /// True when the op, given input i's SparseRows in a forward pass that a backward will follow (Ctx::sparse in
  /// forward; see Executor::forward_for_backward), lays out its rows there already (SparseRows::slots_ready), so
  /// that the work overlaps the forward's. Only asked for sparse_grad inputs used by this op alone.
  virtual bool prepares_sparse(std::size_t /*input*/) const { return false; }
  /// True when the op's VJP for input i adds to gin[i] at no cost when c.beta(i) is 1 (a gemm's beta): the engine
  /// then lets it accumulate in place instead of giving it a scratch buffer to add in afterwards.
  virtual bool accumulates_into(std::size_t /*input*/) const { return false; }
  /// True when input i enters the op's float arithmetic only as a gemm operand (forward and VJP): under
  /// --precision bf16 the executor then hands a parameter there already rounded (Ctx::rounded), once per step.
  virtual bool gemm_operand(std::size_t /*input*/) const { return false; }
  /// True when finite inputs always give a finite output (relu, reshape, sigmoid, …). The executor then skips the
  /// NaN/Inf check of such a node whose inputs are all op outputs: those were checked (or are finite by the same
  /// rule), so a NaN still stops the run at the node that made it.
  virtual bool keeps_finite() const { return false; }
  /// The node's attributes in the op's own form, parsed once after infer() accepted the node (kept in
  /// Node::params); OpT derives it from the op's static parse().
  virtual std::shared_ptr<const void> parse_params(const Node& /*n*/) const { return nullptr; }
  /// @{
  /// Computes the node's value into *c.out from its inputs (float for training and serving, double for gradient checks).
  virtual void forward(Ctx<float>& c) const = 0;
  virtual void forward(Ctx<double>& c) const = 0;
  /// @}
  /// @{
  /// Computes the vector-Jacobian product: from *c.gout (dL/d out), dL/d input i into c.gin[i] (or c.sparse[i]) for
  /// each input that has a buffer, overwriting it unless accumulates_into(i) and c.beta(i) is 1. The forward values
  /// (c.in, *c.out) are still there.
  virtual void backward(Ctx<float>& c) const = 0;
  virtual void backward(Ctx<double>& c) const = 0;
  /// @}
};

/// Implements the four virtual entry points from `template <class T> static void fwd(Ctx<T>&)` and `bwd`, and
/// parse_params() from `static Params parse(const Node&)` when Impl declares a type Params.
template <class Impl>
class OpT : public Op {
 public:
  /// Calls Impl::parse when Impl declares a type Params; otherwise there is nothing to parse.
  std::shared_ptr<const void> parse_params(const Node& n) const override {
    if constexpr (requires { typename Impl::Params; })
      return std::make_shared<const typename Impl::Params>(Impl::parse(n));
    else
      return nullptr;
  }
  /// Forward in float: Impl::fwd<float>.
  void forward(Ctx<float>& c) const override { Impl::template fwd<float>(c); }
  /// Forward in double: Impl::fwd<double>.
  void forward(Ctx<double>& c) const override { Impl::template fwd<double>(c); }
  /// Vector-Jacobian product in float: Impl::bwd<float>.
  void backward(Ctx<float>& c) const override { Impl::template bwd<float>(c); }
  /// Vector-Jacobian product in double: Impl::bwd<double>.
  void backward(Ctx<double>& c) const override { Impl::template bwd<double>(c); }
};

/// Adds `op` to the registry under op->name(), replacing an op registered under the same name. Registration
/// normally happens at static-init time through FUNNEL_REGISTER_OP (the ops layer is linked whole-archive, so every
/// op file is linked); tests and users may register extra ops. Not synchronised: register before graphs are built
/// on other threads. `op` must live as long as the registry is used.
void register_op(const Op* op);
const Op& get_op(const std::string& name);  ///< The op registered as `name`; throws GraphError listing the known ops.
/// The op registered as `name`, or null when there is none.
const Op* find_op(const std::string& name);
std::vector<std::string> op_names();  ///< the registered ops' names, sorted

/// Registers an op from a static object's constructor; use it through FUNNEL_REGISTER_OP.
struct OpRegistrar {
  /// Registers `op`, which must outlive every use of the registry (a static object does).
  explicit OpRegistrar(const Op* op) { register_op(op); }
};
/// Defines a static instance of op class `Type` in this file and registers it by its name() at static-initialisation
/// time. Write it once, at namespace scope, in the op's own file. A second op with the same name replaces the first.
#define FUNNEL_REGISTER_OP(Type) \
  static const Type funnel_op_instance_##Type{}; \
  static const ::funnel::OpRegistrar funnel_op_registrar_##Type{&funnel_op_instance_##Type}

/// The op of every node of g, indexed by node id (nullptr for inputs, ids and parameters), looked up once.
std::vector<const Op*> node_ops(const Graph& g);

/// True for a parameter read only through slots that take a sparse (row) gradient, at least once: an embedding
/// table whose gradient the executor keeps as SparseRows.
bool has_sparse_grad(const Graph& g, NodeId param);

/// "node 'ctr_tower/dense_0/matmul' (op matmul): <why>; inputs: B×360, 200×80"
[[noreturn]] void shape_error(const Node& n, const std::vector<Shape>& in, const std::string& why);
/// Require in.size() == k.
void expect_inputs(const Node& n, const std::vector<Shape>& in, std::size_t k);
/// Two dims agree: equal, or both the batch dim.
inline bool dims_match(Dim a, Dim b) { return a == b; }

}  // namespace funnel
