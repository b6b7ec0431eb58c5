// make_cache DIR ROWS CHUNK BUCKETS: a small generated Ali-CCP training split (data/aliccp_synth.hpp) in DIR/raw,
// converted to the v3 cache DIR/c.cache in chunks of CHUNK rows (hashed ids, BUCKETS per field). The CLI's convert
// always writes 65,536-row chunks; the streamed-cache MPI test (cache.sh) needs several chunks of a small set.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/aliccp_synth.hpp"
#include "data/readers.hpp"
#include "data/stream_cache.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: make_cache DIR ROWS CHUNK BUCKETS\n");
    return 2;
  }
  try {
    const std::string dir = argv[1], raw = dir + "/raw";
    std::filesystem::create_directories(raw);
    funnel::AliccpSynthConfig c;
    c.rows = std::stoll(argv[2]);
    c.seed = 9;
    funnel::write_aliccp_synth(c, raw);
    funnel::ReadOptions o;
    o.mapping.buckets = std::stoll(argv[4]);
    funnel::FeatureMap map;
    const auto rows = funnel::convert_to_cache("aliccp:" + raw, o, map, dir + "/c.cache", nullptr, std::stoll(argv[3]));
    std::printf("%lld rows in %s/c.cache\n", static_cast<long long>(rows), dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_cache: %s\n", e.what());
    return 1;
  }
  return 0;
}
