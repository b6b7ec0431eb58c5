#pragma once
/// @file
/// The project's two hash primitives, each written once:
/// - FNV-1a, 64 bits: seeds each parameter's initializer from its name, checksums checkpoint data, compares
///   replicas across ranks;
/// - the splitmix64 finalizer: a bijection on 64-bit words, used to mix seeds and feature hashes.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace funnel {

inline constexpr std::uint64_t kFnv1a64Offset = 14695981039346656037ull;  ///< FNV-1a's 64-bit offset basis

/// FNV-1a of n bytes, continuing from h (the offset basis for a fresh hash), so a hash can run over several buffers.
inline std::uint64_t fnv1a64(const void* bytes, std::size_t n, std::uint64_t h = kFnv1a64Offset) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}
/// FNV-1a of the bytes of `s`, from the offset basis.
inline std::uint64_t fnv1a64(std::string_view s) { return fnv1a64(s.data(), s.size()); }

/// splitmix64's finalizer (Steele, Lea and Flood 2014): a bijection on 64-bit words with good avalanche.
inline constexpr std::uint64_t splitmix64_mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace funnel
