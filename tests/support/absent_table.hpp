#pragma once
// A table storage that holds none of its table's rows (autodiff/table_storage.hpp): the test keeps them, as a
// row-sharded run's ranks or a serving mapping would. The store's lookup tensor stays 0 × dim, checkpoints take
// the table from streams and load_checkpoint leaves it to its owner; nothing may update it.
#include <memory>
#include <stdexcept>

#include "autodiff/param_store.hpp"

namespace funnel::test {

class AbsentTable final : public TableStorage<float> {
 public:
  AbsentTable(std::int64_t rows, std::int64_t dim) : rows_(rows), dim_(dim) {}
  const char* kind() const override { return "absent"; }
  std::int64_t rows() const override { return rows_; }
  std::int64_t dim() const override { return dim_; }
  void bind(Tensor<float>& lookup, SparseRows<float>* grad) override {
    lookup = Tensor<float>::from_shape({std::size_t{0}, static_cast<std::size_t>(dim_)});
    if (grad) grad->init(0, dim_);
  }
  bool held_in_store() const override { return false; }
  void init(const TableRowDraw<float>&) override { ++inits; }
  std::int64_t held_rows() const override { return 0; }
  std::int64_t table_row(std::int64_t i) const override { return i; }
  const float* held_values() const override { return nullptr; }
  void apply(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) override {
    throw std::logic_error("AbsentTable: no rows to update");
  }
  void apply_lookup(const SparseRows<float>&, RowUpdateRule<float>&, std::int64_t) override {
    throw std::logic_error("AbsentTable: no rows to update");
  }
  int inits = 0;  // how often the store asked it to initialise

 private:
  std::int64_t rows_, dim_;
};

// Store options whose every table is an AbsentTable.
inline ParamStoreOptions absent_tables() {
  ParamStoreOptions o;
  o.tables = [](const Graph& g, NodeId p) -> std::unique_ptr<TableStorage<float>> {
    return std::make_unique<AbsentTable>(g.node(p).shape[0], g.node(p).shape[1]);
  };
  return o;
}

}  // namespace funnel::test
