// slots:FILE — lines `sample_id,click,conversion,field:feature,...` (data/slots_reader.cpp reads them).
#include "data/formats.hpp"
#include "data/reader_util.hpp"

namespace funnel {
namespace {

Dataset read_slots_spec(const std::string& spec, const std::string& rest, const ReadOptions& options, FeatureMap& map,
                        ReadReport& rep) {
  const std::string file = detail::spec_file(spec, rest);
  return detail::read_mapped(file, [&](std::string_view text) { return read_slots_buffer(text, file, options, map, &rep); });
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_DATA_FORMAT(slots, .prefix = "slots", .usage = "slots:FILE",
                            .help = "sample_id,click,conversion,field:feature,...",
                            .inputs = [](const std::string& rest) { return std::vector<std::string>{rest}; },
                            .read = funnel::read_slots_spec, .order = 1);
