// embedding: pooled lookup of every field of an ids batch in a table. Inputs: table (V×D parameter) and an Ids
// node with F fields (shape B×F, value an IdBatch); string attribute "pool" = "sum" (default) or "mean".
// Output B×F×D. For row b, field f with ids i_1..i_m and weights w_1..w_m (see core/ids.hpp):
//   sum:  y[b, f] = Σ_k w_k · table[i_k]
//   mean: y[b, f] = Σ_k w_k · table[i_k] / Σ_k w_k   (zeros when the cell is empty or Σ_k w_k = 0)
//   VJP:  dtable[i_k] += s · w_k · dy[b, f] with s = 1 (sum) or 1/Σ_k w_k (mean); the ids get no gradient.
// The table gradient is sparse (SparseRows: only touched rows) unless the table is also read densely elsewhere,
// in which case it accumulates into the dense gradient. Forward and backward are O(total ids · D).
// Every id is checked against [0, V) in forward; a bad id throws funnel::Error naming node, row, field and id.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "core/parallel.hpp"
#include "ops/embedding_kernels.hpp"
#include "ops/op.hpp"

namespace funnel {
namespace {

struct Embedding : OpT<Embedding> {
  const char* name() const override { return "embedding"; }
  const char* doc() const override { return "B×F×D lookup of ids (B×F) in table V×D, pool=sum|mean, sparse grad"; }
  int arity() const override { return 2; }
  bool differentiable(std::size_t i) const override { return i == 0; }
  bool sparse_grad(std::size_t i) const override { return i == 0; }
  bool prepares_sparse(std::size_t i) const override { return i == 0; }

  struct Params {
    bool mean;  // pool=mean (else sum)
  };
  static Params parse(const Node& n) { return {n.attrs.get_str("pool", "sum") == "mean"}; }

  Shape infer(const Node& n, const std::vector<Shape>& in) const override {
    const std::string pool = n.attrs.get_str("pool", "sum");
    if (pool != "sum" && pool != "mean")
      throw GraphError("node '" + n.name + "' (op embedding): attribute pool must be 'sum' or 'mean', got '" +
                       pool + "'");
    if (in[0].rank() != 2 || in[0][0] <= 0 || in[0][1] <= 0)
      shape_error(n, in, "table must be a V×D matrix with fixed dims, got " + in[0].str());
    if (in[1].rank() != 2 || in[1][0] != kBatch || in[1][1] <= 0)
      shape_error(n, in, "input 1 must be an ids node (B×F), got " + in[1].str());
    return Shape{kBatch, in[1][1], in[0][1]};
  }

  // The ids batch of input 1, checked against the node (the executor checks it too; this guards direct use).
  template <class T>
  static const IdBatch& check(const Ctx<T>& c) {
    const IdBatch* b = c.ids[1];
    if (!b) throw GraphError("node '" + c.node->name + "' (op embedding): input 1 is not an ids node");
    const auto cells = static_cast<std::size_t>(b->batch * b->fields);
    if (b->batch != c.batch || b->fields != c.node->shape[1] || b->offsets.size() != cells + 1 ||
        b->weights.size() != b->ids.size())
      throw ShapeError("node '" + c.node->name + "' (op embedding): ids hold " + std::to_string(b->batch) +
                       " rows × " + std::to_string(b->fields) + " fields, expected B=" + std::to_string(c.batch) +
                       " × " + std::to_string(c.node->shape[1]));
    return *b;
  }

  // Rows are scattered over the table, so the lookups are bound by memory latency: fetch the row of the id
  // kPrefetch positions ahead (its first and last cache line) while this one is being added.
  static constexpr std::int64_t kPrefetch = 8;
  // The same for the backward pass's row-to-slot map (one int per table row, scattered reads).
  static constexpr std::size_t kPrefetchSlot = 16;
  // Smallest share of one thread: ids to range-check, cells to gather, touched rows to accumulate.
  static constexpr std::int64_t kGrainIds = 8192, kGrainCells = 1024, kGrainRows = 1024;
  // Cells a thread takes at a time while another lays out the gradient rows (forward before a backward).
  static constexpr std::size_t kCellBlock = 256;
  // Smallest share of one thread when rows are summed from their grouped ids.
  static constexpr std::int64_t kGrainEntries = 16384;
  template <class T>
  static void prefetch_row(const T* tp, const std::int64_t* ids, std::int64_t k, std::size_t nids, std::size_t D) {
    if (static_cast<std::size_t>(k) >= nids) return;
    const T* r = tp + static_cast<std::size_t>(ids[k]) * D;
    __builtin_prefetch(r);
    __builtin_prefetch(r + D - 1);
  }

  // Throws for the id at flat index k, naming its row and field (found from the offsets).
  template <class T>
  [[noreturn]] static void out_of_range(const Ctx<T>& c, const IdBatch& b, std::size_t k, std::int64_t V) {
    const auto pos = static_cast<std::int64_t>(k);
    std::size_t cell = 0;
    while (b.offsets[cell + 1] <= pos) ++cell;
    throw Error("node '" + c.node->name + "' (op embedding): row " + std::to_string(cell / b.fields) + ", field " +
                std::to_string(cell % b.fields) + ": id " + std::to_string(b.ids[k]) +
                " is out of range for a table of " + std::to_string(V) + " rows");
  }

  template <class T>
  static void fwd(Ctx<T>& c) {
    const IdBatch& b = check(c);
    const Tensor<T>& table = c.x(0);
    const std::int64_t V = static_cast<std::int64_t>(table.shape()[0]);
    const std::size_t D = table.shape()[1];
    const std::size_t cells = static_cast<std::size_t>(b.batch * b.fields);
    const bool mean = c.template params<Params>().mean;
    const T* tp = table.data();
    T* y = c.out->data();
    const std::int64_t* off = b.offsets.data();
    const std::int64_t* ids = b.ids.data();
    const float* ws = b.weights.data();
    // Range check first, in its own tight loop, so the gather loop below stays free of the error path. Chunks
    // are rethrown in order, so the error names the first bad id.
    const std::size_t nids = b.ids.size();
    parallel_for(static_cast<std::int64_t>(nids), kGrainIds, [&](std::int64_t k0, std::int64_t k1) {
      for (auto k = static_cast<std::size_t>(k0); k < static_cast<std::size_t>(k1); ++k)
        if (static_cast<std::uint64_t>(ids[k]) >= static_cast<std::uint64_t>(V)) out_of_range(c, b, k, V);
    });
    // Cells write disjoint output rows: split them over the threads. Float runs the SIMD kernels of the CPU
    // (ops/embedding_kernels.hpp: the same arithmetic as pool_cells below, with fused multiply-adds).
    auto pool = [&](std::size_t c0, std::size_t c1) {
      if constexpr (std::is_same_v<T, float>)
        embedding_kernels().pool(EmbeddingPoolArgs{y, tp, D, off, ids, ws, nids, mean}, c0, c1);
      else
        pool_cells(y, tp, D, off, ids, ws, nids, mean, c0, c1);
    };
    SparseRows<T>* sp = c.sparse.empty() ? nullptr : c.sparse[0];
    if (!sp) {
      parallel_for(static_cast<std::int64_t>(cells), kGrainCells, [&](std::int64_t c0, std::int64_t c1) {
        pool(static_cast<std::size_t>(c0), static_cast<std::size_t>(c1));
      });
      return;
    }
    // A backward follows: lay out the gradient rows now (assign_slots: one serial pass, and their zeroed
    // accumulators) on one thread while the others pool, every thread taking blocks of cells until none is left.
    // A cell's output does not depend on the thread that pools it, so the bits are those of the loop above. With
    // several threads the ids are also grouped by row (group_by_slot), so that the backward's sums split evenly
    // over the threads (write_rows) instead of each thread walking every id.
    sp->id_slot.resize(nids);  // reserved by the executor: no allocation in a steady state
    sp->by_slot.clear();
    std::atomic<std::size_t> next{0};
    // Grouping needs every slot counted from this batch's ids: not with rows touched before (the executor clears the
    // rows before a training step's forward; a caller that does not gets the layout without the grouping).
    const int parts = parallel_chunks(static_cast<std::int64_t>(cells), kGrainCells);
    const bool group = parts > 1 && sp->size() == 0;
    parallel_for(parts, 1, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) {
        if (t == 0) {
          const auto skip = [&](std::size_t cell) { return skip_cell<T>(off, ws, mean, cell); };
          if (group) {
            assign_slots(*sp, b, cells, skip, &sp->by_slot);
            group_by_slot(*sp, b, cells, mean);
          } else {
            assign_slots(*sp, b, cells, skip);
          }
          sp->values.resize(sp->size() * D, T(0));  // within the executor's reserve
        }
        for (;;) {
          const std::size_t c0 = next.fetch_add(kCellBlock, std::memory_order_relaxed);
          if (c0 >= cells) break;
          pool(c0, std::min(cells, c0 + kCellBlock));
        }
      }
    });
    sp->slots_ready = true;
  }

  // The generic pooling of cells [c0, c1) (double, and the reference for the float kernels).
  template <class T>
  static void pool_cells(T* y, const T* tp, std::size_t D, const std::int64_t* off, const std::int64_t* ids,
                         const float* ws, std::size_t nids, bool mean, std::size_t c0, std::size_t c1) {
    for (std::size_t cell = c0; cell < c1; ++cell) {
      T* __restrict o = y + cell * D;
      const std::int64_t k0 = off[cell], k1 = off[cell + 1];
      T wsum = T(0);
      for (std::int64_t k = k0; k < k1; ++k) {
        prefetch_row(tp, ids, k + kPrefetch, nids, D);
        const T w = static_cast<T>(ws[k]);
        wsum += w;
        const T* __restrict r = tp + static_cast<std::size_t>(ids[k]) * D;
        if (k == k0)  // the first id writes, the rest add: no separate zero fill
          for (std::size_t j = 0; j < D; ++j) o[j] = w * r[j];
        else
          for (std::size_t j = 0; j < D; ++j) o[j] += w * r[j];
      }
      if (k0 == k1) std::memset(o, 0, D * sizeof(T));
      if (mean) {
        if (wsum != T(0)) {
          const T inv = T(1) / wsum;
          for (std::size_t j = 0; j < D; ++j) o[j] *= inv;
        } else {
          std::memset(o, 0, D * sizeof(T));
        }
      }
    }
  }

  // Pooling scale of the cell of ids [k0, k1): 1 (sum), 1/Σw (mean), 0 when the mean cell's weights sum to 0
  // (forward wrote zeros: no dependence on the table). Σw is summed in T, as the forward's mean does.
  template <class T>
  static T cell_scale(const float* ws, bool mean, std::int64_t k0, std::int64_t k1) {
    if (!mean) return T(1);
    T wsum = T(0);
    for (std::int64_t k = k0; k < k1; ++k) wsum += static_cast<T>(ws[k]);
    return wsum == T(0) ? T(0) : T(1) / wsum;
  }

  // A cell whose terms get no gradient: empty, or of scale 0.
  template <class T>
  static bool skip_cell(const std::int64_t* off, const float* ws, bool mean, std::size_t cell) {
    const std::int64_t k0 = off[cell], k1 = off[cell + 1];
    return k0 == k1 || cell_scale<T>(ws, mean, k0, k1) == T(0);
  }

  // Gives every row the batch touches (in cells that have a gradient) its accumulator slot, in the order of first
  // touch after the rows touched before this op (sp.rows), and writes every id's slot to sp.id_slot (-1 for the ids
  // of a skipped cell). `counts` (empty, and only when no rows were touched before): each slot's number of ids.
  // One pass on one thread: a split needs a second pass over the scattered slot entries (to agree on the first
  // touch), which costs two threads as much as the one pass costs one.
  template <class T, class Skip>
  static void assign_slots(SparseRows<T>& sp, const IdBatch& b, std::size_t cells, const Skip& skip_cell,
                           std::vector<std::int64_t>* counts = nullptr) {
    const std::int64_t* off = b.offsets.data();
    const std::int64_t* ids = b.ids.data();
    const std::size_t nids = b.ids.size();
    std::int32_t* slot_of_row = sp.slot.data();
    std::int32_t* id_slot = sp.id_slot.data();
    std::vector<std::int64_t>& rows = sp.rows;
    for (std::size_t cell = 0; cell < cells; ++cell) {
      const std::int64_t k0 = off[cell], k1 = off[cell + 1];
      const bool skip = skip_cell(cell);
      for (std::int64_t k = k0; k < k1; ++k) {
        if (static_cast<std::size_t>(k) + kPrefetchSlot < nids)
          __builtin_prefetch(slot_of_row + ids[static_cast<std::size_t>(k) + kPrefetchSlot], 1);
        std::int32_t slot = -1;
        if (!skip) {
          std::int32_t& s = slot_of_row[static_cast<std::size_t>(ids[k])];
          if (s < 0) {
            s = static_cast<std::int32_t>(rows.size());
            rows.push_back(ids[k]);  // within the executor's reserve
            if (counts) counts->push_back(0);
          }
          slot = s;
          if (counts) ++(*counts)[static_cast<std::size_t>(s)];
        }
        id_slot[static_cast<std::size_t>(k)] = slot;
      }
    }
  }

  // Groups the ids of cells with a gradient by their slot (after assign_slots, which counted them per slot into
  // sp.by_slot): sp.by_slot becomes the slots' offsets, and per entry (in id order within a slot) its cell and its
  // weight times the cell's pooling scale, as the backward's sums take them.
  template <class T>
  static void group_by_slot(SparseRows<T>& sp, const IdBatch& b, std::size_t cells, bool mean) {
    const std::int64_t* off = b.offsets.data();
    const float* ws = b.weights.data();
    const std::int32_t* id_slot = sp.id_slot.data();
    const std::size_t S = sp.size();
    std::vector<std::int64_t>& start = sp.by_slot;
    start.push_back(0);  // within the executor's reserve
    std::int64_t sum = 0;
    for (std::size_t s = 0; s <= S; ++s) {
      const std::int64_t n = start[s];
      start[s] = sum;
      sum += n;
    }
    const auto entries = static_cast<std::size_t>(start[S]);
    sp.entry_cell.resize(entries);
    sp.entry_w.resize(entries);
    std::int32_t* ec = sp.entry_cell.data();
    T* ew = sp.entry_w.data();
    for (std::size_t cell = 0; cell < cells; ++cell) {
      const std::int64_t k0 = off[cell], k1 = off[cell + 1];
      if (k0 == k1 || id_slot[k0] < 0) continue;  // a cell without gradient has every id at -1
      const T scale = cell_scale<T>(ws, mean, k0, k1);  // not 0: such cells were skipped
      for (std::int64_t k = k0; k < k1; ++k) {
        const auto e = static_cast<std::size_t>(start[static_cast<std::size_t>(id_slot[k])]++);
        ec[e] = static_cast<std::int32_t>(cell);
        ew[e] = scale * static_cast<T>(ws[k]);
      }
    }
    for (std::size_t s = S; s > 0; --s) start[s] = start[s - 1];  // the fill moved each start to the next one's
    start[0] = 0;
  }

  // Every touched row's accumulator from the ids grouped by slot (group_by_slot): the threads take slot ranges of
  // about equal numbers of ids, and each row sums its terms in id order from zero, as the scatter below does into
  // zeroed rows: the same bits for any thread count, and for either path.
  template <class T>
  static void write_rows(SparseRows<T>& sp, const T* gy, std::size_t D) {
    const std::size_t S = sp.size();
    const std::int64_t* start = sp.by_slot.data();
    const auto entries = static_cast<std::int64_t>(start[S]);
    const int parts = parallel_chunks(entries, kGrainEntries);
    auto run = [&](std::size_t s0, std::size_t s1) {
      if constexpr (std::is_same_v<T, float>) {
        const EmbeddingRowsArgs a{sp.values.data(), D, gy, start, sp.entry_cell.data(), sp.entry_w.data(),
                                  static_cast<std::size_t>(entries)};
        embedding_kernels().rows(a, s0, s1);
      } else {
        for (std::size_t s = s0; s < s1; ++s) {
          T* __restrict acc = sp.values.data() + s * D;
          std::memset(acc, 0, D * sizeof(T));
          for (auto e = start[s]; e < start[s + 1]; ++e) {
            const T w = sp.entry_w[static_cast<std::size_t>(e)];
            const T* g = gy + static_cast<std::size_t>(sp.entry_cell[static_cast<std::size_t>(e)]) * D;
            for (std::size_t j = 0; j < D; ++j) acc[j] += w * g[j];
          }
        }
      }
    };
    // Part p starts at the first slot whose entries begin at or after p / parts of them.
    auto slot_at = [&](int p) {
      if (p >= parts) return S;
      const std::int64_t want = entries * p / parts;
      return static_cast<std::size_t>(std::lower_bound(start, start + S, want) - start);
    };
    parallel_for(parts, 1, [&](std::int64_t p0, std::int64_t p1) {
      for (auto p = static_cast<int>(p0); p < static_cast<int>(p1); ++p) run(slot_at(p), slot_at(p + 1));
    });
  }

  template <class T>
  static void bwd(Ctx<T>& c) {
    SparseRows<T>* sp = c.sparse[0];
    Tensor<T>* dense = c.gin[0];
    if (!sp && !dense) return;
    const IdBatch& b = check(c);
    const std::size_t D = c.x(0).shape()[1];
    const std::size_t cells = static_cast<std::size_t>(b.batch * b.fields);
    const bool mean = c.template params<Params>().mean;
    const T* gy = c.gout->data();
    const std::int64_t* off = b.offsets.data();
    const std::int64_t* ids = b.ids.data();
    const float* ws = b.weights.data();
    auto scale = [&](std::int64_t k0, std::int64_t k1) { return cell_scale<T>(ws, mean, k0, k1); };
    if (!sp) {
      T* gd = dense->data();
      std::memset(gd, 0, dense->size() * sizeof(T));
      for (std::size_t cell = 0; cell < cells; ++cell) {
        const std::int64_t k0 = off[cell], k1 = off[cell + 1];
        const T s = scale(k0, k1);
        if (s == T(0)) continue;
        const T* g = gy + cell * D;
        for (std::int64_t k = k0; k < k1; ++k) {
          const T w = s * static_cast<T>(ws[k]);
          T* acc = gd + static_cast<std::size_t>(ids[k]) * D;
          for (std::size_t j = 0; j < D; ++j) acc[j] += w * g[j];
        }
      }
      return;
    }
    // Sparse: first give every touched row its accumulator slot, in first-touch order, and note each id's slot
    // (assign_slots), then split the slots over the threads. Each thread walks all ids in order and adds only into
    // its own slots, so every row sums its terms in the same order as one thread would: the same bits for any
    // thread count. The slots are handed out without SparseRows::index(), whose per-row growth of `values` cost
    // more than the lookup itself; the new rows' accumulators are zero-filled in one pass afterwards.
    if (sp->slots_ready && !sp->by_slot.empty()) {  // the forward pass grouped the ids by row: sum each row's terms
      sp->slots_ready = false;
      write_rows(*sp, gy, D);
      return;
    }
    if (!sp->slots_ready) {  // else the forward pass laid out the rows and zeroed their accumulators
      sp->id_slot.resize(b.ids.size());  // reserved by the executor: no allocation in a steady state
      assign_slots(*sp, b, cells, [&](std::size_t cell) { return skip_cell<T>(off, ws, mean, cell); });
      sp->values.resize(sp->size() * D, T(0));  // rows touched before this op keep their sums
    }
    sp->slots_ready = false;
    const std::int32_t* ks = sp->id_slot.data();
    T* vals = sp->values.data();
    if constexpr (std::is_same_v<T, float>) {
      const EmbeddingScatterArgs args{vals, D, gy, off, ks, ws, cells, mean};
      const EmbeddingKernels& kern = embedding_kernels();
      parallel_for(static_cast<std::int64_t>(sp->size()), kGrainRows,
                   [&](std::int64_t s0, std::int64_t s1) { kern.scatter(args, s0, s1); });
      return;
    }
    parallel_for(static_cast<std::int64_t>(sp->size()), kGrainRows, [&](std::int64_t s0, std::int64_t s1) {
      for (std::size_t cell = 0; cell < cells; ++cell) {
        const std::int64_t k0 = off[cell], k1 = off[cell + 1];
        if (k0 == k1 || ks[k0] < 0) continue;  // a skipped cell has every id at -1
        const T s = scale(k0, k1);
        const T* g = gy + cell * D;
        for (std::int64_t k = k0; k < k1; ++k) {
          const std::int64_t r = ks[k];
          if (r < s0 || r >= s1) continue;
          const T w = s * static_cast<T>(ws[k]);
          T* __restrict acc = vals + static_cast<std::size_t>(r) * D;
          for (std::size_t j = 0; j < D; ++j) acc[j] += w * g[j];
        }
      }
    });
  }
};

FUNNEL_REGISTER_OP(Embedding);

}  // namespace
}  // namespace funnel

// ONNX, on the ids batch as funnel holds it (ids and weights N, offsets B·F + 1; core/onnx_lowering.hpp):
//   cell of each id: CumSum of ScatterElements(zeros(N + 1), offsets[1 .. B·F−1], ones, add), first N entries
//   sum:  ScatterND(zeros(B·F × D), cell, Gather(table, ids) · weights, add), reshaped to B×F×D
//   mean: that divided by the cell's Σ weights (the same scatter of the weights), 0 where that sum is 0
FUNNEL_ONNX_LOWERING("embedding") {
  using funnel::OnnxAttr;
  const std::int64_t F = e.input_node(1).num_fields, D = e.input_node(0).shape[1];
  const std::string i0 = e.constant_i64({0}, {}), i1 = e.constant_i64({1}, {}), one1 = e.constant_i64({1}, {1}),
                    zero = e.constant({0.0f}, {});
  auto t = [&](const char* hint) { return e.temp(hint); };
  const std::string nids = t("n"), n1 = t("n_plus_1"), marks0 = t("marks0"), starts = t("starts"), ns = t("ns"),
                    ones = t("ones"), marks1 = t("marks1"), marks = t("marks"), cell = t("cell"), cell2 = t("cell2"),
                    rows = t("rows"), w2 = t("w2"), prod = t("weighted"), nc1 = t("cells_plus_1"), nc = t("cells"),
                    shape = t("pooled_shape"), zeros = t("zeros"), pooled = t("pooled");
  e.node("Shape", {e.in(1)}, {nids});
  e.node("Add", {nids, one1}, {n1});
  e.node("Expand", {i0, n1}, {marks0});
  e.node("Slice", {e.offsets(1), one1, e.constant_i64({-1}, {1})}, {starts});
  e.node("Shape", {starts}, {ns});
  e.node("Expand", {i1, ns}, {ones});
  e.node("ScatterElements", {marks0, starts, ones}, {marks1},
         {OnnxAttr::integer("axis", 0), OnnxAttr::text("reduction", "add")});
  e.node("Slice", {marks1, e.constant_i64({0}, {1}), nids}, {marks});
  e.node("CumSum", {marks, i0}, {cell});
  e.node("Unsqueeze", {cell, one1}, {cell2});
  e.node("Gather", {e.in(0), e.in(1)}, {rows}, {OnnxAttr::integer("axis", 0)});
  e.node("Unsqueeze", {e.weights(1), one1}, {w2});
  e.node("Mul", {rows, w2}, {prod});
  e.node("Shape", {e.offsets(1)}, {nc1});
  e.node("Sub", {nc1, one1}, {nc});
  e.node("Concat", {nc, e.constant_i64({D}, {1})}, {shape}, {OnnxAttr::integer("axis", 0)});
  e.node("Expand", {zero, shape}, {zeros});
  e.node("ScatterND", {zeros, cell2, prod}, {pooled}, {OnnxAttr::text("reduction", "add")});
  const std::string to3 = e.constant_i64({-1, F, D}, {3});
  if (n.attrs.get_str("pool", "sum") != "mean") {
    e.node("Reshape", {pooled, to3}, {e.out()});
    return;
  }
  const std::string wshape = t("wsum_shape"), wzeros = t("wzeros"), wsum = t("wsum"), empty = t("empty"),
                    safe = t("den"), q = t("mean"), masked = t("masked");
  e.node("Concat", {nc, one1}, {wshape}, {OnnxAttr::integer("axis", 0)});
  e.node("Expand", {zero, wshape}, {wzeros});
  e.node("ScatterND", {wzeros, cell2, w2}, {wsum}, {OnnxAttr::text("reduction", "add")});
  e.node("Equal", {wsum, zero}, {empty});
  e.node("Where", {empty, e.constant({1.0f}, {}), wsum}, {safe});
  e.node("Div", {pooled, safe}, {q});
  e.node("Where", {empty, zero, q}, {masked});
  e.node("Reshape", {masked, to3}, {e.out()});
}
