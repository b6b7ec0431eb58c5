// columns:NAME — an in-memory column table registered by the process (data/columns.hpp; the Python package's
// DataFrames). Not listed in help: it names no file a user could give.
#include "data/columns.hpp"
#include "data/formats.hpp"

namespace funnel {
namespace {

Dataset read_columns_spec(const std::string& spec, const std::string&, const ReadOptions& options, FeatureMap& map,
                          ReadReport& rep) {
  return read_columns(*registered_columns(spec), options, map, &rep);
}

}  // namespace
}  // namespace funnel

FUNNEL_REGISTER_DATA_FORMAT(columns, .prefix = "columns", .usage = "columns:NAME", .help = "",
                            .read = funnel::read_columns_spec, .to_cache = true, .order = 50);
