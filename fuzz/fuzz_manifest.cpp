// libFuzzer target: the checkpoint manifest parser on arbitrary bytes. Any funnel::Error is an accepted outcome;
// its message must be printable ASCII (bytes from the file are escaped, never printed raw). A manifest that
// parses must satisfy what the loader relies on: safe relative file names, bounded shapes, unique names.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "train/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const funnel::CheckpointInfo info = funnel::parse_checkpoint_manifest(text, "fuzz/manifest.json");
    for (const auto* list : {&info.params, &info.optimizer_arrays}) {
      for (const auto& p : *list) {
        if (!funnel::is_checkpoint_array_file(p.file)) __builtin_trap();
        std::int64_t n = 1;
        for (auto d : p.shape) {
          if (d < 0) __builtin_trap();
          n *= d;
          if (n > funnel::kMaxCheckpointArrayElements) __builtin_trap();
        }
      }
    }
    if (info.step < 0 || info.epoch < 0 || !info.model.is_object() || !info.data.is_object()) __builtin_trap();
  } catch (const funnel::Error& e) {
    for (const char* p = e.what(); *p; ++p)
      if (static_cast<unsigned char>(*p) < 0x20 || static_cast<unsigned char>(*p) >= 0x7f) __builtin_trap();
  }
  return 0;
}
