#pragma once
/// @file
/// The data-format registry behind read_dataset(spec): one file per format (data/format_csv.cpp, ...), each
/// registering its spec prefix, its usage and help line, the files it reads and its reader. `--data` help and the
/// "expected one of ..." error list the registered formats. A user's own format, in a project built against the
/// installed funnel, registers the same way:
///
///     FUNNEL_REGISTER_DATA_FORMAT(tsv, .prefix = "tsv", .usage = "tsv:FILE", .help = "tab-separated ...",
///                                 .inputs = [](const std::string& rest) { return std::vector<std::string>{rest}; },
///                                 .read = read_my_tsv);
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "data/readers.hpp"

namespace funnel {

/// One data format: specs "PREFIX:REST".
struct DataFormat {
  std::string prefix{};  ///< "csv": specs that start with "csv:"
  std::string usage{};   ///< the spec form, "csv:FILE"
  std::string help{};    ///< one line for --help and errors; empty: the format is not listed (e.g. in-memory tables)
  /// The files a spec reads (given REST, the text after "PREFIX:"), for checking that an output is not an input.
  /// May be empty: nothing to check.
  std::function<std::vector<std::string>(const std::string& rest)> inputs{};
  /// Reads the data: `spec` is the whole spec (for messages), `rest` the text after "PREFIX:". Fills `report`
  /// (already reset, its source set) as read_dataset documents.
  std::function<Dataset(const std::string& spec, const std::string& rest, const ReadOptions& options, FeatureMap& map,
                        ReadReport& report)>
      read{};
  bool to_cache = true;  ///< `funnel convert` turns it into a cache (listed in convert's --data help)
  int order = 100;       ///< place in lists, lower first (funnel's own: 0..99), then registration order
};

/// Registers `f`; an Error on an empty prefix or usage, a missing reader or a prefix already taken.
void register_data_format(DataFormat f);
/// The format of `spec` (by the text before its first ':'), or null.
const DataFormat* find_data_format(std::string_view spec);
/// Every registered format, by DataFormat::order, then registration order.
std::vector<const DataFormat*> data_formats();
/// "csv:FILE, slots:FILE, ...": the usages of the listed formats (with `to_cache_only`, those convert reads).
std::string data_format_usages(bool to_cache_only = false);

/// Registers a data format at static-initialisation time (see FUNNEL_REGISTER_DATA_FORMAT).
struct DataFormatRegistrar {
  /// Registers `f`; prints the error and aborts if registration fails.
  explicit DataFormatRegistrar(DataFormat f);
};

/// Registers a DataFormat given as designated initialisers (.prefix, .usage, .help, .inputs, .read, ...).
#define FUNNEL_REGISTER_DATA_FORMAT(ident, ...) \
  static const ::funnel::DataFormatRegistrar funnel_data_format_registrar_##ident{::funnel::DataFormat{__VA_ARGS__}}

namespace detail {
/// The whole of REST as a file name; an Error naming `spec` when it is empty.
std::string spec_file(const std::string& spec, const std::string& rest);
}  // namespace detail

}  // namespace funnel
