// libFuzzer target: the slots reader on arbitrary bytes.
#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  funnel::fuzz::run_all_modes([&](const funnel::ReadOptions& o, funnel::FeatureMap& m, funnel::ReadReport& r) {
    return funnel::read_slots_buffer(text, "fuzz.txt", o, m, &r);
  });
  return 0;
}
