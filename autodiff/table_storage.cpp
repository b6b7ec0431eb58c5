#include "autodiff/table_storage.hpp"

#include <cstring>

namespace funnel {

template <class T>
void TableStorage<T>::make_slots(std::size_t n, const T* initial) {
  if (slots_.size() == n) return;
  drop_slots();
  const auto len = static_cast<std::size_t>(held_rows() * dim());
  for (std::size_t k = 0; k < n; ++k) slots_.emplace_back(len, initial[k]);
  for (auto& s : slots_) slot_ptrs_.push_back(s.data());
}

template <class T>
void TableStorage<T>::drop_slots() {
  std::vector<std::vector<T>>().swap(slots_);  // frees the memory
  slot_ptrs_.clear();
}

template <class T>
std::size_t TableStorage<T>::bytes() const {
  std::size_t n = 0;
  for (const auto& s : slots_) n += s.capacity() * sizeof(T);
  return n;
}

template <class T>
void LocalTable<T>::bind(Tensor<T>& lookup, SparseRows<T>* grad) {
  v_ = &lookup;
  lookup = Tensor<T>::from_shape({static_cast<std::size_t>(rows_), static_cast<std::size_t>(dim_)});
  lookup.fill(T(0));
  if (grad) grad->init(rows_, dim_);
}

template <class T>
void LocalTable<T>::init(const TableRowDraw<T>& draw) {
  T* v = v_->data();
  const auto D = static_cast<std::size_t>(dim_);
  draw([v, D](std::int64_t row, const T* x) {
    if (D > 0) std::memcpy(v + static_cast<std::size_t>(row) * D, x, D * sizeof(T));
  });
}

template <class T>
void LocalTable<T>::apply(const SparseRows<T>& g, RowUpdateRule<T>& rule, std::int64_t t) {
  if (g.size() == 0) return;
  rule.update_rows(v_->data(), g.values.data(), g.rows.data(), g.size(), static_cast<std::size_t>(dim_),
                   this->slot_ptrs(), t);
}

template class TableStorage<float>;
template class TableStorage<double>;
template class LocalTable<float>;
template class LocalTable<double>;

}  // namespace funnel
