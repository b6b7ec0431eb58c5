#include "core/shape.hpp"

namespace funnel {

bool Shape::has_batch() const {
  for (Dim d : dims)
    if (d == kBatch) return true;
  return false;
}

std::int64_t Shape::numel(std::int64_t batch) const {
  std::int64_t n = 1;
  for (Dim d : dims) n *= (d == kBatch ? batch : d);
  return n;
}

std::vector<std::size_t> Shape::concrete(std::int64_t batch) const {
  std::vector<std::size_t> out;
  out.reserve(dims.size());
  for (Dim d : dims) out.push_back(static_cast<std::size_t>(d == kBatch ? batch : d));
  return out;
}

std::string Shape::str() const {
  if (dims.empty()) return "scalar";
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += "\u00d7";
    s += dims[i] == kBatch ? std::string("B") : std::to_string(dims[i]);
  }
  return s;
}

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string r = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) r += (i ? ", " : "") + std::to_string(dims[i]);
  return r + "]";
}

}  // namespace funnel
