// cache:FILE — a binary cache written by write_cache() / `funnel convert` (data/cache.cpp, data/stream_cache.cpp).
#include "data/formats.hpp"

namespace funnel {
namespace {

Dataset read_cache_spec(const std::string& spec, const std::string& rest, const ReadOptions&, FeatureMap& map,
                        ReadReport& rep) {
  return read_cache(detail::spec_file(spec, rest), map, &rep);
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_DATA_FORMAT(cache, .prefix = "cache", .usage = "cache:FILE",
                            .help = "binary cache written by write_cache",
                            .inputs = [](const std::string& rest) { return std::vector<std::string>{rest}; },
                            .read = funnel::read_cache_spec, .to_cache = false, .order = 3);
