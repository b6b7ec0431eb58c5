// aliccp:DIR[:train|:test] — the raw Ali-CCP release, skeleton joined with common features
// (data/aliccp_reader.cpp reads them).
#include <filesystem>

#include "data/formats.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

// DIR and split of "DIR[:split]" (the split unchecked).
std::pair<std::string, std::string> dir_and_split(const std::string& rest) {
  std::string dir = rest, split = "train";
  const auto colon = dir.rfind(':');
  if (colon != std::string::npos) {
    split = dir.substr(colon + 1);
    dir = dir.substr(0, colon);
  }
  return {dir, split};
}

std::vector<std::string> aliccp_inputs(const std::string& rest) {
  const auto [dir, split] = dir_and_split(rest);
  return {dir + "/sample_skeleton_" + split + ".csv", dir + "/common_features_" + split + ".csv"};
}

Dataset read_aliccp_spec(const std::string& spec, const std::string& rest, const ReadOptions& options,
                         FeatureMap& map, ReadReport& rep) {
  const auto [dir, split] = dir_and_split(rest);
  if (split != "train" && split != "test")
    throw Error("dataset spec '" + spec + "': expected split 'train' or 'test' after the last colon, got '" + split +
                "'");
  if (dir.empty()) throw Error("dataset spec '" + spec + "': expected a directory after 'aliccp:'");
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (ec || !std::filesystem::exists(st))
    throw Error("aliccp: cannot read directory '" + dir + "': " + (ec ? ec.message() : "it does not exist"));
  if (!std::filesystem::is_directory(st))
    throw Error("aliccp: '" + dir + "' is not a directory (expected the Ali-CCP release directory)");
  const std::string skel = dir + "/sample_skeleton_" + split + ".csv";
  const std::string common = dir + "/common_features_" + split + ".csv";
  detail::MappedFile cf(common, false);
  detail::MappedFile sf(skel, true);
  return detail::checked(
      {&cf, &sf}, [&] { return read_aliccp_buffers(sf.view(), skel, cf.view(), common, options, map, &rep); });
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_DATA_FORMAT(aliccp, .prefix = "aliccp", .usage = "aliccp:DIR[:train|:test]",
                            .help = "raw Ali-CCP sample_skeleton_*.csv + common_features_*.csv",
                            .inputs = funnel::aliccp_inputs, .read = funnel::read_aliccp_spec, .order = 2);
