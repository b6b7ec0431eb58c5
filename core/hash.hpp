#pragma once
// FNV-1a, 64 bits: seeds each parameter's initializer from its name, checksums checkpoint data.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace funnel {

inline std::uint64_t fnv1a64(const void* bytes, std::size_t n) {
  std::uint64_t h = 14695981039346656037ull;
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
inline std::uint64_t fnv1a64(std::string_view s) { return fnv1a64(s.data(), s.size()); }

}  // namespace funnel
