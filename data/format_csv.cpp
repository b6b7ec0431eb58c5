// csv:FILE — CSV with a header (data/csv_reader.cpp reads it; see data/readers.hpp for the rules).
#include "data/formats.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

Dataset read_csv_spec(const std::string& spec, const std::string& rest, const ReadOptions& options, FeatureMap& map,
                      ReadReport& rep) {
  const std::string file = detail::spec_file(spec, rest);
  return detail::read_mapped(file, [&](std::string_view text) { return read_csv_buffer(text, file, options, map, &rep); });
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_DATA_FORMAT(csv, .prefix = "csv", .usage = "csv:FILE",
                            .help = "CSV with header: click, purchase|conversion, categorical columns, dense D* columns",
                            .inputs = [](const std::string& rest) { return std::vector<std::string>{rest}; },
                            .read = funnel::read_csv_spec, .order = 0);
