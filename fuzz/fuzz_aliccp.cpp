// libFuzzer target: the raw Ali-CCP reader. The input is `common file \0 skeleton file`; without a \0 byte the
// same bytes serve as both files.
#include <cstring>

#include "fuzz/fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const auto nul = all.find('\0');
  const std::string_view common = nul == std::string_view::npos ? all : all.substr(0, nul);
  const std::string_view skeleton = nul == std::string_view::npos ? all : all.substr(nul + 1);
  funnel::fuzz::run_all_modes([&](const funnel::ReadOptions& o, funnel::FeatureMap& m, funnel::ReadReport& r) {
    return funnel::read_aliccp_buffers(skeleton, "sample_skeleton_fuzz.csv", common, "common_features_fuzz.csv", o,
                                       m, &r);
  });
  return 0;
}
